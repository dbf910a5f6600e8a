"""Evaluates the shipped model, a masked-diffusion checkpoint, the AR baseline and the copy-from-file lookup on infill
tasks cut from the held-out test packages.

The held-out eval (issue 11: 600 tasks, 100 per language group x kind; the shipped int8 model through the
extension's CLI at 8 steps and the editor's defaults, next to the copy-from-file lookup; build the CLI first with
`node esbuild.mjs`; about 2 minutes on 2 CPU cores; every command here runs from models/recipe/):
    python -m scripts.eval_heldout --onnx-cli ../unmask-coder-base --onnx-precision int8 --copy-baseline \
        --tasks 600 --steps 8 --strategies confidence --focus confidence:8 --bucket default --nll-batches 0 \
        --out data/eval/heldout.json --markdown data/eval/heldout.md
  add `--ckpt runs/<mdm>/ckpt.pt` for the PyTorch checkpoint through sample.py (rows 'mdm') and
  `--ar-ckpt runs/<ar>/ckpt.pt` for the AR baseline; the tasks are data/eval/heldout.jsonl (scripts.data_tasks
  cuts them when missing: single-line, multi-line 2-4 lines, rest-of-line with the cursor inside a token), which
  `node dist/cli.js --batch models/recipe/data/eval/heldout.jsonl --out results.jsonl` (from the repository root) also reads as it is.
  HumanEval-Infilling with executed tests is eval_humaneval.py. With --ckpt, `--disc runs/<distill>/disc.pt` adds
  rows 'mdm-guided': the same settings with DiDi-Instruct's reward-guided sampling (unmask/guided.py; issue 13).

The decoding sweep (36 tasks, 4 strategies x 8 step counts, the AR baseline and the NLL; 349 s measured on one
free CPU core for the CPU-trained 4 x 256 model, up to about 10 minutes for a model that writes longer spans):
    python -m scripts.eval_heldout --ckpt runs/cpu-mdm-base/ckpt.pt \
        --ar-ckpt runs/cpu-ar-base/ckpt.pt --card ../unmask-coder-base/MODEL_CARD.md
Quick look at one setting:
    python -m scripts.eval_heldout --ckpt runs/cpu-mdm-base/ckpt.pt --tasks 12 --steps 8 \
        --strategies confidence --nll-batches 0
On a GPU, all 600 tasks of the default tasks file: add --tasks 600 --device cuda.
The shipped ONNX model through the extension's own engine (the TypeScript CLI, built by `node esbuild.mjs`), and its
ranking of N candidates at the --focus setting (N = 2: inline completions' rows; 4: "Regenerate with N
Candidates"): add --onnx-cli ../unmask-coder-base --onnx-candidates 2,4.

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

Tasks come from scripts.data_tasks (`--tasks-file`, created with `--per-cell` if missing). The span is given the
oracle length bucket by default (the smallest training bucket that holds the target; the model still chooses the exact length by
writing end-of-span tokens); `--bucket N` gives every task N masks instead, `--bucket default` the editor's default
span (and the CLI its own default, as the editor sends it).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
import zlib
from collections import defaultdict
from typing import Optional

import torch

from scripts import data_tasks
from unmask import common, guided, report, sample
from unmask import tasks as tasks_lib
from unmask.canvas import ar_prompt, bucket_for, denoiser_canvas, editor_span_tokens
from unmask.card import replace_section
from unmask.checkpoint import Loaded, load
from unmask.loss_eval import test_nll
from unmask.metrics import (arness_profile, copy_from_file, degenerate, edit_similarity, exact_match,
                            first_line_exact, nanmean, ARNESS_K)
from unmask.onnx_cli import other_open_files, run_onnx_cli, setting_record
from unmask.syntax import SyntaxBatch
from unmask.tasks import GROUP_OF

DEFAULT_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
# The gate's calibration set (--calibration-set; data_tasks --seed 1 --per-cell 150 --exclude <held-out tasks>).
CALIBRATION_TASKS = str(common.DATA_DIR / "eval" / "gate-calibration.jsonl")
CALIBRATION_SEED = 1
CALIBRATION_PER_CELL = 150
# Per-task keys the CLI's rows carry for the gate's calibration: mean confidence, source, the gate's numbers and score.
GATE_KEYS = ("mean_confidence", "source", "gate")


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
                 batch_size: int, seed: int, cache: dict, disc=None,
                 guidance: Optional[guided.GuidanceOptions] = None) -> tuple[list[dict], float]:
    """Fills every task with the denoiser; returns (per task {completion, order, nfe}, seconds). With `disc` and
    `guidance` (--disc), guided.guided_denoise's reward-guided sampling instead of sample.denoise; the seconds then
    include the discriminator's calls and gradients.

    More steps than a span has masks decode exactly like as many steps as masks (one commit per step either way, and
    each task has its own random stream), so such a task reuses the result cached under min(steps, span) and its
    time: the seconds are what the setting costs, whether computed now or before."""
    out: list[Optional[dict]] = [None] * len(task_list)
    seconds = [0.0] * len(task_list)
    items, meta = [], {}
    for i, task in enumerate(task_list):
        bucket = bucket_for(task["target_tokens"], m.buckets, fixed_bucket)
        key = (i, options.strategy, min(options.steps, bucket), options.temperature, options.top_p, options.top_k,
               options.threshold, options.eos_fill, options.eos_after_code, guidance)
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
        if guidance is None:
            result = sample.denoise(m.denoiser_fn, canvas, m.mask_id, m.eos_id, options, generators, m.banned_ids)
        else:
            result = guided.guided_denoise(m.denoiser_fn, disc, canvas, m.mask_id, m.eos_id, options, generators,
                                           m.banned_ids, guidance=guidance)
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
            # The CLI's confidence in its answer, where it came from and the gate's numbers for it, for the gate's
            # calibration (--per-task; scripts/eval_calibrate.py).
            **{k: output[k] for k in GATE_KEYS if output.get(k) is not None},
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
                            **{k: r[k] for k in GATE_KEYS if k in r}} for r in rows]
    return run


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def model_facts(args, m: Optional[Loaded]) -> tuple[str, int, tuple[int, ...]]:
    """(tokenizer path, max_seq_len, span buckets) for cutting tasks and sizing spans: the checkpoint's, else the
    --onnx-cli model folder's (its tokenizer.json and manifest facts), else the recipe's defaults."""
    if m is not None:
        return m.tokenizer_path, m.max_seq_len, m.buckets
    tokenizer, max_seq_len, buckets = args.tokenizer or tasks_lib.DEFAULT_TOKENIZER, 256, tuple(common.SPAN_BUCKETS)
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
    a("--disc", default=None,
      help="with --ckpt: DiDi-Instruct discriminator (runs/<distill>/disc.pt); adds rows 'mdm-guided', the same "
           "settings with reward-guided sampling (unmask/guided.py), next to the unguided 'mdm' rows")
    a("--guidance-tilt", type=float, default=guided.GuidanceOptions.tilt,
      help="with --disc: strength h of the gradient tilt in the first half of the steps (0: no tilt)")
    a("--guidance-candidates", type=int, default=guided.GuidanceOptions.candidates,
      help="with --disc: candidate commits M scored by the discriminator per reranked step (1: no reranking)")
    a("--guidance-select", default=guided.GuidanceOptions.select, choices=["sample", "argmax"],
      help="with --disc: keep a reranked step's candidate drawn from softmax(scores), or the best-scored")
    a("--tasks-file", default=tasks_lib.DEFAULT_OUT, help="tasks JSONL from scripts.data_tasks (made if missing)")
    a("--per-cell", type=int, default=100, help="when the tasks file is made here: tasks per (language group, kind)")
    a("--calibration-set", action="store_true",
      help="the gate's calibration tasks instead (scripts/eval_calibrate.py): --tasks-file "
           f"{os.path.relpath(CALIBRATION_TASKS, common.RECIPE_DIR)}, cut when missing from the same test split with "
           f"seed {CALIBRATION_SEED}, {CALIBRATION_PER_CELL} per cell, no hole overlapping a task of the default tasks "
           "file")
    a("--test", default=tasks_lib.DEFAULT_TEST, help="test split, when the tasks file is made here")
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
    a("--out", default=str(common.DATA_DIR / "eval" / "results.json"), help="JSON results")
    a("--markdown", default=str(common.DATA_DIR / "eval" / "results.md"), help="markdown table")
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
    a("--cli-latency-budget", type=int, default=0, metavar="MS",
      help="with --onnx-cli: run the CLI with --latency-budget MS (unmask.latencyBudgetMs: a step after which another "
           "would end past the deadline commits every remaining token); 0: every step, as explicit requests run")
    a("--cli-multiline", default=None, choices=["auto", "always", "never"],
      help="with --onnx-cli: run the CLI with --multiline (unmask.multiline: auto cuts a completion to one line when "
           "the cursor follows code on its line; always keeps every line, as before session 8); default: the CLI's")
    a("--cli-min-line-confidence", type=float, default=None, metavar="X",
      help="with --onnx-cli: the CLI's --min-line-confidence (under --multiline auto at a line start, the lines after "
           "the first are kept while each one's least token probability is at least X; 0 keeps every line); "
           "default: the CLI's")
    a("--cli-cache-ngram", default=None, choices=["on", "off"],
      help="with --onnx-cli: run the CLI with --cache-ngram on|off (unmask.cacheNgram: the cache n-gram model of the "
           "file's tokens mixed into the sampler where a position's left neighbours are written); default: the "
           "CLI's default")
    a("--cli-cache-ngram-weight", type=float, default=None, metavar="X",
      help="with --onnx-cli: the CLI's --cache-ngram-weight (the most weight the cache gets, 0 to 1); default: the "
           "CLI's")
    a("--cli-cache-ngram-order", type=int, default=None, metavar="N",
      help="with --onnx-cli: the CLI's --cache-ngram-order (the cache's longest n-gram); default: the CLI's")
    a("--cli-cache-ngram-open-documents", type=int, default=None, metavar="N",
      help="with --onnx-cli: give each task N other files of its package and language family from --test as the "
           "editor's other open documents (nearest folder first; onnx_cli.other_open_files) and run the CLI with "
           "--cache-ngram-open-documents N (unmask.cacheNgramOpenDocuments); default: none given, the CLI's default")
    a("--cli-related-context-tokens", type=int, default=None, metavar="N",
      help="with --onnx-cli: the CLI's --related-context-tokens (unmask.relatedContextTokens: canvas tokens for chunks "
           "of the other open files, for a model trained with them, train_pretrain --p-related; 0: none); default: the "
           "CLI's")
    a("--cli-context-tokens", type=int, default=None, metavar="N",
      help="with --onnx-cli: the CLI's --context-tokens (unmask.contextTokens: tokens of text around the cursor, capped "
           "by the model's max_seq_len less the span); default: the CLI's")
    a("--open-files", type=int, default=None, metavar="N",
      help="with --onnx-cli: give each task N other files of its package and language family from --test as the "
           "editor's other open documents (onnx_cli.other_open_files), for the cache n-gram model and the related "
           "snippets; default: --cli-cache-ngram-open-documents, else none")
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
    # The command as typed (without --note); run from models/recipe/, else the folder it ran from comes first.
    given = sys.argv[1:] if argv is None else list(argv)
    given = [x for i, x in enumerate(given)
             if x != "--note" and not x.startswith("--note=") and (i == 0 or given[i - 1] != "--note")]
    command = common.command_line("scripts.eval_heldout", given)
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
    mdm = load(args.ckpt, device, args.tokenizer) if args.ckpt else None
    if args.disc and mdm is None:
        raise SystemExit("eval: --disc guides the --ckpt denoiser's sampling; give --ckpt too")
    disc = guided.load_disc(args.disc, device) if args.disc else None
    guidance = (guided.GuidanceOptions(tilt=args.guidance_tilt, candidates=args.guidance_candidates,
                                       select=args.guidance_select) if disc is not None else None)
    if mdm is not None and mdm.kind != "mdm":
        raise SystemExit(f"eval: {args.ckpt} is a {mdm.kind!r} checkpoint; --ckpt takes the denoiser")
    ar = load(args.ar_ckpt, device, args.tokenizer) if args.ar_ckpt else None
    if ar is not None and ar.kind != "ar":
        raise SystemExit(f"eval: {args.ar_ckpt} is a {ar.kind!r} checkpoint; --ar-ckpt takes the AR baseline")
    tokenizer_path, max_seq_len, buckets = model_facts(args, mdm or ar)

    if args.calibration_set:
        args.tasks_file = CALIBRATION_TASKS
        if not os.path.exists(args.tasks_file):
            held_out = tasks_lib.DEFAULT_OUT
            if not os.path.exists(held_out):
                data_tasks.main(["--test", args.test, "--tokenizer", tokenizer_path, "--out", held_out,
                                "--per-cell", str(args.per_cell), "--max-seq-len", str(max_seq_len)])
            data_tasks.main(["--test", args.test, "--tokenizer", tokenizer_path, "--out", args.tasks_file,
                            "--per-cell", str(CALIBRATION_PER_CELL), "--seed", str(CALIBRATION_SEED),
                            "--exclude", held_out, "--id-prefix", "cal-", "--max-seq-len", str(max_seq_len)])
    if not os.path.exists(args.tasks_file):
        data_tasks.main(["--test", args.test, "--tokenizer", tokenizer_path, "--out", args.tasks_file,
                        "--per-cell", str(args.per_cell), "--max-seq-len", str(max_seq_len)])
    with open(args.tasks_file, encoding="utf-8") as f:
        all_tasks = [json.loads(line) for line in f if line.strip()]
    task_list = select_tasks(all_tasks, args.tasks)
    if not task_list:
        raise SystemExit(f"eval: no tasks in {args.tasks_file}")
    print(f"eval: {len(task_list)} tasks, {len(strategies)} strategies x {len(steps_list)} step counts on {device}",
          file=sys.stderr)

    open_files = getattr(args, "open_files", None)
    if open_files is None:
        open_files = getattr(args, "cli_cache_ngram_open_documents", None)
    if open_files:
        split = args.test
        if not os.path.exists(split):
            raise SystemExit(f"eval: --open-files reads other files from the test split; {split} is missing")
        opener = gzip.open if split.endswith(".gz") else open
        with opener(split, "rt", encoding="utf-8") as f:
            files = [json.loads(line) for line in f if line.strip()]
        task_list = [{**t, "related": other_open_files(t, files, open_files)} for t in task_list]
        given = [len(t["related"]) for t in task_list]
        print(f"eval: {sum(given) / len(given):.1f} other open files per task (at most {open_files}) from {split}",
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
            if guidance is not None:
                outputs, seconds = run_denoiser(mdm, task_list, options, fixed_bucket, args.batch_size, args.seed,
                                                decoded, disc, guidance)
                runs.append(score_run("mdm-guided", task_list, outputs, syntax, original_ok, seconds,
                                      {"model": "mdm-guided", "strategy": strategy, "steps": steps,
                                       "guidance": {"tilt": guidance.tilt, "candidates": guidance.candidates,
                                                    "select": guidance.select}}))
                print(f"eval: mdm guided {strategy} {steps} steps: {seconds:.1f} s", file=sys.stderr)
            copy_mins = parse_list(args.cli_copy_min_match, int) or [None]
            for copy_min in (copy_mins if args.onnx_cli else []):
                extra = ({} if copy_min is None else {"copy_min_match": copy_min}) | setting_record(args)
                outputs, seconds = run_onnx_cli(args.onnx_cli, task_list, options, fixed_bucket, buckets, args,
                                                copy_min_match=copy_min)
                runs.append(score_run("onnx", task_list, outputs, syntax, original_ok, seconds,
                                      {"model": "onnx", "strategy": strategy, "steps": steps, **extra}))
                print(f"eval: onnx {strategy} {steps} steps {extra}: {seconds:.1f} s", file=sys.stderr)
            at_focus = (strategy, steps) == (focus_strategy, int(focus_steps))
            for n in (parse_list(args.onnx_candidates, int) if args.onnx_cli and at_focus else []):
                for copy_min in copy_mins:
                    extra = ({} if copy_min is None else {"copy_min_match": copy_min}) | setting_record(args)
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
    result = {
        "command": command,
        "device": f"{device.type}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "wall_seconds": time.time() - wall0,
        "mdm": mdm.summary() if mdm else None,
        "onnx": args.onnx_cli,
        "ar": ar.summary() if ar else None,
        "tasks": {"file": os.path.relpath(os.path.abspath(args.tasks_file), common.REPO_DIR), "count": len(task_list),
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
        json.dump(result, f, indent=1)
    body = report.markdown(result)
    os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(body)
    if args.card:
        replace_section(args.card, "## Evaluation", "## Evaluation\n\n" + body)
    print(body)
    return result


if __name__ == "__main__":
    main()
