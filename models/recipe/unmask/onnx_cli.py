"""Runs the extension's CLI in batch mode (`node dist/cli.js --batch TASKS --out RESULTS ...`) and reads its answers:
the one way eval_heldout.py and eval_humaneval.py fill tasks with the shipped ONNX model through the TypeScript
engine. No torch at import (run_onnx_cli's sampler options are sample.SamplerOptions)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from typing import Optional

REPO_DIR = Path(__file__).resolve().parents[3]  # REPO_DIR, without importing torch


def run_batch(command: list[str], results: str, cwd: str) -> tuple[dict, float]:
    """Runs `command` (which writes JSONL answers to `results`); returns ({task id: answer}, seconds in the CLI).
    A failing CLI raises with the tail of its stderr."""
    t0 = time.time()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    seconds = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the CLI failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    with open(results, encoding="utf-8") as f:
        answers = {a["id"]: a for a in (json.loads(line) for line in f if line.strip()) if "id" in a}
    return answers, seconds


def answer(answers: dict, i: int, name: str) -> dict:
    """The CLI's answer to request `i` (task `name`); raises when it is missing or an error record."""
    got = answers.get(i)
    if got is None or "error" in got:
        raise RuntimeError(f"the CLI could not fill task {name}: {got and got.get('error')}")
    return got


def cli_request(i: int, task: dict) -> dict:
    """Request `i` of a batch for an infill task: its text around the hole, and the file the editor would check the
    candidates' syntax in (the hole empty there); the task's other open files when it has them."""
    request = {"id": i, "prefix": task["prefix"], "suffix": task["suffix"], "language": task["language"],
               "before": task["file"][:task["start"]], "after": task["file"][task["end"]:]}
    if task.get("related"):
        request["related"] = task["related"]  # other open files (other_open_files), most recent first
    return request


def model_rows(args, tasks: list[dict], extra: tuple[str, ...] = ()) -> tuple[dict, float]:
    """N ranked model rows per task (args.candidates, no copy candidate) from the CLI's batch mode, as the editor
    ranks them: ({request index: answer}, seconds in the CLI). `args` has node, cli, model, threads, steps, seed and
    candidates (eval_rank's and data_reward's flags); `extra` adds CLI flags."""
    with tempfile.TemporaryDirectory() as tmp:
        requests, results = os.path.join(tmp, "tasks.jsonl"), os.path.join(tmp, "results.jsonl")
        with open(requests, "w", encoding="utf-8") as f:
            for i, t in enumerate(tasks):
                f.write(json.dumps(cli_request(i, t)) + "\n")
        command = [args.node, os.path.join(REPO_DIR, args.cli), "--batch", requests, "--out", results,
                   "--model", os.path.abspath(args.model), "--precision", "int8", "--threads", str(args.threads),
                   "--steps", str(args.steps), "--strategy", "confidence", "--seed", str(args.seed),
                   "--candidates", str(args.candidates), "--copy-min-match", "0", *extra]
        return run_batch(command, results, str(REPO_DIR))


def setting_flags(args) -> list[str]:
    """The CLI's flags for the eval's --cli-cache-ngram*, --cli-multiline, --cli-min-line-confidence,
    --cli-related-context-tokens and --cli-context-tokens options (none given: the CLI's defaults)."""
    flags = []
    for option, flag in (("cli_cache_ngram", "--cache-ngram"), ("cli_cache_ngram_weight", "--cache-ngram-weight"),
                         ("cli_cache_ngram_order", "--cache-ngram-order"),
                         ("cli_cache_ngram_open_documents", "--cache-ngram-open-documents"),
                         ("cli_multiline", "--multiline"), ("cli_min_line_confidence", "--min-line-confidence"),
                         ("cli_related_context_tokens", "--related-context-tokens"),
                         ("cli_context_tokens", "--context-tokens")):
        if getattr(args, option, None) is not None:
            flags += [flag, str(getattr(args, option))]
    return flags


def setting_record(args) -> dict:
    """What a run records of the CLI settings it was given (empty when it ran at the CLI's defaults)."""
    return {key: getattr(args, option) for key, option in (
        ("cache_ngram", "cli_cache_ngram"), ("cache_ngram_weight", "cli_cache_ngram_weight"),
        ("cache_ngram_order", "cli_cache_ngram_order"),
        ("cache_ngram_open_documents", "cli_cache_ngram_open_documents"),
        ("multiline", "cli_multiline"), ("min_line_confidence", "cli_min_line_confidence"),
        ("related_context_tokens", "cli_related_context_tokens"), ("context_tokens", "cli_context_tokens"),
        ("open_files", "open_files")) if getattr(args, option, None) is not None}


