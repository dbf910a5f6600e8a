"""Checks the RL rewards on real training tasks: each task's own target should score highest; an empty span, a copy
of the suffix and a repeated line are penalised (unmask/rewards.py has the reward's definition).

Run from models/recipe/ on the task pool an rl run wrote:
    python -m scripts.train_rl_rewards --pool runs/rl-gpu/pool.jsonl --tasks 20
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from unmask.rewards import RewardConfig, RewardScorer


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", required=True, help="task pool JSONL written by scripts.train_rl (runs/<name>/pool.jsonl)")
    p.add_argument("--tasks", type=int, default=20, help="score this many tasks (tested tasks first)")
    p.add_argument("--ts-typecheck", action="store_true", help="also type-check TypeScript completions")
    p.add_argument("--test-workers", type=int, default=2, help="doctest child processes at a time")
    args = p.parse_args(argv)
    with open(args.pool, encoding="utf-8") as f:
        pool = [json.loads(line) for line in f if line.strip()]
    pool.sort(key=lambda t: not t.get("tests"))
    chosen = pool[:args.tasks]
    cases = {"target": lambda t: t["target"], "empty": lambda t: "",
             "suffix copy": lambda t: t["file"][t["end"]:][:max(len(t["target"]), 16)],
             "repeated line": lambda t: "x = x\n" * 4}
    config = RewardConfig(ts_typecheck=args.ts_typecheck, test_workers=args.test_workers)
    with RewardScorer(config) as scorer:
        for name, make in cases.items():
            t0 = time.time()
            rows = scorer.score(chosen, [make(t) for t in chosen])
            mean = sum(r.reward for r in rows) / len(rows)
            parses = sum(r.parses for r in rows) / len(rows)
            tested = [r for r in rows if r.tests_total]
            passed = sum(r.tests_passed for r in tested) / max(1, sum(r.tests_total for r in tested))
            gamed = Counter(r.gaming for r in rows if r.gaming)
            print(f"{name:>14}: reward {mean:+.3f}  parses {parses:.2f}  tests passed {passed:.2f} "
                  f"({len(tested)} tested)  gaming {dict(gamed)}  {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
