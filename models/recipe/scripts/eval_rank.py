"""How well the candidates are ranked: N candidates per task through the extension's CLI, then the row each ranking
puts first scored against the target, next to the best row (an upper bound no ranking can beat). Issue 13 asks
whether a learned reward (the discriminator) ranks better than likelihood plus syntax; this is the measurement, and
with today's model it compares the CLI's own order with simple alternatives.

Run (from models/recipe/, after `node esbuild.mjs` at the repository root; the calibration set, not the reported
tasks, so that choosing a ranking here does not tune on them; ~3 minutes on 2 cores at N = 4):
    python -m scripts.eval_rank --tasks-file data/eval/gate-calibration.jsonl --candidates 4

Rankings (each orders one task's N rows; the first is scored):
    cli             the CLI's order: mean log-probability per token, minus 2 per syntax error beyond the fewest, plus
                    the discriminator's reward when the model ships one (server/engine/rerank.ts)
    vote            the first line most rows share, ties in the CLI's order (self-consistency on the first line)
    confidence      the rows' mean committed-token confidence
    log-prob sum    the summed log-probability (favours short rows)
    reward          the discriminator's reward alone (only when every row has one)
    pll             with --rescore: the mean pseudo-log-likelihood of the row's scored tokens under that checkpoint
                    (--rescore-groups interleaved masks; unmask/rescore.py)
    ltr             with --rescore: the mean left-to-right (chain-rule) log-likelihood of its first --ltr-tokens
    best            the row whose first line is right when any is (then the best edit similarity): the upper bound
Rows are the model's only (--copy-min-match 0): the copy candidate is not ranked.

Rescoring the rows with the PyTorch checkpoint the ONNX model was exported from (fp32, the full softmax; ~1.8 s a task
at 4 rows on 2 threads):
    python -m scripts.eval_rank --tasks-file data/eval/heldout.jsonl --candidates 4 --rescore weights/cpu-rl17-line.pt
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time

from unmask.metrics import edit_similarity, first_line, first_line_exact
from unmask.onnx_cli import model_rows
from unmask.paths import command_line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks-file", default="data/eval/gate-calibration.jsonl",
                   help="infill tasks (data_tasks.py's JSONL: prefix, suffix, language, target, file, start, end)")
    p.add_argument("--tasks", type=int, default=0, help="use the first N tasks (0: all)")
    p.add_argument("--model", default="../unmask-coder-base", help="model folder the CLI loads")
    p.add_argument("--candidates", type=int, default=4, help="rows per task (the CLI's --candidates, 2-16)")
    p.add_argument("--steps", type=int, default=8, help="denoising steps")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads of the CLI")
    p.add_argument("--seed", type=int, default=0, help="the CLI's sampling seed")
    p.add_argument("--node", default="node", help="Node.js binary")
    p.add_argument("--cli", default="dist/cli.js", help="the CLI bundle, relative to the repository root")
    p.add_argument("--rescore", default=None,
                   help="checkpoint that rescores every row (rankings pll and ltr): the one --model was exported from")
    p.add_argument("--rescore-groups", type=int, default=4, help="interleaved mask groups of the pll ranking")
    p.add_argument("--ltr-tokens", type=int, default=24, help="most tokens of a row the ltr ranking scores")
    p.add_argument("--torch-threads", type=int, default=2, help="torch threads of the rescoring")
    p.add_argument("--out", default=None, help="write the table and the settings as JSON here")
    return p.parse_args(argv)


def fill(args, tasks: list[dict]) -> list[dict]:
    """The CLI's batch answers, one per task (an error answer has no "candidates"); with --rescore, each candidate
    also carries "canvas" (its finished token ids) and the answer "span" (the hole's canvas positions)."""
    answers, _ = model_rows(args, tasks, ("--canvases",) if args.rescore else ())
    return [answers.get(i, {}) for i in range(len(tasks))]


def rescore(args, answers: list[dict]) -> None:
    """Adds "pll" and "ltr" (mean log-likelihoods under --rescore) to every candidate of every answer."""
    import torch

    from unmask import checkpoint, rescore as rs

    torch.set_num_threads(args.torch_threads)
    loaded = checkpoint.load(args.rescore)
    t0 = time.time()
    for n, a in enumerate(answers):
        for candidate, row in zip(a.get("candidates", []), a.get("rows", [])):
            if candidate["text"] != row["text"]:
                raise SystemExit(f"eval_rank: the CLI's rows and candidates disagree "
                                 f"({row['text']!r} vs {candidate['text']!r})")
            canvas = row["canvas"]
            candidate["pll"] = rs.mean(rs.pseudo_log_likelihood(loaded.denoiser_fn, canvas, a["span"], loaded.mask_id,
                                                                loaded.eos_id, args.rescore_groups))
            candidate["ltr"] = rs.mean(rs.left_to_right(loaded.denoiser_fn, canvas, a["span"], loaded.mask_id,
                                                        loaded.eos_id, args.ltr_tokens))
        if n % 100 == 99:
            print(f"eval_rank: rescored {n + 1} of {len(answers)} answers, {time.time() - t0:.0f} s", file=sys.stderr)


def vote(rows: list[dict]) -> list[dict]:
    count = collections.Counter(first_line(r["text"]).rstrip() for r in rows)
    return sorted(rows, key=lambda r: -count[first_line(r["text"]).rstrip()])  # stable: ties keep the CLI's order


RANKINGS = {
    "cli": lambda rows, target: rows,
    "vote": lambda rows, target: vote(rows),
    "confidence": lambda rows, target: sorted(rows, key=lambda r: -r["mean_confidence"]),
    "log-prob sum": lambda rows, target: sorted(rows, key=lambda r: -r["log_prob"]),
    "reward": lambda rows, target: sorted(rows, key=lambda r: -r["reward"]),
    "pll": lambda rows, target: sorted(rows, key=lambda r: -r["pll"]),
    "ltr": lambda rows, target: sorted(rows, key=lambda r: -r["ltr"]),
    "best": lambda rows, target: sorted(rows, key=lambda r: (-first_line_exact(r["text"], target),
                                                             -edit_similarity(r["text"], target))),
}


def score(tasks: list[dict], answers: list[dict]) -> list[dict]:
    scored = [(t, a["candidates"]) for t, a in zip(tasks, answers) if a.get("candidates")]
    # A ranking by a score some row lacks (no discriminator, no --rescore) is left out.
    present = {key: bool(scored) and all(key in r for _, rows in scored for r in rows)
               for key in ("reward", "pll", "ltr")}
    table = []
    for name, rank in RANKINGS.items():
        if not present.get(name, True):
            continue
        picked = [rank(list(rows), t["target"])[0]["text"] for t, rows in scored]
        n = max(len(picked), 1)
        table.append({"ranking": name, "tasks": len(picked),
                      "first_line_exact": sum(first_line_exact(c, t["target"]) for c, (t, _) in zip(picked, scored)) / n,
                      "edit_similarity": sum(edit_similarity(c, t["target"]) for c, (t, _) in zip(picked, scored)) / n})
    return table


def main(argv=None):
    args = parse_args(argv)
    with open(args.tasks_file, encoding="utf-8") as f:
        tasks = [json.loads(line) for line in f if line.strip()]
    if args.tasks:
        tasks = tasks[:args.tasks]
    t0 = time.time()
    answers = fill(args, tasks)
    if args.rescore:
        rescore(args, answers)
    table = score(tasks, answers)
    print(f"Rankings of {args.candidates} model rows per task, {table[0]['tasks'] if table else 0} of {len(tasks)} "
          f"tasks answered ({args.tasks_file}, {args.steps} steps, {time.time() - t0:.0f} s):\n")
    print("| ranking | first-line exact % | edit sim % |\n|---|---:|---:|")
    for row in table:
        print(f"| {row['ranking']} | {100 * row['first_line_exact']:.1f} | {100 * row['edit_similarity']:.1f} |")
    print(f"\nCommand: `{command_line('scripts.eval_rank', sys.argv[1:] if argv is None else argv)}`")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"settings": vars(args), "table": table}, f, indent=1)


if __name__ == "__main__":
    main()
