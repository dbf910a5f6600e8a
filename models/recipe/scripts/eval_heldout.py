"""Evaluates the shipped model, a masked-diffusion checkpoint, the AR baseline and the copy-from-file lookup on infill
tasks cut from the held-out test packages.

The held-out eval (issue 11: 600 tasks, 100 per language group x kind; the shipped int8 model through the
extension's CLI at 8 steps and the editor's defaults, next to the copy-from-file lookup; build the CLI first with
`node esbuild.mjs`; about 2 minutes on 2 CPU cores):
    python models/recipe/eval.py --onnx-cli models/unmask-coder-base --onnx-precision int8 --copy-baseline \
        --tasks 600 --steps 8 --strategies confidence --focus confidence:8 --bucket default --nll-batches 0 \
        --out models/recipe/data/eval/heldout.json --markdown models/recipe/data/eval/heldout.md
  add `--ckpt runs/<mdm>/ckpt.pt` for the PyTorch checkpoint through sample.py (rows 'mdm') and
  `--ar-ckpt runs/<ar>/ckpt.pt` for the AR baseline; the tasks are models/recipe/data/eval/heldout.jsonl (tasks.py
  cuts them when missing: single-line, multi-line 2-4 lines, rest-of-line with the cursor inside a token), which
  `node dist/cli.js --batch models/recipe/data/eval/heldout.jsonl --out results.jsonl` also reads as it is.
  HumanEval-Infilling with executed tests is humaneval.py.

The decoding sweep (36 tasks, 4 strategies x 8 step counts, the AR baseline and the NLL; 349 s measured on one
free CPU core for the CPU-trained 4 x 256 model, up to about 10 minutes for a model that writes longer spans):
    python models/recipe/eval.py --ckpt models/recipe/runs/cpu-mdm-base/ckpt.pt \
        --ar-ckpt models/recipe/runs/cpu-ar-base/ckpt.pt --card models/unmask-coder-base/MODEL_CARD.md
Quick look at one setting:
    python models/recipe/eval.py --ckpt models/recipe/runs/cpu-mdm-base/ckpt.pt --tasks 12 --steps 8 \
        --strategies confidence --nll-batches 0
On a GPU, all 600 tasks of the default tasks file: add --tasks 600 --device cuda.
The shipped ONNX model through the extension's own engine (the TypeScript CLI, built by `node esbuild.mjs`), and its
ranking of N candidates at the --focus setting (N = 2: inline completions' rows; 4: "Regenerate with N
Candidates"): add --onnx-cli models/unmask-coder-base --onnx-candidates 2,4.

What it measures, per decoding setting (strategy x steps) of each model, for the AR baseline and the copy lookup on
the same tasks, overall and per language group and kind (the text metrics live in metrics.py):
- exact match: the completion equals the target after trailing whitespace is trimmed from both;
- first-line exact match: the completion's first line equals the target's (trailing whitespace trimmed);
- edit similarity: 1 - Levenshtein(completion, target) / max(len), characters, both trimmed the same way;
- empty: no visible text; degenerate repetition: at least 6 code tokens, half or more of them covered by one n-gram
  (n <= 4) repeated at least 3 times (metrics.degenerate);
- syntax valid: the whole file with the completion in the hole parses (Python: `ast`; TypeScript/JavaScript: the
  `typescript` parser through syntax_check.mjs, one Node process for the whole eval); only tasks whose original file
  parses count;
- AR-ness@k (k = 1..8), local and global (methods.md section 3), of the span's decoding order;
- NFE: model forward passes per task.
Plus masked-token NLL on the test split: the denoiser's ELBO in bits/token (Monte Carlo over t with a fixed seed,
on whole-window and on infill canvases drawn exactly as in training) and the AR baseline's NLL on the same windows.

Tasks come from tasks.py (`--tasks-file`, created with `--per-cell` if missing). The span is given the oracle length
bucket by default (the smallest training bucket that holds the target; the model still chooses the exact length by
writing end-of-span tokens); `--bucket N` gives every task N masks instead, `--bucket default` the editor's default
span (and the CLI its own default, as the editor sends it).
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import shlex
import subprocess
import sys
import time
import warnings
import zlib
from collections import defaultdict
from typing import Optional

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cli_batch  # noqa: E402  (the recipe is a folder of flat scripts)
import common  # noqa: E402
from metrics import (ARNESS_K, arness_profile, copy_from_file, degenerate, edit_similarity,  # noqa: E402,F401
                     exact_match, first_line_exact, global_arness, levenshtein, local_arness, nanmean)
import sample  # noqa: E402
import tasks as tasks_mod  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
SYNTAX_CHECKER = os.path.join(HERE, "syntax_check.mjs")
DEFAULT_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
LN2 = math.log(2.0)
GROUP_OF = {lang: group for group, langs in tasks_mod.GROUPS.items() for lang in langs}


# ---------------------------------------------------------------------------------------------------------------
# Syntax validity
# ---------------------------------------------------------------------------------------------------------------


def python_parses(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Invalid escape sequences and the like warn; they still parse.
        try:
            ast.parse(source)
            return True
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False


class SyntaxBatch:
    """Collects syntax checks; Python ones run in-process, TypeScript/JavaScript ones in one Node process at the end
    (starting Node and loading typescript costs far more than a parse)."""

    def __init__(self, node: str = "node"):
        self.node = node
        self.requests: list[dict] = []
        self.results: dict[int, bool] = {}

    def add(self, language: str, path: Optional[str], source: str) -> int:
        key = len(self.requests)
        if GROUP_OF.get(language) == "python":
            self.results[key] = python_parses(source)
            self.requests.append({})
        else:
            self.requests.append({"id": key, "text": source, "path": path or "", "language": language})
        return key

    def run(self) -> dict[int, bool]:
        pending = [r for r in self.requests if r]
        if pending:
            payload = "".join(json.dumps(r) + "\n" for r in pending)
            proc = subprocess.run([self.node, SYNTAX_CHECKER], input=payload, capture_output=True, text=True,
                                  cwd=REPO)
            if proc.returncode != 0:
                raise RuntimeError(f"syntax_check.mjs failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
            answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
            if len(answers) != len(pending):
                raise RuntimeError(f"syntax_check.mjs answered {len(answers)} of {len(pending)} requests")
            for answer in answers:
                if answer.get("errors") == -1:
                    raise RuntimeError(f"syntax_check.mjs could not check request {answer.get('id')}: "
                                       f"{answer['first']}")
                self.results[int(answer["id"])] = bool(answer["ok"])
        return self.results


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


def special_id(special: dict, name: str) -> int:
    """Special ids by short name ("mask") or by token string ("<|mask|>"): checkpoints store the short names."""
    if name in special:
        return int(special[name])
    return int(special[f"<|{name}|>"])


class Loaded:
    """A checkpoint with what decoding needs: the model, its kind, special ids, buckets, max length, tokenizer."""

    def __init__(self, path: str, device: torch.device, tokenizer_path: Optional[str] = None):
        self.path = path
        self.model, self.ckpt = common.load_checkpoint(path, device)
        self.device = device
        self.config = self.ckpt["config"]
        self.kind = self.config["kind"]
        self.special = self.ckpt["special"]
        self.mask_id = special_id(self.special, "mask")
        self.eos_id = special_id(self.special, "eos")
        self.pad_id = special_id(self.special, "pad")
        self.max_seq_len = int(self.config["max_seq_len"])
        self.buckets = tuple(self.config.get("span_buckets", common.SPAN_BUCKETS))
        self.context_only = self.config.get("attention", "full") == "context_only"
        # The engine's banned ids, those the exported head leaves out: every special token but end-of-span never
        # reaches a completion.
        self.banned_ids = tuple(common.banned_ids(self.special))
        # The tokenizer: the one asked for, else the checkpoint's (its path may come from another machine), else the
        # recipe's default.
        candidates = [tokenizer_path] if tokenizer_path else [self.ckpt.get("tokenizer"), str(common.TOKENIZER_PATH)]
        tok_path = next((p for p in candidates if p and os.path.exists(p)), None)
        if tok_path is None:
            raise SystemExit(f"eval: no tokenizer found for {path} (tried {candidates}); pass --tokenizer")
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(tok_path)
        self.tokenizer_path = tok_path
        self.special_ids = frozenset(int(v) for v in self.special.values())

    def lang_id(self, language: str) -> int:
        key = f"lang:{language}"
        if key in self.special or f"<|{key}|>" in self.special:
            return special_id(self.special, key)
        return special_id(self.special, "lang:other")

    def encode(self, text: str) -> list[int]:
        """Text to ids without special tokens: a file that contains "<|mask|>" must not put a real mask into the
        canvas (the engine's canvas.ts drops them the same way)."""
        return [i for i in self.tokenizer.encode(text, add_special_tokens=False).ids if i not in self.special_ids]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def summary(self) -> dict:
        c = self.ckpt
        return {"path": os.path.relpath(self.path, REPO), "kind": self.kind, "step": c.get("step"),
                "train_tokens": c.get("train_tokens"), "train_seconds": c.get("train_seconds"),
                "params": sum(p.numel() for p in self.model.parameters()), "metrics": c.get("metrics"),
                "config": {k: self.config[k] for k in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size",
                                                       "max_seq_len", "attention") if k in self.config}}

    @torch.no_grad()
    def denoiser_fn(self, ids: torch.Tensor, positions: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        # ids: [B, T]; positions: [B, P]; span: [B, T] bool -> logits [B, P, V]
        return self.model(ids, positions, span_mask=span if self.context_only else None)

    @torch.no_grad()
    def causal_next_fn(self, ids: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """ids [B, T], last [B] -> logits of the token after position last[b], [B, V]: only those positions go
        through the vocabulary projection (the whole [B, T, V] would dominate the cost of a small model)."""
        h = self.model.hidden(ids)  # [B, T, D]
        return self.model.project(h[torch.arange(ids.shape[0], device=ids.device), last])


def editor_span_tokens() -> int:
    """The editor's default span (`unmask.maxSpanTokens` in package.json), what `--bucket default` gives every task."""
    try:
        with open(os.path.join(REPO, "package.json"), encoding="utf-8") as f:
            config = json.load(f)["contributes"]["configuration"]
        for section in config if isinstance(config, list) else [config]:
            if "unmask.maxSpanTokens" in section.get("properties", {}):
                return int(section["properties"]["unmask.maxSpanTokens"]["default"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    return 32


def bucket_for(n_tokens: int, buckets: tuple[int, ...], fixed: Optional[int]) -> int:
    if fixed is not None:
        return fixed
    for b in buckets:
        if b >= max(n_tokens, 1):
            return b
    return buckets[-1]


def denoiser_canvas(m: Loaded, task: dict, bucket: int) -> tuple[list[int], int]:
    """[lang tag] prefix [MASK]*bucket suffix (models/README.md) -> (ids, index of the span's first token)."""
    head = [m.lang_id(task["language"])] + m.encode(task["prefix"])
    ids = head + [m.mask_id] * bucket + m.encode(task["suffix"])
    if len(ids) > m.max_seq_len:
        raise ValueError(f"task {task['id']}: canvas of {len(ids)} tokens exceeds max_seq_len {m.max_seq_len}; "
                         f"cut the tasks with tasks.py --max-seq-len {m.max_seq_len}")
    return ids, len(head)


def ar_prompt(m: Loaded, task: dict) -> list[int]:
    """PSM fill-in-the-middle prompt as pretrain.py trains it: [lang] <|fim_prefix|> pre <|fim_suffix|> suf
    <|fim_middle|>; the model then writes the middle and <|eos|>."""
    return ([m.lang_id(task["language"]), special_id(m.special, "fim_prefix")] + m.encode(task["prefix"])
            + [special_id(m.special, "fim_suffix")] + m.encode(task["suffix"]) + [special_id(m.special, "fim_middle")])


# ---------------------------------------------------------------------------------------------------------------
# Decoding runs
# ---------------------------------------------------------------------------------------------------------------


def batches_by_length(items: list[tuple[int, list[int]]], batch_size: int):
    """Groups (task index, ids) by length (rows of a batch must share T), then chunks them."""
    by_len: dict[int, list] = defaultdict(list)
    for item in items:
        by_len[len(item[1])].append(item)
    for length in sorted(by_len):
        group = by_len[length]
        for i in range(0, len(group), batch_size):
            yield group[i:i + batch_size]


def task_seed(seed: int, task_id: str) -> int:
    """The random stream of one task: fixed by the seed and the task, whatever batch the task lands in."""
    return zlib.crc32(f"{seed}:{task_id}".encode())


def run_denoiser(m: Loaded, task_list: list[dict], options: sample.SamplerOptions, fixed_bucket: Optional[int],
                 batch_size: int, seed: int, cache: dict) -> tuple[list[dict], float]:
    """Fills every task with the denoiser; returns (per task {completion, order, nfe}, seconds).

    More steps than a span has masks decode exactly like as many steps as masks (one commit per step either way, and
    each task has its own random stream), so such a task reuses the result cached under min(steps, span) and its
    time: the seconds are what the setting costs, whether computed now or before."""
    out: list[Optional[dict]] = [None] * len(task_list)
    seconds = [0.0] * len(task_list)
    items, meta = [], {}
    for i, task in enumerate(task_list):
        bucket = bucket_for(task["target_tokens"], m.buckets, fixed_bucket)
        key = (i, options.strategy, min(options.steps, bucket), options.temperature, options.top_p, options.top_k,
               options.threshold, options.eos_fill, options.eos_after_code)
        if key in cache:
            out[i], seconds[i] = cache[key]
            continue
        ids, start = denoiser_canvas(m, task, bucket)
        items.append((i, ids))
        meta[i] = (start, bucket, key)
    for batch in batches_by_length(items, batch_size):
        canvas = torch.tensor([ids for _, ids in batch], dtype=torch.long, device=m.device)  # [B, T]
        generators = [torch.Generator().manual_seed(task_seed(seed, task_list[i]["id"])) for i, _ in batch]
        t0 = time.time()
        result = sample.denoise(m.denoiser_fn, canvas, m.mask_id, m.eos_id, options, generators, m.banned_ids)
        share = (time.time() - t0) / len(batch)
        for row, (i, _) in enumerate(batch):
            start, bucket, key = meta[i]
            span_ids = result.canvas[row, start:start + bucket].tolist()
            order = sample.decoding_order(result.step[row, start:start + bucket].tolist(),
                                          result.filled[row, start:start + bucket].tolist())
            completion_ids = sample.trim_at_eos(span_ids, m.eos_id)
            # This row's model calls: the steps until its last commit (rows of a batch may finish at different steps).
            nfe = int(result.step[row, start:start + bucket].max()) + 1
            out[i] = {"completion": m.decode(completion_ids), "tokens": len(completion_ids), "order": order,
                      "nfe": nfe}
            seconds[i] = share
            cache[key] = (out[i], share)
    return out, sum(seconds)  # type: ignore[return-value]


def run_ar(m: Loaded, task_list: list[dict], fixed_bucket: Optional[int], buckets: tuple[int, ...],
           batch_size: int) -> tuple[list[dict], float]:
    """Greedy FIM decoding, at most as many tokens as the denoiser's span bucket for the same task. Returns (outputs,
    seconds)."""
    out: list[dict] = []
    t0 = time.time()
    for first in range(0, len(task_list), batch_size):
        chunk = task_list[first:first + batch_size]
        prompts = [ar_prompt(m, task) for task in chunk]
        limits = [min(bucket_for(task["target_tokens"], buckets, fixed_bucket), m.max_seq_len - len(p))
                  for task, p in zip(chunk, prompts)]
        generated, calls = sample.greedy_ar(m.causal_next_fn, prompts, m.eos_id, limits, m.pad_id, m.banned_ids,
                                            m.device)
        for ids, nfe in zip(generated, calls):
            out.append({"completion": m.decode(ids), "tokens": len(ids), "order": list(range(len(ids))),
                        "nfe": nfe})
    return out, time.time() - t0


def run_onnx_cli(model_dir: str, task_list: list[dict], options: sample.SamplerOptions, fixed_bucket: Optional[int],
                 buckets: tuple[int, ...], args, candidates: int = 1,
                 copy_min_match: Optional[int] = None) -> tuple[list[dict], float]:
    """Fills every task with the shipped ONNX model through the TypeScript CLI's batch mode (one Node process per
    setting): the extension's own engine, runtime and post-processing. With `candidates` > 1 the CLI generates that
    many alternatives in one batch and ranks them as "Regenerate with N Candidates" does (likelihood and tree-sitter
    syntax errors of the whole file with each one inserted): the completion is the best, and "candidates" lists them
    all, best first. Returns (outputs, seconds spent in the CLI)."""
    import tempfile

    cli = os.path.join(REPO, args.cli)
    if not os.path.exists(cli):
        raise SystemExit(f"eval: {cli} not found; build it with `node esbuild.mjs`")
    # The engine samples from the graph's own K-best lists: another --top-k here would compare different samplers.
    with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
        head_k = json.load(f).get("facts", {}).get("unmask.top_k")
    if head_k is not None and int(head_k) != options.top_k:
        raise SystemExit(f"eval: --top-k {options.top_k} differs from the K-best head of {model_dir} (K = {head_k}); "
                         "the CLI samples from the graph's lists")
    with tempfile.TemporaryDirectory() as tmp:
        requests, results = os.path.join(tmp, "tasks.jsonl"), os.path.join(tmp, "results.jsonl")
        with open(requests, "w", encoding="utf-8") as f:
            for i, task in enumerate(task_list):
                request = {"id": i, "prefix": task["prefix"], "suffix": task["suffix"], "language": task["language"],
                           "max_tokens": bucket_for(task["target_tokens"], buckets, fixed_bucket),
                           # The file the editor would check the candidates in: the hole is empty there.
                           "before": task["file"][:task["start"]], "after": task["file"][task["end"]:]}
                if getattr(args, "bucket", "oracle") == "default":
                    del request["max_tokens"]  # The CLI's own default span, as the editor sends it.
                f.write(json.dumps(request) + "\n")
        command = [args.node, cli, "--batch", requests, "--out", results, "--model", model_dir,
                   "--precision", args.onnx_precision, "--threads", str(max(args.threads, 1)),
                   "--steps", str(options.steps), "--strategy", options.strategy,
                   "--threshold", str(options.threshold), "--temperature", str(options.temperature),
                   "--top-p", str(options.top_p), "--seed", str(args.seed), "--candidates", str(candidates)]
        if copy_min_match is not None:
            command += ["--copy-min-match", str(copy_min_match)]
        answers, seconds = cli_batch.run_batch(command, results, REPO)
    out = []
    for i, task in enumerate(task_list):
        answer = cli_batch.answer(answers, i, task["id"])
        order = [p for step in answer["order"] for p in step]  # Per step, left to right; fill already left out.
        out.append({"completion": answer["completion"], "tokens": None, "order": order,
                    "nfe": answer["model_calls"], "mean_confidence": answer.get("mean_confidence"),
                    "source": answer.get("source", "model" if answer["completion"].strip() else None),
                    "candidates": [c["text"] for c in answer.get("candidates", [])] or [answer["completion"]]})
    return out, seconds


def run_copy(task_list: list[dict], context: str = "task") -> tuple[list[dict], float]:
    """The copy-from-file lookup baseline (metrics.copy_from_file) on every task: context "task" looks in the
    task's prefix and suffix (what the model is given), "file" in the whole file around the hole."""
    t0 = time.time()
    out = []
    for task in task_list:
        if context == "file":
            prefix, suffix = task["file"][:task["start"]], task["file"][task["end"]:]
        else:
            prefix, suffix = task["prefix"], task["suffix"]
        out.append({"completion": copy_from_file(prefix, suffix, task["kind"]), "tokens": None, "order": [],
                    "nfe": 0})
    return out, time.time() - t0


def best_of(task_list: list[dict], outputs: list[dict]) -> list[dict]:
    """Each task's candidate closest to the target (edit similarity; the first of equals): what the alternatives are
    worth to a user who picks the right one, an upper bound on any ranking of them."""
    out = []
    for task, output in zip(task_list, outputs):
        best = max(output["candidates"], key=lambda text: edit_similarity(text, task["target"]))
        out.append({**output, "completion": best})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------


def cell_of(task: dict) -> str:
    return f"{GROUP_OF.get(task['language'], task['language'])}/{task['kind']}"


def score_run(name: str, task_list: list[dict], outputs: list[dict], syntax: SyntaxBatch, original_ok: list[int],
              seconds: float, extra: dict) -> dict:
    """Per-task metrics (syntax results filled in later by finish_syntax) and the run's record."""
    rows = []
    for task, output, orig_key in zip(task_list, outputs, original_ok):
        filled = task["file"][:task["start"]] + output["completion"] + task["file"][task["end"]:]
        rows.append({
            "id": task["id"], "cell": cell_of(task),
            "exact": exact_match(output["completion"], task["target"]),
            "first_line_exact": first_line_exact(output["completion"], task["target"]),
            "empty": not output["completion"].strip(),
            "degenerate": degenerate(output["completion"]),
            "edit_sim": edit_similarity(output["completion"], task["target"]),
            "syntax_key": syntax.add(task["language"], task.get("path"), filled), "original_key": orig_key,
            "arness": arness_profile(output["order"]), "nfe": output["nfe"], "completion": output["completion"],
            # The CLI's confidence in its answer and where it came from, for gating calibration (--per-task).
            **{k: output[k] for k in ("mean_confidence", "source") if output.get(k) is not None},
        })
    return {"name": name, **extra, "seconds": round(seconds, 2), "rows": rows}


def summarise(rows: list[dict], syntax_results: dict[int, bool]) -> dict:
    counted = [r for r in rows if syntax_results[r["original_key"]]]
    out = {
        "tasks": len(rows),
        "exact_match": nanmean([float(r["exact"]) for r in rows]),
        "first_line_exact": nanmean([float(r["first_line_exact"]) for r in rows]),
        "edit_similarity": nanmean([r["edit_sim"] for r in rows]),
        "syntax_valid": nanmean([float(syntax_results[r["syntax_key"]]) for r in counted]),
        "syntax_counted": len(counted),
        "empty": nanmean([float(r["empty"]) for r in rows]),
        "degenerate": nanmean([float(r["degenerate"]) for r in rows]),
        "nfe": nanmean([r["nfe"] for r in rows]),
        "arness_local": [nanmean([r["arness"]["local"][k] for r in rows]) for k in range(ARNESS_K)],
        "arness_global": [nanmean([r["arness"]["global"][k] for r in rows]) for k in range(ARNESS_K)],
    }
    return out


def finish(run: dict, syntax_results: dict[int, bool], keep_rows: bool) -> dict:
    rows = run.pop("rows")
    run.update(summarise(rows, syntax_results))
    by_cell: dict[str, list] = defaultdict(list)
    for r in rows:
        by_cell[r["cell"]].append(r)
    run["by_cell"] = {cell: {k: v for k, v in summarise(rs, syntax_results).items()
                             if k in ("tasks", "exact_match", "first_line_exact", "edit_similarity", "syntax_valid",
                                      "syntax_counted", "empty", "degenerate")}
                      for cell, rs in sorted(by_cell.items())}
    if keep_rows:
        run["per_task"] = [{"id": r["id"], "exact": r["exact"], "first_line_exact": r["first_line_exact"],
                            "edit_sim": round(r["edit_sim"], 4), "degenerate": r["degenerate"],
                            "syntax_ok": syntax_results[r["syntax_key"]], "completion": r["completion"],
                            **{k: r[k] for k in ("mean_confidence", "source") if k in r}} for r in rows]
    return run


# ---------------------------------------------------------------------------------------------------------------
# Masked-token NLL on the test split (drawn exactly like pretrain.py's validation canvases)
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_nll(m: Loaded, batches: int, batch_size: int, seed: int, corpus_dir: Optional[str]) -> dict:
    """Denoiser: ELBO bits/token on whole-window and on infill canvases (MC over stratified t, fixed seed).
    AR: bits/token left to right and on FIM middles. Both read the test split's token stream."""
    import pretrain

    stream = common.token_stream("test", corpus_dir or common.CORPUS_DIR, m.tokenizer_path)
    special = {k: special_id(m.special, k) for k in common.SPECIAL_TOKENS}
    newline = common.newline_table(m.tokenizer_path, int(m.config["vocab_size"]))
    T, n = m.max_seq_len, batches * batch_size
    trained = m.ckpt.get("args") or {}  # Span shapes as in training, so the numbers match its validation log.
    p_line, p_empty, eps = trained.get("p_line", 0.5), trained.get("p_empty", 0.05), trained.get("eps", 1e-3)
    out = {"canvases": n}
    if m.kind == "mdm":
        objective = pretrain.MDMObjective(m.model)
        for label, p_whole in (("test_elbo_bits", 1.0), ("test_elbo_infill_bits", 0.0)):
            rng = np.random.default_rng(seed)
            ex = pretrain.Examples(stream, special, newline, T, rng, p_whole, p_line, p_empty, 0.0)
            ts = eps + (1 - eps) * rng.permutation((np.arange(n) + rng.random()) / n)  # stratified t over canvases
            total = tokens = 0.0
            for i in range(batches):
                t = ts[i * batch_size:(i + 1) * batch_size]
                b = pretrain.to_device(pretrain.mdm_batch(ex, len(t), eps, rng, special["pad"], special["mask"], t=t),
                                       m.device)
                per_example = objective(b["xt"], b["x0"], b["masked"], b["span"], b["keypad"], 1.0 / b["t"].float())
                total += per_example.sum().item()
                tokens += b["span"].sum().item()
            out[label] = total / tokens / LN2
    else:
        objective = pretrain.ARObjective(m.model)
        for label, fim_rate in (("test_bits", 0.0), ("test_fim_middle_bits", 1.0)):
            rng = np.random.default_rng(seed)
            ex = pretrain.Examples(stream, special, newline, T, rng, 0.0, p_line, p_empty, fim_rate)
            total = tokens = 0.0
            for _ in range(batches):
                b = pretrain.to_device(pretrain.ar_batch(ex, batch_size, special["pad"]), m.device)
                ce = objective(b["inp"], b["tgt"])  # [B, T]
                keep = (b["tgt"] != -100) & (b["mid"] if fim_rate > 0 else torch.ones_like(b["mid"]))
                total += ce[keep].sum().item()
                tokens += keep.sum().item()
            out[label] = total / tokens / LN2
    return out


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def num(x: Optional[float], digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def headline(report: dict) -> list[str]:
    """The issue's target in words: does the denoiser at the focus setting beat the AR baseline on exact match and
    syntax validity? Said either way."""
    focus = report["focus"]
    mdm = next((r for r in report["runs"] if r["model"] == "mdm" and r.get("strategy") == focus["strategy"]
                and r.get("steps") == focus["steps"]), None)
    ar = next((r for r in report["runs"] if r["model"] == "ar"), None)
    if mdm is None or ar is None:
        return []
    parts = []
    for key, label in (("exact_match", "exact match"), ("syntax_valid", "syntax validity")):
        a, b = mdm[key], ar[key]
        if a is None or b is None:
            continue
        verdict = "beats" if a > b else ("ties" if a == b else "does not beat")
        parts.append(f"{verdict} the AR baseline on {label} ({pct(a)}% vs {pct(b)}%)")
    if not parts:
        return []
    text = (f"**{focus['strategy']}, {focus['steps']} steps:** the denoiser " + "; it ".join(parts) +
            f", on {mdm['tasks']} tasks.")
    if mdm["empty"] is not None and ar["empty"] is not None and mdm["empty"] > ar["empty"]:
        # An empty hole often leaves a file that parses, so syntax validity alone flatters a model that writes nothing.
        text += (f" But {pct(mdm['empty'])}% of the denoiser's completions are empty (AR: {pct(ar['empty'])}%), and "
                 "an empty hole often leaves a file that parses: its syntax validity says little until it writes code.")
    return [text, ""]


def candidates_summary(report: dict) -> list[str]:
    """What the N-candidates rows say, next to the single completion of the same setting through the same CLI."""
    out = []
    for ranked in (r for r in report["runs"] if r.get("pick") == "ranked"):
        same = [r for r in report["runs"] if r["model"] == ranked["model"] and r.get("strategy") == ranked["strategy"]
                and r.get("steps") == ranked["steps"] and r.get("copy_min_match") == ranked.get("copy_min_match")]
        single = next((r for r in same if not r.get("candidates")), None)
        best = next((r for r in same if r.get("pick") == "best" and r.get("candidates") == ranked["candidates"]), None)
        if single is None or best is None:
            continue
        n = ranked["candidates"]
        out += ["", f"Candidates ({ranked['strategy']}, {ranked['steps']} steps): {n} alternatives per task in one "
                f"batch through the CLI, ranked as the editor ranks the rows of an inline completion and \"Regenerate "
                f"with N Candidates\" (likelihood, tree-sitter syntax errors of the file, blank ones dropped, "
                f"near-duplicates merged). The top-ranked one: "
                f"edit similarity {pct(ranked['edit_similarity'])}%, syntax valid {pct(ranked['syntax_valid'])}%, "
                f"empty {pct(ranked['empty'])}%, against {pct(single['edit_similarity'])}%, "
                f"{pct(single['syntax_valid'])}% and {pct(single['empty'])}% for the single completion; the best of the "
                f"{n} (closest to the target, an upper bound on the ranking): edit similarity "
                f"{pct(best['edit_similarity'])}%, exact match {pct(best['exact_match'])}%."
                + (" (Syntax validity falls where empty completions fall: a blank hole often leaves a file that "
                   "parses.)" if ranked["syntax_valid"] is not None and single["syntax_valid"] is not None
                   and ranked["syntax_valid"] < single["syntax_valid"] and ranked["empty"] < single["empty"] else "")]
    return out


def run_label(run: dict) -> str:
    """The model column: the model, and for a candidates run how many and which one was scored."""
    copy = f" copy>={run['copy_min_match']}" if run.get("copy_min_match") else (
        " model only" if run.get("copy_min_match") == 0 else "")
    if run.get("candidates"):
        return f"{run['model']} x{run['candidates']} {run['pick']}{copy}"
    if run["model"] == "onnx":
        return f"onnx{copy}"
    if run["model"] == "copy" and run.get("context"):
        return f"copy ({COPY_CONTEXT_TEXT.get(run['context'], run['context'])})"
    return run["model"]


COPY_CONTEXT_TEXT = {"file": "whole file", "task": "model's context"}
KIND_TEXT = {"single-line": "single-line (one whole line)", "multi-line": "multi-line (2-4 whole lines)",
             "rest-of-line": "rest-of-line (the cursor inside a line, cut at a character position inside a token; "
                             "the target is the rest of the line)",
             "random-span": "random spans (1-64 tokens)"}


def focus_runs(report: dict) -> list[dict]:
    """The runs shown per language and kind: every model at the focus setting, the AR baseline and the copy
    lookup."""
    return [r for r in report["runs"] if r["model"] in ("ar", "copy") or
            (r.get("strategy") == report["focus"]["strategy"] and r.get("steps") == report["focus"]["steps"])]


def focus_label(r: dict) -> str:
    return run_label(r) if r["model"] in ("ar", "copy") else f"{run_label(r)} {r['strategy']} {r['steps']} steps"


def cell_table(report: dict) -> list[str]:
    """Every metric per language and kind, one row per (model, cell), models grouped by cell."""
    focus = focus_runs(report)
    if not focus:
        return []
    cells_all = sorted({c for r in focus for c in r["by_cell"]})
    lines = ["", "By language and kind (%):", "",
             "| language/kind | model | tasks | exact | first-line exact | edit sim | syntax valid | empty | "
             "degenerate |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells_all:
        for r in focus:
            v = r["by_cell"].get(c)
            if v is None:
                continue
            lines.append(f"| {c} | {focus_label(r)} | {v['tasks']} | {pct(v['exact_match'])} | "
                         f"{pct(v.get('first_line_exact'))} | {pct(v['edit_similarity'])} | {pct(v['syntax_valid'])} | "
                         f"{pct(v['empty'])} | {pct(v.get('degenerate'))} |")
    return lines


def pooled(run: dict, kind: str, key: str) -> Optional[float]:
    """A metric of one kind over every language group, weighted by tasks."""
    cells = [v for c, v in run["by_cell"].items() if c.rsplit("/", 1)[1] == kind and v.get(key) is not None]
    n = sum(v["tasks"] for v in cells)
    return sum(v[key] * v["tasks"] for v in cells) / n if n else None


def targets_summary(report: dict) -> list[str]:
    """Issue 11's targets for the shipped model at the focus setting (the single-completion onnx run; else the
    checkpoint's), said met or missed, and whether it beats the copy lookup on every language and kind (exact
    match)."""
    focus = report["focus"]
    model = next((r for name in ("onnx", "mdm") for r in report["runs"] if r["model"] == name
                  and not r.get("candidates") and r.get("strategy") == focus["strategy"]
                  and r.get("steps") == focus["steps"]), None)
    if model is None:
        return []
    checks = []
    for kind, key, label, goal in (("single-line", "first_line_exact", "single-line first-line exact", 0.15),
                                   ("rest-of-line", "exact_match", "rest-of-line exact", 0.25),
                                   ("multi-line", "exact_match", "multi-line exact", 0.03)):
        value = pooled(model, kind, key)
        if value is not None:
            checks.append(f"{label} {pct(value)}% ({'met' if value >= goal else 'missed'}: >= {pct(goal)}%)")
    if model.get("empty") is not None:
        checks.append(f"empty {pct(model['empty'])}% ({'met' if model['empty'] <= 0.05 else 'missed'}: <= 5.0%)")
    text = f"**Targets (issue 11), {focus_label(model)}:** " + "; ".join(checks) + "."
    for copy in (r for r in report["runs"] if r["model"] == "copy"):
        behind = [c for c, v in copy["by_cell"].items() if c in model["by_cell"]
                  and (model["by_cell"][c]["exact_match"] or 0.0) <= (v["exact_match"] or 0.0)]
        name = f"the {run_label(copy)} lookup"
        text += (f" Beats {name} on exact match in every language and kind." if not behind else
                 f" Does not beat {name} on exact match in {len(behind)} of {len(copy['by_cell'])} language/kind "
                 f"cells ({', '.join(behind)}).")
    return [text, ""]


def markdown(report: dict) -> str:
    lines = []
    t = report["tasks"]
    cells = ", ".join(f"{c} {n}" for c, n in t["by_cell"].items())
    lines.append(f"Tasks: {t['count']} infill tasks from the held-out test packages ({cells}); "
                 f"span length: {t['bucket']}; {report['sampler']}.")
    lines.append("")
    kinds = sorted({c.rsplit("/", 1)[1] for c in t["by_cell"]}, key=lambda k: list(KIND_TEXT).index(k)
                   if k in KIND_TEXT else len(KIND_TEXT))
    lines.append("The tasks (`models/recipe/tasks.py`, seeded) are cut from packages that no training split has seen: "
                 + ", ".join(KIND_TEXT.get(k, k) for k in kinds) + ", in Python and "
                 "TypeScript/JavaScript, with up to 184 tokens of context around the hole (prefix:suffix 3:1). "
                 "Exact match is compared after trimming trailing whitespace; first-line exact: the completion's first "
                 "line equals the target's (trailing whitespace trimmed), what a one-line ghost text must get right; "
                 "edit similarity is 1 - character Levenshtein / longer length; syntax valid means the whole file with "
                 "the completion parses (Python `ast`, the TypeScript parser), over the tasks whose original file "
                 "parses; empty: no visible text; degenerate: at least 6 code tokens, half of them or more covered by "
                 "one n-gram (n <= 4) repeated 3+ times (`self = self = self =`; `models/recipe/metrics.py`). "
                 "Completions are scored raw, before the editor's indentation tidying. `onnx` rows run the shipped "
                 "ONNX model through the extension's CLI (`node dist/cli.js --batch`, its engine, runtime and "
                 "post-processing); `mdm` rows run the Python twin of the engine's sampler (`models/recipe/sample.py`) "
                 "on the PyTorch checkpoint; the AR baseline decodes greedily from a PSM fill-in-the-middle prompt "
                 "with the same token cap as the denoiser's span; `copy` is the copy-from-file lookup: the longest "
                 "tail of the text before the cursor that occurs elsewhere in the file (whole file: everything around "
                 "the hole; model's context: the task's prefix and suffix only), and what followed it to the end of "
                 "that line (multi-line: whole lines on until the copy meets the suffix's first line, at most 4, else "
                 "2).")
    lines.append("")
    lines.extend(headline(report))
    if report.get("note"):
        lines.extend([report["note"], ""])
    lines.extend(targets_summary(report))
    lines.append("| model | strategy | steps | NFE | exact match % | first-line exact % | edit sim % | "
                 "syntax valid % | empty % | degenerate % | local AR@1 | global AR@1 | s/task |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["runs"]:
        lines.append(f"| {run_label(r)} | {r.get('strategy', '-')} | {r.get('steps', '-')} | {num(r['nfe'], 1)} | "
                     f"{pct(r['exact_match'])} | {pct(r.get('first_line_exact'))} | {pct(r['edit_similarity'])} | "
                     f"{pct(r['syntax_valid'])} | {pct(r['empty'])} | {pct(r.get('degenerate'))} | "
                     f"{num(r['arness_local'][0])} | {num(r['arness_global'][0])} | "
                     f"{num(r['seconds'] / max(r['tasks'], 1), 3)} |")
    lines.append("")
    lines.append(f"Syntax valid counts the {report['runs'][0]['syntax_counted'] if report['runs'] else 0} tasks whose "
                 "original file parses. Empty: completions with no visible text. NFE: model calls per task "
                 "(end-of-span fill ends a span early). s/task: CPU or GPU seconds per task of the setting "
                 "(batched). AR-ness is defined for one commit per step; "
                 "with fewer steps than span tokens the commits of a step are read left to right, and end-of-span "
                 "fill is left out.")
    lines.extend(candidates_summary(report))
    lines.extend(cell_table(report))
    mdm_runs = [r for r in report["runs"] if r["model"] == "mdm"]
    one_per_step = [r for r in mdm_runs if r.get("steps", 0) >= 64]
    if one_per_step:
        lines.append("")
        lines.append("AR-ness@k at >= 64 steps (about one commit per step), k = 1..8 (local / global):")
        lines.append("")
        lines.append("| strategy | steps | " + " | ".join(f"k={k}" for k in range(1, ARNESS_K + 1)) + " |")
        lines.append("|---|---:|" + "---:|" * ARNESS_K)
        for r in one_per_step:
            vals = [f"{num(lo)} / {num(gl)}" for lo, gl in zip(r["arness_local"], r["arness_global"])]
            lines.append(f"| {r['strategy']} | {r['steps']} | " + " | ".join(vals) + " |")
    nll = report.get("nll") or {}
    if nll:
        lines.append("")
        parts = []
        for model, values in nll.items():
            parts.append(model + ": " + ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "canvases")
                         + f" ({values['canvases']} canvases)")
        lines.append("Test-split NLL (bits/token; the denoiser's is an ELBO upper bound): " + "; ".join(parts) + ".")
    lines.append("")
    lines.append(f"Command (`{report['device']}`, {report['wall_seconds']:.0f} s):")
    lines.append("")
    lines.append("```")
    lines.append(report["command"])
    lines.append("```")
    return "\n".join(lines) + "\n"


def write_card_section(card_path: str, body: str) -> None:
    """Replaces the "## Evaluation" section (up to the next "## " heading) of the model card, or appends it."""
    text = ""
    if os.path.exists(card_path):
        with open(card_path, encoding="utf-8") as f:
            text = f.read()
    section = "## Evaluation\n\n" + body
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Evaluation"), None)
    if start is None:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        rest = "\n".join(lines[end:])
        text = "\n".join(lines[:start]) + ("\n" if start else "") + section + ("\n" + rest if rest else "")
    os.makedirs(os.path.dirname(os.path.abspath(card_path)), exist_ok=True)
    with open(card_path, "w", encoding="utf-8") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def model_facts(args, m: Optional[Loaded]) -> tuple[str, int, tuple[int, ...]]:
    """(tokenizer path, max_seq_len, span buckets) for cutting tasks and sizing spans: the checkpoint's, else the
    --onnx-cli model folder's (its tokenizer.json and manifest facts), else the recipe's defaults."""
    if m is not None:
        return m.tokenizer_path, m.max_seq_len, m.buckets
    tokenizer, max_seq_len, buckets = args.tokenizer or tasks_mod.DEFAULT_TOKENIZER, 256, tuple(common.SPAN_BUCKETS)
    if args.onnx_cli:
        with open(os.path.join(args.onnx_cli, "manifest.json"), encoding="utf-8") as f:
            facts = json.load(f).get("facts", {})
        max_seq_len = int(facts.get("unmask.max_seq_len", max_seq_len))
        buckets = tuple(json.loads(facts["unmask.span_buckets"])) if "unmask.span_buckets" in facts else buckets
        if not args.tokenizer and os.path.exists(os.path.join(args.onnx_cli, "tokenizer.json")):
            tokenizer = os.path.join(args.onnx_cli, "tokenizer.json")
    return tokenizer, max_seq_len, buckets


def select_tasks(all_tasks: list[dict], limit: int) -> list[dict]:
    """The first `limit` tasks taken round-robin over (language group, kind) cells, so small runs stay balanced."""
    by_cell: dict[str, list] = defaultdict(list)
    for task in all_tasks:
        by_cell[cell_of(task)].append(task)
    picked, queues = [], [list(v) for _, v in sorted(by_cell.items())]
    while len(picked) < limit and any(queues):
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked


def parse_list(text: str, cast):
    return [cast(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--ckpt", default=None,
      help="masked-diffusion checkpoint (runs/<name>/ckpt.pt) decoded with sample.py (optional: without it, only "
           "--onnx-cli, --ar-ckpt and --copy-baseline rows)")
    a("--ar-ckpt", default=None, help="AR baseline checkpoint scored on the same tasks (optional)")
    a("--tasks-file", default=tasks_mod.DEFAULT_OUT, help="tasks JSONL from tasks.py (made if missing)")
    a("--per-cell", type=int, default=100, help="when the tasks file is made here: tasks per (language group, kind)")
    a("--test", default=tasks_mod.DEFAULT_TEST, help="test split, when the tasks file is made here")
    a("--tasks", type=int, default=36, help="use this many tasks, round-robin over (language group, kind)")
    a("--steps", default=",".join(map(str, DEFAULT_STEPS)), help="comma-separated step counts to sweep")
    a("--strategies", default=",".join(sample.STRATEGIES), help="comma-separated unmasking strategies to sweep")
    a("--temperature", type=float, default=0.0, help="sampling temperature (0: argmax)")
    a("--top-p", type=float, default=1.0, help="nucleus mass when the temperature is above 0")
    a("--top-k", type=int, default=common.DEFAULT_TOP_K,
      help="K of the sampler's K-best lists (the exported head's K): greedy scores and sampling see only the K "
           "likeliest allowed tokens of a position")
    a("--threshold", type=float, default=0.0, help="also commit tokens at least this probable (0: off)")
    a("--eos-fill", action=argparse.BooleanOptionalAction, default=True,
      help="after an end-of-span commit, fill the rest of the span with end-of-span in the same step (the engine's "
           "default)")
    a("--eos-after-code", action=argparse.BooleanOptionalAction, default=True,
      help="end-of-span only right after committed code in its hole, so a span is never empty (the engine's default)")
    a("--bucket", default="oracle",
      help="span length: 'oracle' (smallest training bucket that holds the target), 'default' (the editor's "
           "unmask.maxSpanTokens for every task; the CLI gets no max_tokens and uses its own default, as the editor "
           "does) or a number of masks for every task")
    a("--seed", type=int, default=0, help="seed of the sampler (random strategy, temperature) and of the NLL draws")
    a("--batch-size", type=int, default=16, help="canvases per forward pass")
    a("--nll-batches", type=int, default=8, help="batches of test canvases for the NLL (0: skip)")
    a("--focus", default="confidence:64", help="strategy:steps shown per language and kind next to the AR baseline")
    a("--corpus-dir", default=None, help="folder with test.jsonl.gz for the NLL (default: the recipe's data/corpus)")
    a("--tokenizer", default=None, help="tokenizer.json (default: the checkpoint's)")
    a("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to run the models")
    a("--threads", type=int, default=1, help="torch CPU threads (the machine is shared: 1 by default)")
    a("--out", default=os.path.join(HERE, "data", "eval", "results.json"), help="JSON results")
    a("--markdown", default=os.path.join(HERE, "data", "eval", "results.md"), help="markdown table")
    a("--card", default=None, help="model card whose '## Evaluation' section is rewritten with the table")
    a("--note", default=None, help="a paragraph to print under the headline (what the numbers mean for this "
                                  "checkpoint); kept out of the recorded command")
    a("--per-task", action="store_true", help="keep every task's completion and scores in the JSON")
    a("--node", default="node", help="Node.js binary for the TypeScript syntax check and the CLI")
    a("--onnx-cli", default=None, metavar="MODEL_DIR",
      help="also score this shipped model folder (manifest + ONNX) through the TypeScript CLI's batch mode at every "
           "swept setting (rows labelled 'onnx'; the CLI's text post-processing applies)")
    a("--onnx-precision", default="auto", choices=["auto", "int8", "fp32"], help="ONNX weights the CLI loads")
    a("--onnx-candidates", default="", metavar="N,...",
      help="with --onnx-cli, at the --focus setting: for each N (comma-separated, each > 1) also generate N candidates "
           "per task in one batch, ranked as the editor ranks them (inline rows, 'Regenerate with N Candidates'), and "
           "score the top-ranked one ('ranked') and the one closest to the target ('best', an upper bound on the "
           "ranking)")
    a("--cli", default=os.path.join("dist", "cli.js"), help="the built CLI, relative to the repository root")
    a("--cli-copy-min-match", default="", metavar="N,...",
      help="with --onnx-cli: one 'onnx' row per N, the CLI run with --copy-min-match N (the copy candidate goes first "
           "when a run of N characters before the cursor recurs in the file; 0: the model's rows alone); default: "
           "one row at the CLI's default, as the editor runs")
    a("--copy-baseline", action="store_true",
      help="also score the copy-from-file lookup (row 'copy'): the longest tail of the text before the cursor that "
           "occurs elsewhere in the context, and what followed it to the end of that line (metrics.copy_from_file)")
    a("--copy-context", default="file,task",
      help="comma-separated, one copy row each: where the copy lookup looks, 'file' (the whole file around the hole, "
           "as issue 11 defines the baseline) or 'task' (the task's prefix and suffix, the context the models are "
           "given)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    # The command as typed; when it was not run from the repository root, the folder it was run from comes first.
    given = sys.argv[1:] if argv is None else list(argv)
    given = [x for i, x in enumerate(given)
             if x != "--note" and not x.startswith("--note=") and (i == 0 or given[i - 1] != "--note")]
    script = os.path.relpath(os.path.abspath(__file__), os.getcwd())
    command = " ".join(["python", script] + [shlex.quote(x) for x in given])
    where = os.path.relpath(os.getcwd(), REPO)
    if where != ".":
        command = (f"cd {shlex.quote(where)} && " if not where.startswith("..") else f"cd {os.getcwd()} && ") + command
    wall0 = time.time()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if (args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()))
                          else "cpu")
    fixed_bucket = (None if args.bucket == "oracle" else editor_span_tokens() if args.bucket == "default"
                    else int(args.bucket))
    steps_list = parse_list(args.steps, int)
    strategies = parse_list(args.strategies, str)
    for s in strategies:
        if s not in sample.STRATEGIES:
            raise SystemExit(f"eval: unknown strategy {s!r}; choose from {', '.join(sample.STRATEGIES)}")
    focus_strategy, focus_steps = args.focus.split(":")
    if any(not 2 <= n <= 16 for n in parse_list(args.onnx_candidates, int)):
        raise SystemExit(f"eval: --onnx-candidates {args.onnx_candidates}: each N must be 2 to 16 (the CLI's range)")
    if args.onnx_candidates and not args.onnx_cli:
        raise SystemExit("eval: --onnx-candidates needs --onnx-cli MODEL_DIR")

    if not (args.ckpt or args.ar_ckpt or args.onnx_cli or args.copy_baseline):
        raise SystemExit("eval: nothing to score; give --ckpt, --ar-ckpt, --onnx-cli or --copy-baseline")
    mdm = Loaded(args.ckpt, device, args.tokenizer) if args.ckpt else None
    if mdm is not None and mdm.kind != "mdm":
        raise SystemExit(f"eval: {args.ckpt} is a {mdm.kind!r} checkpoint; --ckpt takes the denoiser")
    ar = Loaded(args.ar_ckpt, device, args.tokenizer) if args.ar_ckpt else None
    if ar is not None and ar.kind != "ar":
        raise SystemExit(f"eval: {args.ar_ckpt} is a {ar.kind!r} checkpoint; --ar-ckpt takes the AR baseline")
    tokenizer_path, max_seq_len, buckets = model_facts(args, mdm or ar)

    if not os.path.exists(args.tasks_file):
        tasks_mod.main(["--test", args.test, "--tokenizer", tokenizer_path, "--out", args.tasks_file,
                        "--per-cell", str(args.per_cell), "--max-seq-len", str(max_seq_len)])
    with open(args.tasks_file, encoding="utf-8") as f:
        all_tasks = [json.loads(line) for line in f if line.strip()]
    task_list = select_tasks(all_tasks, args.tasks)
    if not task_list:
        raise SystemExit(f"eval: no tasks in {args.tasks_file}")
    print(f"eval: {len(task_list)} tasks, {len(strategies)} strategies x {len(steps_list)} step counts on {device}",
          file=sys.stderr)

    syntax = SyntaxBatch(args.node)
    original_ok = [syntax.add(t["language"], t.get("path"), t["file"]) for t in task_list]
    runs = []
    decoded: dict = {}  # Results by (task, strategy, effective steps, ...), shared across step counts.
    for strategy in strategies:
        for steps in steps_list:
            options = sample.SamplerOptions(steps=steps, strategy=strategy, temperature=args.temperature,
                                            top_p=args.top_p, top_k=args.top_k, threshold=args.threshold,
                                            eos_fill=args.eos_fill, eos_after_code=args.eos_after_code)
            if mdm is not None:
                outputs, seconds = run_denoiser(mdm, task_list, options, fixed_bucket, args.batch_size, args.seed,
                                                decoded)
                runs.append(score_run("mdm", task_list, outputs, syntax, original_ok, seconds,
                                      {"model": "mdm", "strategy": strategy, "steps": steps}))
                print(f"eval: mdm {strategy} {steps} steps: {seconds:.1f} s", file=sys.stderr)
            copy_mins = parse_list(args.cli_copy_min_match, int) or [None]
            for copy_min in (copy_mins if args.onnx_cli else []):
                extra = {} if copy_min is None else {"copy_min_match": copy_min}
                outputs, seconds = run_onnx_cli(args.onnx_cli, task_list, options, fixed_bucket, buckets, args,
                                                copy_min_match=copy_min)
                runs.append(score_run("onnx", task_list, outputs, syntax, original_ok, seconds,
                                      {"model": "onnx", "strategy": strategy, "steps": steps, **extra}))
                print(f"eval: onnx {strategy} {steps} steps {extra}: {seconds:.1f} s", file=sys.stderr)
            at_focus = (strategy, steps) == (focus_strategy, int(focus_steps))
            for n in (parse_list(args.onnx_candidates, int) if args.onnx_cli and at_focus else []):
                for copy_min in copy_mins:
                    extra = {} if copy_min is None else {"copy_min_match": copy_min}
                    outputs, seconds = run_onnx_cli(args.onnx_cli, task_list, options, fixed_bucket, buckets, args, n,
                                                    copy_min_match=copy_min)
                    for pick, picked in (("ranked", outputs), ("best", best_of(task_list, outputs))):
                        runs.append(score_run("onnx", task_list, picked, syntax, original_ok, seconds,
                                              {"model": "onnx", "strategy": strategy, "steps": steps, "candidates": n,
                                               "pick": pick, **extra}))
                    print(f"eval: onnx {strategy} {steps} steps, {n} candidates {extra}: {seconds:.1f} s",
                          file=sys.stderr)
    if ar is not None:
        outputs, seconds = run_ar(ar, task_list, fixed_bucket, buckets, args.batch_size)
        runs.append(score_run("ar", task_list, outputs, syntax, original_ok, seconds, {"model": "ar"}))
        print(f"eval: ar greedy: {seconds:.1f} s", file=sys.stderr)
    for context in (parse_list(args.copy_context, str) if args.copy_baseline else []):
        if context not in ("file", "task"):
            raise SystemExit(f"eval: --copy-context {context!r}: choose 'file' or 'task'")
        outputs, seconds = run_copy(task_list, context)
        runs.append(score_run("copy", task_list, outputs, syntax, original_ok, seconds,
                              {"model": "copy", "context": context}))
    syntax_results = syntax.run()
    runs = [finish(r, syntax_results, args.per_task) for r in runs]

    nll = {}
    if args.nll_batches > 0 and (mdm is not None or ar is not None):
        t0 = time.time()
        if mdm is not None:
            nll["mdm"] = test_nll(mdm, args.nll_batches, args.batch_size, args.seed, args.corpus_dir)
        if ar is not None:
            nll["ar"] = test_nll(ar, args.nll_batches, args.batch_size, args.seed, args.corpus_dir)
        print(f"eval: test NLL: {time.time() - t0:.1f} s", file=sys.stderr)

    by_cell: dict[str, int] = defaultdict(int)
    for task in task_list:
        by_cell[cell_of(task)] += 1
    sampler = (f"K-best lists of {args.top_k}, temperature {args.temperature}"
               + (f", top-p {args.top_p}" if args.temperature > 0 else "")
               + (f", threshold {args.threshold}" if args.threshold > 0 else "")
               + (", end-of-span fill" if args.eos_fill else ", no end-of-span fill")
               + (", end-of-span after code" if args.eos_after_code else ", end-of-span anywhere") + f", seed {args.seed}")
    report = {
        "command": command,
        "device": f"{device.type}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "wall_seconds": time.time() - wall0,
        "mdm": mdm.summary() if mdm else None,
        "onnx": args.onnx_cli,
        "ar": ar.summary() if ar else None,
        "tasks": {"file": os.path.relpath(os.path.abspath(args.tasks_file), REPO), "count": len(task_list),
                  "by_cell": dict(sorted(by_cell.items())),
                  "bucket": "oracle bucket" if fixed_bucket is None else
                  (f"the editor's default, {fixed_bucket} masks" if args.bucket == "default"
                   else f"{fixed_bucket} masks")},
        "sampler": sampler,
        "focus": {"strategy": focus_strategy, "steps": int(focus_steps)},
        "note": args.note,
        "runs": runs,
        "nll": nll,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    body = markdown(report)
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(body)
    if args.card:
        write_card_section(args.card, body)
    print(body)
    return report


if __name__ == "__main__":
    main()
