"""Cuts the held-out eval's infill tasks from the test split (unmask/tasks.py has the kinds and the cutting rules).

Run from models/recipe/ (the held-out eval's 600 tasks; scripts/eval_heldout.py makes the same file when it is
missing):
    python -m scripts.data_tasks --per-cell 100
      (reads data/corpus/test.jsonl.gz and the tokenizer, writes data/eval/heldout.jsonl)
The gate's calibration set (scripts/eval_calibrate.py): other holes of the same held-out files, another seed, none
overlapping a held-out eval task:
    python -m scripts.data_tasks --per-cell 150 --seed 1 --exclude data/eval/heldout.jsonl --id-prefix cal- \
        --out data/eval/gate-calibration.jsonl
The same holes with the context a longer window reads (a model trained at T = 512: 440 tokens around each hole
instead of 184), for comparing it with a 256-token model on the same tasks:
    python -m scripts.data_tasks --rewindow data/eval/heldout.jsonl --max-seq-len 512 --out runs/heldout-512.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Optional

from unmask import tasks as tasks_lib
from unmask.tasks import (ALL_KINDS, CUTTERS, DEFAULT_OUT, DEFAULT_TEST, DEFAULT_TOKENIZER, KINDS, TokenCounter,
                          build_tasks, excluded_holes, key_order, read_jsonl_gz)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__ + "\n" + (tasks_lib.__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", default=DEFAULT_TEST, help="held-out test split (JSONL, gzip allowed)")
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="tokenizer.json used to count tokens")
    parser.add_argument("--out", default=DEFAULT_OUT, help="where to write the tasks (JSONL)")
    parser.add_argument("--per-cell", type=int, default=100,
                        help="tasks per (language group, kind): 2 groups x 3 kinds, so 6x this many in all")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated kinds to cut, from {', '.join(ALL_KINDS)}")
    parser.add_argument("--max-per-file", type=int, default=3,
                        help="passes over the files while a cell lacks tasks: at most this many tasks of one kind "
                             "come from one file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task cutter")
    parser.add_argument("--max-span-tokens", type=int, default=64, help="largest target, in tokens")
    parser.add_argument("--max-seq-len", type=int, default=256, help="the model's max_seq_len (canvas length)")
    parser.add_argument("--reserved-tokens", type=int, default=8,
                        help="canvas tokens kept free for special tokens (language tag, FIM markers of the AR "
                             "baseline, its end token)")
    parser.add_argument("--prefix-share", type=float, default=0.75,
                        help="share of the context budget given to the prefix when both sides are long")
    parser.add_argument("--exclude", default=None,
                        help="a tasks JSONL whose holes are not cut again: no task overlaps one of them (the gate's "
                             "calibration set is cut around the held-out eval's tasks)")
    parser.add_argument("--id-prefix", default="", help="put this in front of every task id (e.g. 'cal-')")
    parser.add_argument("--rewindow", default=None, metavar="TASKS",
                        help="cut nothing new: write this tasks JSONL's holes again, their prefix and suffix windowed "
                             "from the whole file for --max-seq-len (the cutting flags other than --max-span-tokens, "
                             "--reserved-tokens and --prefix-share do not apply)")
    args = parser.parse_args(argv)

    context_tokens = args.max_seq_len - args.max_span_tokens - args.reserved_tokens
    if context_tokens <= 0:
        parser.error("max-seq-len leaves no room for context after the span and the reserved tokens")
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = [k for k in kinds if k not in CUTTERS]
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(ALL_KINDS)}")
    counter = TokenCounter(args.tokenizer)
    if args.rewindow:
        with open(args.rewindow, encoding="utf-8") as f:
            tasks = [tasks_lib.rewindow_task(json.loads(line), counter, context_tokens, args.prefix_share)
                     for line in f if line.strip()]
        write_tasks(args.out, tasks)
        print(f"tasks: wrote {len(tasks)} tasks of {args.rewindow} to {args.out} (context {context_tokens} tokens)")
        return
    records = list(read_jsonl_gz(args.test))
    exclude = None
    if args.exclude:
        with open(args.exclude, encoding="utf-8") as f:
            exclude = excluded_holes(json.loads(line) for line in f if line.strip())
    tasks = build_tasks(records, counter, args.per_cell, args.seed, args.max_span_tokens, context_tokens,
                        args.prefix_share, kinds, args.max_per_file, exclude, args.id_prefix)
    write_tasks(args.out, tasks)
    print(f"tasks: wrote {len(tasks)} tasks to {args.out} (context {context_tokens} tokens, "
          f"spans <= {args.max_span_tokens} tokens)")


def write_tasks(path: str, tasks: list[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(key_order(task), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
