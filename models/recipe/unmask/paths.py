"""Where the recipe's files are, and the command line of a stage, without importing torch (the torch-free tools,
eval_humaneval and eval_calibrate, use it; common re-exports the paths). Stages run from models/recipe/ as
`python -m scripts.<stage>`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

RECIPE_DIR = Path(__file__).resolve().parent.parent  # models/recipe/
REPO_DIR = RECIPE_DIR.parent.parent
NODE_DIR = RECIPE_DIR / "node"  # the Node.js helpers (.mjs) the Python side starts
DATA_DIR = RECIPE_DIR / "data"  # corpus, tokenizer, token caches, eval tasks (not committed)
CORPUS_DIR = DATA_DIR / "corpus"
TOKENIZER_PATH = DATA_DIR / "tokenizer" / "tokenizer.json"
RUNS_DIR = RECIPE_DIR / "runs"  # one folder per training run (not committed)
EVALDATA_DIR = RECIPE_DIR / "evaldata"  # committed benchmark data (HumanEval-Infilling)


def command_line(module: str, given: list[str]) -> str:
    """The command that ran stage `module` (e.g. "scripts.eval_heldout") with arguments `given`, for a report or a
    model card: `python -m module args`, behind `cd <folder> &&` when it did not run from models/recipe/ (relative
    to the repository when inside it)."""
    command = " ".join(["python", "-m", module] + [shlex.quote(x) for x in given])
    cwd = Path.cwd().resolve()
    if cwd == RECIPE_DIR:
        return command
    where = os.path.relpath(cwd, REPO_DIR)
    return f"cd {shlex.quote(where) if not where.startswith('..') else cwd} && {command}"
