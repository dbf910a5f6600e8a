"""Calibrates the gate on suggestions made as you type (issue 14, item 1: show a suggestion only when it is likely
right; server/protocol/gate.ts) and the copy candidate's shortest repeated run (COPY_MIN_MATCH,
server/protocol/copy-candidate.ts), from held-out evals run with --per-task in the product configuration (the CLI's
defaults: cache n-gram on, 2 ranked rows, the copy offered from a run of 4 and first from 12 or when the best row
agrees). Prints markdown tables for the model card,
the gate's weights for gate.ts and the recommended default of unmask.minConfidence.

The recipe after a model changes (from models/recipe/, ~6 minutes on 2 CPU cores; build the CLI first with
`node esbuild.mjs` at the repository root):
    python -m scripts.eval_heldout --onnx-cli ../unmask-coder-base --onnx-precision int8 --calibration-set \\
        --tasks 900 --steps 8 --strategies confidence --focus confidence:8 --bucket default --nll-batches 0 \\
        --cli-copy-min-match 4 --onnx-candidates 2 --per-task --out data/eval/gate-calibration.json
    python -m scripts.eval_calibrate --calibration data/eval/gate-calibration.json
then paste the printed GATE_WEIGHTS into server/protocol/gate.ts and the printed default into package.json
(unmask.minConfidence); `--eval data/eval/gate-base.json` (the held-out eval of the model card, the same flags with
--tasks 600 --cli-copy-min-match 0,4 --copy-baseline --copy-context file instead of --calibration-set --tasks 900)
adds the tables on the 600 reported tasks.

The calibration set (eval_heldout --calibration-set: data/eval/gate-calibration.jsonl, cut when missing by
`python -m scripts.data_tasks --per-cell 150 --seed 1 --exclude data/eval/heldout.jsonl --id-prefix cal-`) is other
holes of the same held-out test files, none overlapping a reported task: weights and threshold are chosen there and
only reported on the 600.

The gate's score is a logistic regression on the numbers the engine computes for the suggestion that would be shown
(server/engine/gate-features.ts): the estimated probability that its first line is exactly right.
    score = 1 / (1 + exp(-(bias + copy [the copy is shown] + copyRunLog2 log2(copy run) + copyAgrees [the model's best
            row has the copy's first line] + midLine [text before the cursor on its line] + agreement [share of the
            other rows with the same first line] + firstLineMin [least probable first-line token of the best row])))
Tables:
- candidate scores (calibration set): how well each number alone separates right suggestions from wrong ones (AUC),
  for copies and for model rows;
- the fitted weights (L2-regularised Newton fit on the calibration set's shown suggestions);
- the curve on the calibration set: for each threshold, the share of requests shown, the first-line exact of those
  shown, the multiple of the ungated rate and its 90% lower bound (Wilson); the recommended default is the smallest
  threshold whose lower bound reaches --target x the ungated rate;
- with --eval: the same curve on the reported tasks (the fitted weights; the CLI's own scores are checked against
  this file's mirror of gate.ts), and the copy threshold table (the eval's single-row runs at copy min match 0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from typing import Optional

import numpy as np

from unmask.metrics import copy_from_file, first_line_exact, longest_repeated_tail
from unmask.paths import REPO_DIR

GATE_TS = os.path.join(REPO_DIR, "server", "protocol", "gate.ts")
# The gate's features in gate.ts's order (GateWeights after `bias`), and how each is read from a per-task row's
# `gate` object (the CLI's batch output, server/cli.ts gateJson).
FEATURES = ("copy", "copyRunLog2", "copyAgrees", "midLine", "agreement", "firstLineMin")
# Other numbers tabulated as candidate scores, not in the score.
CANDIDATES = ("first_line_mean", "mean_confidence")
L2 = 1.0  # Ridge on the weights (not the bias): the calibration set has few right model rows.
Z90 = 1.2816  # One-sided 90% normal quantile for the Wilson lower bound.


def features(gate: dict) -> list[float]:
    """The gate's feature vector (FEATURES) of one suggestion, as gate.ts computes it."""
    copy = gate["source"] == "copy"
    return [float(copy), math.log2(max(gate["copy_run"], 1)) if copy else 0.0, float(bool(gate["copy_agrees"])),
            float(bool(gate["mid_line"])), float(gate["agreement"]), float(gate["first_line_min"])]


