"""Runs the extension's CLI in batch mode (`node dist/cli.js --batch TASKS --out RESULTS ...`) and reads its answers:
the one way eval.py and humaneval.py fill tasks with the shipped ONNX model through the TypeScript engine. No torch."""

from __future__ import annotations

import json
import subprocess
import time


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
