"""Calibrates the two gates on inline suggestions from a held-out eval run with --per-task (eval_heldout): the copy
candidate's shortest repeated run (COPY_MIN_MATCH, server/protocol/copy-candidate.ts) and unmask.minConfidence
(server/protocol/gate.ts). Prints markdown tables for the model card.

Run from models/recipe/:
    python -m scripts.eval_calibrate --eval data/eval/final.json

Copy table: for each threshold L, the product's first line exact when the copy (whole file, metrics.copy_from_file)
goes first wherever its repeated run is >= L characters and the model's own row (the eval's `copy_min_match` 0 row)
is used elsewhere; computed from the per-task rows, so every L is the same model outputs.
Gating table: for each minConfidence, the share of model rows shown (mean confidence >= threshold) and the first
line exact of those shown, against the ungated rate.
Product table: both gates together, as typing sees them (copy first at a run >= L, else the model's row when confident
enough, else nothing): the share of requests shown and the first-line exact of those shown, as a multiple of the
ungated product's (issue 14's target: >= 3x at the default).
"""

from __future__ import annotations

import argparse
import json
import os

from unmask.metrics import copy_from_file, first_line_exact, longest_repeated_tail
from unmask.paths import REPO_DIR


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", required=True, help="eval_heldout --per-task JSON with an onnx row run at --cli-copy-min-match 0")
    p.add_argument("--tasks", default=None, help="the tasks file (default: the one the eval names)")
    p.add_argument("--copy-thresholds", default="1,4,8,12,16,24,32", help="copy run lengths to tabulate")
    p.add_argument("--confidence-thresholds", default="0,0.3,0.4,0.5,0.6,0.7,0.8,0.9", help="minConfidence values")
    p.add_argument("--product-copy-thresholds", default="4,8,16,32", help="copy run lengths of the product table")
    p.add_argument("--product-confidence-thresholds", default="0,0.4,0.5,0.6",
                   help="minConfidence values of the product table")
    args = p.parse_args(argv)
    report = json.load(open(args.eval))
    tasks_file = args.tasks or os.path.join(REPO_DIR, report["tasks"]["file"])
    tasks = {t["id"]: t for t in map(json.loads, open(tasks_file))}
    run = next(r for r in report["runs"] if r["model"] == "onnx" and r.get("copy_min_match") == 0
               and not r.get("candidates"))
    rows = run["per_task"]
    copy = {}
    for r in rows:
        t = tasks[r["id"]]
        before, after = t["file"][:t["start"]], t["file"][t["end"]:]
        length, _ = longest_repeated_tail(before, before + after)
        text = copy_from_file(before, after).removesuffix("\n")
        copy[r["id"]] = (length, text if text.strip() else None, t["target"])

    print("| copy first at a run of >= L chars | copy used % | first-line exact % (product) |")
    print("|---:|---:|---:|")
    print(f"| never (model alone) | 0.0 | {100 * sum(r['first_line_exact'] for r in rows) / len(rows):.1f} |")
    for L in (int(x) for x in args.copy_thresholds.split(",")):
        used = hits = 0
        for r in rows:
            length, text, target = copy[r["id"]]
            if text is not None and length >= max(L, 1):
                used += 1
                hits += first_line_exact(text, target)
            else:
                hits += r["first_line_exact"]
        print(f"| {L} | {100 * used / len(rows):.1f} | {100 * hits / len(rows):.1f} |")

    print()
    print("| minConfidence | model rows shown % | first-line exact of those shown % |")
    print("|---:|---:|---:|")
    for th in (float(x) for x in args.confidence_thresholds.split(",")):
        shown = [r for r in rows if r.get("mean_confidence") is not None and r["mean_confidence"] >= th
                 and r["completion"].strip()]
        rate = 100 * sum(r["first_line_exact"] for r in shown) / len(shown) if shown else float("nan")
        print(f"| {th:g} | {100 * len(shown) / len(rows):.1f} | {rate:.1f} |")

    # The product as typing sees it: the copy goes first when its run is >= L, else the model's row when its mean
    # confidence is >= minConfidence, else nothing. "x ungated" compares with showing every request's answer (L 4,
    # minConfidence 0: the editor's behaviour without gating).
    def product(L: int, th: float) -> tuple[int, int]:
        shown = hits = 0
        for r in rows:
            length, text, target = copy[r["id"]]
            if text is not None and length >= max(L, 1):
                shown, hits = shown + 1, hits + first_line_exact(text, target)
            elif r.get("mean_confidence") is not None and r["mean_confidence"] >= th and r["completion"].strip():
                shown, hits = shown + 1, hits + r["first_line_exact"]
        return shown, hits

    base_shown, base_hits = product(4, 0.0)
    base_rate = base_hits / max(base_shown, 1)
    print()
    print("| copy run >= L | minConfidence | requests shown % | first-line exact of those shown % | x ungated |")
    print("|---:|---:|---:|---:|---:|")
    for L in (int(x) for x in args.product_copy_thresholds.split(",")):
        for th in (float(x) for x in args.product_confidence_thresholds.split(",")):
            shown, hits = product(L, th)
            rate = hits / shown if shown else float("nan")
            print(f"| {L} | {th:g} | {100 * shown / len(rows):.1f} | {100 * rate:.1f} | {rate / base_rate:.2f} |")


if __name__ == "__main__":
    main()