def family(language: str) -> str:
    """The editor's language families for other open documents (server/protocol/document-tokens.ts): JavaScript and
    TypeScript are one."""
    return "javascript" if language in ("javascript", "javascriptreact", "typescript", "typescriptreact") else language


def other_open_files(task: dict, files: list[dict], n: int) -> list[str]:
    """Stand-ins for the `n` other files a developer editing the task's file has open, most recent first: files of the
    same package (test split records {package, path, language, text}) and language family, not the task's file,
    nearest in the directory tree first (most shared leading folders), ties in a fixed pseudo-random order per task.
    The eval's tasks are single files; this is how --open-files (or --cli-cache-ngram-open-documents) gives them
    neighbours."""
    if n <= 0:
        return []
    folders = task["path"].split("/")[:-1]

    def shared(path: str) -> int:
        k = 0
        for a, b in zip(folders, path.split("/")[:-1]):
            if a != b:
                break
            k += 1
        return k

    same = [f for f in files if f["package"] == task["package"] and family(f["language"]) == family(task["language"])
            and f["path"] != task["path"] and f["text"] != task["file"]]
    same.sort(key=lambda f: (-shared(f["path"]), zlib.crc32(f"{task['id']}:{f['path']}".encode())))
    return [f["text"] for f in same[:n]]


def run_onnx_cli(model_dir: str, task_list: list[dict], options, fixed_bucket: Optional[int],
                 buckets: tuple[int, ...], args, candidates: int = 1,
                 copy_min_match: Optional[int] = None) -> tuple[list[dict], float]:
    """Fills every task with the shipped ONNX model through the TypeScript CLI's batch mode (one Node process per
    setting): the extension's own engine, runtime and post-processing. With `candidates` > 1 the CLI generates that
    many alternatives in one batch and ranks them as "Regenerate with N Candidates" does (likelihood and tree-sitter
    syntax errors of the whole file with each one inserted): the completion is the best, and "candidates" lists them
    all, best first. Returns (outputs, seconds spent in the CLI)."""
    from unmask.canvas import bucket_for

    model_dir = os.path.abspath(model_dir)  # the CLI runs from the repository root
    cli = os.path.join(REPO_DIR, args.cli)
    if not os.path.exists(cli):
        raise SystemExit(f"onnx_cli: {cli} not found; build it with `node esbuild.mjs`")
    # The engine samples from the graph's own K-best lists: another --top-k here would compare different samplers.
    with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
        head_k = json.load(f).get("facts", {}).get("unmask.top_k")
    if head_k is not None and int(head_k) != options.top_k:
        raise SystemExit(f"onnx_cli: --top-k {options.top_k} differs from the K-best head of {model_dir} (K = {head_k}); "
                         "the CLI samples from the graph's lists")
    with tempfile.TemporaryDirectory() as tmp:
        requests, results = os.path.join(tmp, "tasks.jsonl"), os.path.join(tmp, "results.jsonl")
        with open(requests, "w", encoding="utf-8") as f:
            for i, task in enumerate(task_list):
                request = cli_request(i, task)
                if getattr(args, "bucket", "oracle") != "default":  # "default": the CLI's own span, as the editor's
                    request["max_tokens"] = bucket_for(task["target_tokens"], buckets, fixed_bucket)
                f.write(json.dumps(request) + "\n")
        command = [args.node, cli, "--batch", requests, "--out", results, "--model", model_dir,
                   "--precision", args.onnx_precision, "--threads", str(max(args.threads, 1)),
                   "--steps", str(options.steps), "--strategy", options.strategy,
                   "--threshold", str(options.threshold), "--temperature", str(options.temperature),
                   "--top-p", str(options.top_p), "--seed", str(args.seed), "--candidates", str(candidates)]
        if copy_min_match is not None:
            command += ["--copy-min-match", str(copy_min_match)]
        if getattr(args, "cli_latency_budget", 0) > 0:
            command += ["--latency-budget", str(args.cli_latency_budget)]
        command += setting_flags(args)
        answers, seconds = run_batch(command, results, str(REPO_DIR))
    out = []
    for i, task in enumerate(task_list):
        got = answer(answers, i, task["id"])
        order = [p for step in got["order"] for p in step]  # Per step, left to right; fill already left out.
        out.append({"completion": got["completion"], "tokens": None, "order": order,
                    "nfe": got["model_calls"], "mean_confidence": got.get("mean_confidence"),
                    "source": got.get("source", "model" if got["completion"].strip() else None),
                    # The gate's numbers for the shown completion and its calibrated score (server/protocol/gate.ts).
                    "gate": got.get("gate"),
                    "candidates": [c["text"] for c in got.get("candidates", [])] or [got["completion"]]})
    return out, seconds
