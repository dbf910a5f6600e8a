"""Reward data stage: the shipped model's own candidates on tasks cut from the corpus's valid split, labelled against
the code that was really there, for scripts/train_reward.py (a discriminator that ranks candidates).

Run from models/recipe/ (after `node esbuild.mjs` at the repository root; the valid split of the corpus the model was
trained on, never the test split or a benchmark):
    python -m scripts.data_tasks --test data/corpus-grown/valid.jsonl.gz --per-cell 1500 --max-per-file 6 \
        --seed 7 --id-prefix rw- --out data/reward/tasks.jsonl
    python -m scripts.data_reward --tasks-file data/reward/tasks.jsonl --out data/reward/examples.jsonl.gz
(4 candidates per task through the CLI's batch mode: 7124 tasks in 14 minutes on 2 cores.)

The candidates come from the extension's CLI with `--canvases`, so every canvas is laid out exactly as the editor
lays it out (language tag, context window, token healing, span bucket) and as the runtime hands it to the reward
model (server/protocol/candidates.ts), and the rows are the ranked candidates themselves (near-duplicates merged,
blank rows dropped), each with the CLI's ranking score. Per task (one JSON line of the output):
    {"id", "language", "kind", "span": [P] canvas positions of the hole, "items": [
        {"source": "target",  "label": 1, "canvas": [T] ids},        the real code in the same canvas
        {"source": "model",   "label": 0|1, "similarity", "canvas": [T] ids, "text", "score" (the CLI's ranking
         score), "log_prob", "mean_confidence"}, ...]}
A model row's label is 1 when its first line is the target's (what a ghost text must get right), else 0; its
similarity is the edit similarity of the two first lines (a graded label for tasks whose rows are all wrong). The target
canvas is the first row's canvas with the span rewritten: the healed text plus the target, tokenised alone as the
model writes a span, then end-of-span to the end (a target longer than the span is left out, its rows kept). Rows are
written as the runtime scores them: every span position after the first end-of-span holds end-of-span
(candidates.ts does the same before it scores).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time

from unmask.common import load_tokenizer, read_special_ids
from unmask.metrics import edit_similarity, first_line, first_line_exact
from unmask.onnx_cli import model_rows
from unmask.paths import command_line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks-file", default="data/reward/tasks.jsonl",
                   help="infill tasks cut from the valid split (data_tasks.py's JSONL)")
    p.add_argument("--tasks", type=int, default=0, help="use the first N tasks (0: all)")
    p.add_argument("--out", default="data/reward/examples.jsonl.gz", help="where the labelled canvases go")
    p.add_argument("--model", default="../unmask-coder-base", help="model folder the CLI loads")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the model folder's)")
    p.add_argument("--candidates", type=int, default=4, help="rows per task (the CLI's --candidates, 2-16)")
    p.add_argument("--steps", type=int, default=8, help="denoising steps")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads of the CLI")
    p.add_argument("--seed", type=int, default=0, help="the CLI's sampling seed")
    p.add_argument("--node", default="node", help="Node.js binary")
    p.add_argument("--cli", default="dist/cli.js", help="the CLI bundle, relative to the repository root")
    return p.parse_args(argv)


def eos_after_first(canvas: list[int], span: list[int], eos: int) -> list[int]:
    """The canvas with every span position after the first end-of-span set to end-of-span (the text as inserted)."""
    out = list(canvas)
    ended = False
    for p in span:
        if ended:
            out[p] = eos
        elif out[p] == eos:
            ended = True
    return out


def target_canvas(canvas: list[int], span: list[int], ids: list[int], eos: int):
    """`canvas` with the span holding `ids` then end-of-span; None when they do not fit with one end-of-span."""
    if len(ids) + 1 > len(span):
        return None
    out = list(canvas)
    for k, p in enumerate(span):
        out[p] = ids[k] if k < len(ids) else eos
    return out


def examples(task: dict, answer: dict, encode, eos: int):
    """One task's labelled canvases (see the module docstring), or None without rows."""
    rows, span = answer.get("rows") or [], answer.get("span") or []
    if not rows or not span:
        return None
    stats = {(c["text"]): c for c in answer.get("candidates") or []}
    items = []
    real = target_canvas(rows[0]["canvas"], span, encode(answer.get("healed", "") + task["target"]), eos)
    if real is not None:
        items.append({"source": "target", "label": 1, "canvas": real})
    for row in rows:
        c = stats.get(row["text"], {})
        items.append({"source": "model", "label": int(first_line_exact(row["text"], task["target"])),
                      "similarity": round(edit_similarity(first_line(row["text"]), first_line(task["target"])), 4),
                      "canvas": eos_after_first(row["canvas"], span, eos), "text": row["text"],
                      "score": c.get("score"), "log_prob": c.get("log_prob"),
                      "mean_confidence": c.get("mean_confidence")})
    return {"id": task.get("id"), "language": task["language"], "kind": task.get("kind"), "span": span, "items": items}


def main(argv=None):
    args = parse_args(argv)
    tokenizer_path = args.tokenizer or os.path.join(args.model, "tokenizer.json")
    tok = load_tokenizer(tokenizer_path)
    eos = read_special_ids(tokenizer_path)["eos"]
    with open(args.tasks_file, encoding="utf-8") as f:
        tasks = [json.loads(line) for line in f if line.strip()]
    if args.tasks:
        tasks = tasks[:args.tasks]
    t0 = time.time()
    answers, seconds = model_rows(args, tasks, ("--canvases",))
    encode = lambda text: tok.encode(text, add_special_tokens=False).ids  # noqa: E731
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    written = rows = right = tasks_right = 0
    with gzip.open(args.out, "wt", encoding="utf-8") as f:
        for i, task in enumerate(tasks):
            ex = examples(task, answers.get(i, {}), encode, eos)
            if ex is None:
                continue
            f.write(json.dumps(ex) + "\n")
            model_labels = [it["label"] for it in ex["items"] if it["source"] == "model"]
            written, rows, right = written + 1, rows + len(model_labels), right + sum(model_labels)
            tasks_right += int(0 < sum(model_labels) < len(model_labels))
    print(f"reward data: {written} of {len(tasks)} tasks, {rows} model rows ({right} with the right first line; "
          f"{tasks_right} tasks with right and wrong rows) in {seconds:.0f} s of CLI, {time.time() - t0:.0f} s in all "
          f"-> {args.out}\ncommand: `{command_line('scripts.data_reward', sys.argv[1:] if argv is None else argv)}`")


if __name__ == "__main__":
    main()