def score(weights: dict, gate: dict) -> float:
    """gate.ts gateScore: the logistic model's probability that the suggestion's first line is exactly right."""
    z = weights["bias"] + sum(weights[name] * x for name, x in zip(FEATURES, features(gate)))
    return 1.0 / (1.0 + math.exp(-z))


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 100) -> np.ndarray:
    """Logistic regression by Newton's method with an L2 penalty on the weights (not the bias); returns
    [bias, *weights]."""
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    ridge = np.eye(a.shape[1]) * l2
    ridge[0, 0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        step = np.linalg.solve((a.T * (p * (1 - p))) @ a + ridge, a.T @ (p - y) + ridge @ w)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w


def auc(x: list[float], y: list[bool]) -> float:
    """Area under the ROC curve of score x for labels y (ties count half); NaN without both labels."""
    pos = [v for v, t in zip(x, y) if t]
    neg = [v for v, t in zip(x, y) if not t]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def wilson_lower(hits: int, n: int, z: float = Z90) -> float:
    if n == 0:
        return 0.0
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def shipped_weights(path: str = GATE_TS) -> Optional[dict]:
    """GATE_WEIGHTS as gate.ts ships them (None when the file has no such block)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    block = re.search(r"GATE_WEIGHTS[^{]*\{([^}]*)\}", text)
    if not block:
        return None
    found = dict((k, float(v)) for k, v in re.findall(r"(\w+):\s*(-?[0-9.]+(?:e-?\d+)?)", block.group(1)))
    return found if set(found) == {"bias", *FEATURES} else None


def product_run(report: dict, candidates: int, copy_min_match: int) -> dict:
    """The eval's run as typing sees it: the CLI's ranked rows with the copy among them (per-task rows needed)."""
    for r in report["runs"]:
        if (r["model"] == "onnx" and r.get("candidates") == candidates and r.get("pick") == "ranked"
                and r.get("copy_min_match", copy_min_match) == copy_min_match and "per_task" in r):
            return r
    raise SystemExit(f"eval_calibrate: no per-task onnx run with --onnx-candidates {candidates} at copy min match "
                     f"{copy_min_match} in the eval (run eval_heldout with --per-task)")


def suggestions(report: dict, candidates: int, copy_min_match: int) -> list[dict]:
    """Per task: whether something is shown ungated, its first-line exact and the gate's numbers."""
    rows = []
    for r in product_run(report, candidates, copy_min_match)["per_task"]:
        gate = r.get("gate")
        shown = gate is not None and bool(r["completion"].strip())
        if shown and "mid_line" not in gate:
            raise SystemExit("eval_calibrate: the eval's rows lack the gate's numbers; rebuild the CLI and rerun it")
        rows.append({"id": r["id"], "shown": shown, "right": bool(r["first_line_exact"]) and shown, "gate": gate,
                     "mean_confidence": r.get("mean_confidence")})
    return rows


def curve(rows: list[dict], scores: list[float], thresholds: list[float]) -> list[dict]:
    """For each threshold: requests shown, right among them, and the rates against the ungated product."""
    shown_all = sum(r["shown"] for r in rows)
    base = sum(r["right"] for r in rows) / max(shown_all, 1)
    out = []
    for th in thresholds:
        picked = [r for r, s in zip(rows, scores) if r["shown"] and (th <= 0 or s >= th)]
        hits = sum(r["right"] for r in picked)
        rate = hits / len(picked) if picked else float("nan")
        out.append({"threshold": th, "shown": len(picked), "share": len(picked) / len(rows), "hits": hits,
                    "rate": rate, "x": rate / base if base else float("nan"),
                    "x_lower": wilson_lower(hits, len(picked)) / base if base else float("nan")})
    return out


def recommend(points: list[dict], target: float) -> Optional[float]:
    """The smallest threshold whose shown rate's 90% lower bound reaches `target` x the ungated rate."""
    for p in points:
        if p["threshold"] > 0 and p["shown"] > 0 and p["x_lower"] >= target:
            return p["threshold"]
    return None


def print_curve(points: list[dict], marked: Optional[float], total: int) -> None:
    print("| minConfidence | requests shown % | first-line exact of those shown % | x ungated | x ungated, 90% lower bound |")
    print("|---:|---:|---:|---:|---:|")
    for p in points:
        th = "0 (ungated)" if p["threshold"] <= 0 else f"{p['threshold']:.2f}"
        if marked is not None and abs(p["threshold"] - marked) < 1e-9:
            th = f"**{th} (default)**"
        rate = "-" if math.isnan(p["rate"]) else f"{100 * p['rate']:.1f}"
        print(f"| {th} | {100 * p['share']:.1f} ({p['shown']} of {total}) | {rate} ({p['hits']}) | {p['x']:.2f} | "
              f"{p['x_lower']:.2f} |")


def copy_table(report: dict, tasks: dict, thresholds: list[int]) -> None:
    """Product first-line exact when the copy (whole file, metrics.copy_from_file) goes first wherever its repeated run
    is >= L characters and the model's own row (the single-row run at copy min match 0) elsewhere: every L is the
    same model outputs."""
    run = next((r for r in report["runs"] if r["model"] == "onnx" and r.get("copy_min_match") == 0
                and not r.get("candidates") and "per_task" in r), None)
    if run is None:
        return
    rows = run["per_task"]
    copy = {}
    for r in rows:
        t = tasks[r["id"]]
        before, after = t["file"][:t["start"]], t["file"][t["end"]:]
        length, _ = longest_repeated_tail(before, before + after)
        text = copy_from_file(before, after).removesuffix("\n")
        copy[r["id"]] = (length, text if text.strip() else None, t["target"])
    print("| copy first at a run of >= L chars | copy used % | first-line exact % (product, no gate) |")
    print("|---:|---:|---:|")
    print(f"| never (model alone) | 0.0 | {100 * sum(r['first_line_exact'] for r in rows) / len(rows):.1f} |")
    for L in thresholds:
        used = hits = 0
        for r in rows:
            length, text, target = copy[r["id"]]
            if text is not None and length >= max(L, 1):
                used += 1
                hits += first_line_exact(text, target)
            else:
                hits += r["first_line_exact"]
        print(f"| {L} | {100 * used / len(rows):.1f} | {100 * hits / len(rows):.1f} |")


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calibration", required=True,
                   help="eval_heldout --per-task JSON on the calibration set (--calibration-set): the weights and the "
                        "default are fitted here")
    p.add_argument("--eval", default=None,
                   help="eval_heldout --per-task JSON on the reported tasks (the 600 held-out ones): the curve there")
    p.add_argument("--candidates", type=int, default=2, help="the eval's --onnx-candidates run that typing uses")
    p.add_argument("--copy-min-match", type=int, default=4, help="the eval's copy min match that typing uses")
    p.add_argument("--target", type=float, default=3.0,
                   help="the default is the smallest threshold whose first-line exact of those shown is at least this "
                        "multiple of the ungated rate at the 90%% lower bound (issue 14: 3)")
    p.add_argument("--thresholds", default="0,0.05,0.08,0.10,0.12,0.14,0.16,0.18,0.20,0.25,0.30,0.40,0.50",
                   help="minConfidence values of the printed curves (the default is added)")
    p.add_argument("--copy-thresholds", default="1,4,8,16,32", help="copy run lengths of the copy table (with --eval)")
    args = p.parse_args(argv)

    cal_report = load(args.calibration)
    cal = suggestions(cal_report, args.candidates, args.copy_min_match)
    shown = [r for r in cal if r["shown"]]
    print(f"Calibration set: {args.calibration}, {len(cal)} tasks, {len(shown)} with a suggestion, "
          f"{sum(r['right'] for r in cal)} first-line exact (ungated {100 * sum(r['right'] for r in cal) / max(len(shown), 1):.1f}%)")
    print()
    print("Candidate scores (calibration set): AUC of each number alone for the shown suggestion's first line being "
          "exactly right (0.5: no better than chance)")
    print()
    print("| number | copies (n, right) | model rows (n, right) |")
    print("|---|---:|---:|")
    by_source = {s: [r for r in shown if r["gate"]["source"] == s] for s in ("copy", "model")}
    heads = {s: f"{len(rs)}, {sum(r['right'] for r in rs)}" for s, rs in by_source.items()}
    print(f"| (suggestions) | {heads['copy']} | {heads['model']} |")
    columns = {name: (lambda r, i=i: features(r["gate"])[i]) for i, name in enumerate(FEATURES) if name != "copy"}
    columns["firstLineMean"] = lambda r: r["gate"]["first_line_mean"]
    columns["meanConfidence (the old gate; a copy has 1)"] = lambda r: r["mean_confidence"] or 0.0
    for name, get in columns.items():
        cells = [auc([get(r) for r in rs], [r["right"] for r in rs]) for rs in by_source.values()]
        print(f"| {name} | " + " | ".join("-" if math.isnan(c) else f"{c:.3f}" for c in cells) + " |")

    x = np.array([features(r["gate"]) for r in shown])
    y = np.array([float(r["right"]) for r in shown])
    w = fit(x, y)
    weights = {"bias": float(w[0]), **{name: float(v) for name, v in zip(FEATURES, w[1:])}}
    shipped = shipped_weights()
    print()
    print(f"Fitted weights (logistic regression, L2 {L2:g}, on the calibration set's {len(shown)} suggestions); "
          "server/protocol/gate.ts:")
    print()
    print("```ts")
    print("export const GATE_WEIGHTS: GateWeights = Object.freeze({")
    for name, value in weights.items():
        print(f"  {name}: {value:.3f},")
    print("});")
    print("```")
    if shipped:
        same = all(abs(shipped[k] - round(v, 3)) < 5e-4 for k, v in weights.items())
        print("gate.ts ships these weights." if same else
              "gate.ts ships other weights: " + ", ".join(f"{k} {v:g}" for k, v in shipped.items()))
    weights = {k: round(v, 3) for k, v in weights.items()}  # As gate.ts gets them.

    grid = [round(t, 2) for t in np.arange(0.01, 1.0, 0.01)]
    cal_scores = [score(weights, r["gate"]) if r["shown"] else 0.0 for r in cal]
    default = recommend(curve(cal, cal_scores, grid), args.target)
    thresholds = sorted({float(t) for t in args.thresholds.split(",")} | ({default} if default is not None else set()))
    print()
    print(f"Curve on the calibration set ({len(cal)} tasks; in-sample):")
    print()
    print_curve(curve(cal, cal_scores, thresholds), default, len(cal))
    print()
    if default is None:
        print(f"Recommended default: none reaches {args.target:g}x at the 90% lower bound; keep unmask.minConfidence 0")
    else:
        print(f"Recommended default: unmask.minConfidence {default:.2f} (package.json \"default\": {default:.2f}), the "
              f"smallest threshold whose first-line exact of those shown is >= {args.target:g}x the ungated rate at "
              "the 90% lower bound on the calibration set")

    if args.eval:
        report = load(args.eval)
        rows = suggestions(report, args.candidates, args.copy_min_match)
        scores = [score(weights, r["gate"]) if r["shown"] else 0.0 for r in rows]
        if shipped:
            diffs = [abs(score(shipped, r["gate"]) - r["gate"]["score"]) for r in rows if r["shown"] and "score" in r["gate"]]
            if diffs:
                print(f"\nThe CLI's gate scores match this mirror of gate.ts on {len(diffs)} suggestions "
                      f"(largest difference {max(diffs):.1e}).")
        print()
        print(f"Curve on the reported tasks ({args.eval}, {len(rows)} tasks; the weights above, the threshold from "
              "the calibration set):")
        print()
        print_curve(curve(rows, scores, thresholds), default, len(rows))
        tasks_file = os.path.join(REPO_DIR, report["tasks"]["file"])
        with open(tasks_file, encoding="utf-8") as f:
            tasks = {t["id"]: t for t in map(json.loads, f)}
        print()
        copy_table(report, tasks, [int(v) for v in args.copy_thresholds.split(",")])
    return {"weights": weights, "default": default}


if __name__ == "__main__":
    main()
