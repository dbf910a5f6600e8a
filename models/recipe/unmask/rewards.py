"""Verifiable rewards for infill rollouts, for coupled-GRPO (scripts/train_rl.py). Runs nothing on its own; the check
of the reward pipeline on real training tasks is scripts/train_rl_rewards.py.

A task is an infill hole in one training-split file (tasks.make_task's dict: file, start, end, target, prefix,
suffix, language, path) and a rollout fills it with a completion. Its reward, as in DiffuCoder (methods.md section 3):

    reward = 2.0 * correctness + 0.5 * format

- format: 1 if the filled file parses and compiles, 0.5 if not. Parsing: Python `ast` (in process); TypeScript and
  JavaScript with the real TypeScript parser (node/syntax_check.mjs through syntax.NodeLineServer, in one long-lived Node
  process). Compiling: Python `compile()` (catches what the parser lets through: `return` outside a function,
  misplaced `nonlocal`...); TypeScript, only with `ts_typecheck=True` (expensive): the filled file may not add a
  type-checker diagnostic to those of the original file (node/ts_typecheck.mjs, also one long-lived process).
- correctness, only when the filled file parses:
  - tasks with tests (`task["tests"]`, cut by find_tested_tasks): the pass rate of the doctests of the function that
    contains the hole, run by doctest_runner.py in a child process with a 5 s timeout, only when the file compiles.
    Only examples that pass on the original file and fail when the hole is replaced by `raise` are kept, so every
    counted example really exercises the completed code;
  - other tasks: similarity to the original code (`reference="edit"`: edit similarity; "exact": exact match; "line":
    whether the first line is exactly the original's, what a one-line ghost text needs; "edit+line": the mean of the
    edit similarity and that first-line match; "edit+line+exact": the mean of those two and whole-span exact match, so a multi-line
    answer is paid for being right to the end and a right first line for stopping there; "none": 0), the verifiable
    answer every infill task has.
- gaming: an empty completion (the original is not empty), a completion that copies the start of the suffix or the
  end of the prefix verbatim (and is not the original), or degenerate repetition (a line three times, a short token
  unit many times; not when the original repeats the same way) gets reward -gaming_penalty, whatever else it does.

Tests and the TypeScript checks run in child processes (never in this process); the doctest child runs in a fresh
temporary folder under CPU-time and file-size limits, and its whole process group is killed at the timeout.
"""
from __future__ import annotations

import ast
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

from unmask import tasks as tasklib
from unmask.metrics import edit_similarity, exact_match, first_line_exact
from unmask.syntax import SYNTAX_CHECKER, TYPE_CHECKER, NodeLineServer, python_check

DOCTEST_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "doctest_runner.py")  # run by path, isolated
PYTHON = ("python",)
TS_JS = ("typescript", "javascript")
PROBE_LINE = "raise RuntimeError('unmask probe')"
REFERENCES = ("edit", "exact", "line", "edit+line", "edit+line+exact", "none")  # RewardConfig.reference


@dataclass(frozen=True)
class RewardConfig:
    test_weight: float = 2.0  # Weight of correctness (the test pass rate), as in the paper.
    format_weight: float = 0.5  # Weight of the format/syntax score (1 parses, 0.5 syntax error).
    reference: str = "edit"  # Correctness of tasks without tests: one of REFERENCES.
    gaming_penalty: float = 1.0  # Gamed completions get -gaming_penalty.
    min_copy_chars: int = 8  # Shorter completions are never called copies (a lone `)` is a syntax error, not gaming).
    test_timeout: float = 5.0  # Seconds per doctest run (one run covers one completion's examples).
    test_workers: int = 4  # Doctest child processes at a time.
    ts_typecheck: bool = False  # Also type-check TypeScript (ts_typecheck.mjs); slow, so off by default.
    node: str = "node"

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}")


@dataclass
class Reward:
    reward: float
    parses: bool
    compiles: Optional[bool]  # None where no compile check ran (it did not parse, or no checker for the language)
    format: float
    correctness: float
    tests_total: int = 0  # Counted doctest examples (0: the task has none, or they did not run)
    tests_passed: int = 0
    similarity: Optional[float] = None  # Edit similarity to the original code (always computed, for logging)
    exact: bool = False
    gaming: Optional[str] = None  # "empty", "copies-suffix", "copies-prefix", "repetition"
    checker_error: bool = False  # A checker could not answer (counted as not parsing)


# ---------------------------------------------------------------------------------------------------------------
# Gaming
# ---------------------------------------------------------------------------------------------------------------

_WORDS = re.compile(r"\w+|[^\w\s]")


def degenerate_repetition(text: str) -> bool:
    """A non-blank line with a word in it three times in a row, or a unit of 1-4 tokens (one of them a word) repeated
    back to back 6 times (a single token) or 4 times (longer units)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for a, b, c in zip(lines, lines[1:], lines[2:]):
        if a == b == c and re.search(r"\w", a):
            return True
    words = _WORDS.findall(text)
    for n in range(1, 5):
        need = 6 if n == 1 else 4
        for i in range(0, len(words) - n * need + 1):
            unit = words[i:i + n]
            if not any(re.match(r"\w", w) for w in unit):
                continue
            if all(words[i + k * n:i + (k + 1) * n] == unit for k in range(1, need)):
                return True
    return False


def gaming_reason(completion: str, task: dict, min_copy_chars: int = 8) -> Optional[str]:
    """Why a completion games the reward, or None. The original code itself is never gaming."""
    target = task["target"]
    c = completion.strip()
    if not c:
        return "empty" if target.strip() else None
    if c == target.strip():
        return None
    if len(re.sub(r"\s", "", c)) >= min_copy_chars:
        if task["file"][task["end"]:].lstrip().startswith(c):
            return "copies-suffix"
        if task["file"][:task["start"]].rstrip().endswith(c):
            return "copies-prefix"
    if degenerate_repetition(completion) and not degenerate_repetition(target):
        return "repetition"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Parsers and checkers
# ---------------------------------------------------------------------------------------------------------------


def module_name(path: str) -> str:
    """The dotted module name of a corpus path: usr/lib/python3/dist-packages/sympy/core/add.py -> sympy.core.add,
    usr/lib/python3.11/fractions.py -> fractions, a package's __init__.py -> the package."""
    p = path.replace("\\", "/")
    for marker in ("/dist-packages/", "/site-packages/"):
        if marker in p:
            p = p.split(marker, 1)[1]
            break
    else:
        m = re.search(r"(?:^|/)lib/python3(?:\.\d+)?/(.*)$", p)
        p = m.group(1) if m else os.path.basename(p)
    p = p[:-3] if p.endswith(".py") else p
    parts = [x for x in p.split("/") if x]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "unmask_module"


def run_doctests(source: str, tests: dict, timeout: float) -> Optional[list[bool]]:
    """Runs the docstring's examples against `source` in doctest_runner.py. Returns the pass flag of every example
    (docstring order), or None when the module did not load or the run timed out or crashed."""
    request = {"source": source, "module": tests["module"], "filename": tests["filename"],
               "docstring": tests["docstring"], "timeout": timeout}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(), "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="unmask-doctest-") as cwd:
        proc = subprocess.Popen([sys.executable, "-I", DOCTEST_RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True)
        try:
            out, _ = proc.communicate(json.dumps(request).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    try:
        result = json.loads(out.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None  # Killed by its own CPU limit, or crashed in the interpreter.
    return result["passed"] if result.get("loaded") else None


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------


def filled_file(task: dict, completion: str) -> str:
    return task["file"][:task["start"]] + completion + task["file"][task["end"]:]


class RewardScorer:
    """Scores batches of (task, completion). Owns the Node processes and the doctest worker threads: close() it."""

    def __init__(self, config: RewardConfig = RewardConfig()):
        self.config = config
        self.syntax = NodeLineServer(SYNTAX_CHECKER, config.node)
        self.types = NodeLineServer(TYPE_CHECKER, config.node) if config.ts_typecheck else None
        self.pool = ThreadPoolExecutor(max_workers=max(1, config.test_workers))
        self._original_diagnostics: dict[str, Counter] = {}

    def close(self) -> None:
        self.syntax.close()
        if self.types is not None:
            self.types.close()
        self.pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _ts_parses(self, task: dict, source: str) -> tuple[bool, bool]:
        """(parses, checker failed)."""
        answer = self.syntax.ask({"id": 0, "text": source, "path": task.get("path") or "",
                                  "language": task["language"]})
        if answer.get("errors") == -1:
            return False, True
        return bool(answer["ok"]), False

    def _ts_compiles(self, task: dict, source: str) -> Optional[bool]:
        """No new type-checker diagnostic compared with the original file (TypeScript only; None for JavaScript)."""
        if self.types is None or task["language"] != "typescript":
            return None
        key = task.get("id") or f"{task.get('path')}:{task['start']}:{task['end']}"
        if key not in self._original_diagnostics:
            answer = self.types.ask({"id": 0, "text": task["file"], "path": task.get("path") or ""})
            self._original_diagnostics[key] = Counter(answer.get("diagnostics", []))
        answer = self.types.ask({"id": 0, "text": source, "path": task.get("path") or ""})
        if answer.get("errors") == -1:
            return False
        return not (Counter(answer.get("diagnostics", [])) - self._original_diagnostics[key])

    def score(self, tasks: list[dict], completions: list[str]) -> list[Reward]:
        """One Reward per (task, completion); the doctests of all rows run in parallel, once per distinct filled file
        (a group's rollouts often write the same completion)."""

        cfg = self.config
        rows: list[Reward] = []
        pending = []  # (row index, future of run_doctests, counted example indices)
        # run_doctests' inputs -> its future: the same file under the same docstring passes the same examples. (Two
        # tasks can fill the same file yet test different functions, so the file alone is not the key.)
        runs: dict[tuple, Future] = {}
        for i, (task, completion) in enumerate(zip(tasks, completions)):
            sim = edit_similarity(completion, task["target"])
            exact = exact_match(completion, task["target"])
            gaming = gaming_reason(completion, task, cfg.min_copy_chars)
            source = filled_file(task, completion)
            checker_error = False
            if task["language"] in PYTHON:
                parses, compiles = python_check(source, task.get("path") or "<infill>")
            elif task["language"] in TS_JS:
                parses, checker_error = self._ts_parses(task, source)
                compiles = self._ts_compiles(task, source) if parses else None
            else:
                raise ValueError(f"no parser for language {task['language']!r} (task {task.get('id')})")
            if not parses:
                compiles = None
            fmt = 1.0 if parses and compiles is not False else 0.5
            tests = task.get("tests")
            if not parses:
                correctness = 0.0
            elif tests:
                correctness = 0.0  # Filled in below when the tests have run.
            elif cfg.reference == "edit":
                correctness = sim
            elif cfg.reference == "exact":
                correctness = float(exact)
            elif cfg.reference == "line":
                correctness = float(first_line_exact(completion, task["target"]))
            elif cfg.reference == "edit+line":
                correctness = (sim + float(first_line_exact(completion, task["target"]))) / 2
            elif cfg.reference == "edit+line+exact":
                correctness = (sim + float(first_line_exact(completion, task["target"])) + float(exact)) / 3
            else:
                correctness = 0.0
            row = Reward(0.0, parses, compiles, fmt, correctness, similarity=sim, exact=exact, gaming=gaming,
                         checker_error=checker_error)
            if tests:
                row.tests_total = len(tests["examples"])
                if gaming is None and parses and compiles is not False:
                    key = (source, tests["module"], tests["filename"], tests["docstring"])
                    if key not in runs:
                        runs[key] = self.pool.submit(run_doctests, source, tests, cfg.test_timeout)
                    pending.append((i, runs[key], tests["examples"]))
            rows.append(row)
        for i, future, counted in pending:
            passed = future.result()
            if passed is not None:
                rows[i].tests_passed = sum(1 for k in counted if k < len(passed) and passed[k])
            rows[i].correctness = rows[i].tests_passed / max(1, rows[i].tests_total)
        for row in rows:
            if row.gaming is not None:
                row.reward = -cfg.gaming_penalty
            else:
                row.reward = cfg.test_weight * row.correctness + cfg.format_weight * row.format
        return rows


# ---------------------------------------------------------------------------------------------------------------
# Tasks with tests: holes in the bodies of doctested functions of the training split
# ---------------------------------------------------------------------------------------------------------------


def doctested_functions(text: str) -> list[dict]:
    """Module-level functions and methods of module-level classes whose docstring has `>>>` examples and whose body
    has code after the docstring: {"qualname", "docstring", "body": (first line, last line), 1-based inclusive}."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found = []

    def visit(node, prefix):
        doc = ast.get_docstring(node, clean=False)
        if not doc or ">>>" not in doc or len(node.body) < 2:
            return
        first, last = node.body[1].lineno, node.end_lineno
        found.append({"qualname": prefix + node.name, "docstring": doc, "body": (first, last)})

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(node, "")
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(sub, node.name + ".")
    return found


def probe_source(text: str, start: int, end: int) -> str:
    """The file with the hole replaced by a `raise` at the hole's indentation: examples that still pass do not run
    the hole's code."""
    indent = re.match(r"[ \t]*", text[start:end]).group(0)
    return text[:start] + indent + PROBE_LINE + "\n" + text[end:]


def cut_tested_hole(text: str, body: tuple[int, int], rng: random.Random, counter, max_tokens: int):
    """1-6 whole lines of a function body (half the time one line) whose probe compiles; a tasklib.Hole or None."""

    lines = tasklib.line_spans(text)
    first, last = body[0] - 1, min(body[1], len(lines)) - 1  # 0-based line indices
    starts = [i for i in range(first, last + 1) if len(text[lines[i][0]:lines[i][1]].strip()) >= tasklib.MIN_LINE_CHARS]
    rng.shuffle(starts)
    for i in starts[:8]:
        count = 1 if rng.random() < 0.5 else rng.randint(2, 6)
        j = min(i + count - 1, last)
        start, end = lines[i][0], lines[j][1]
        code = [line.strip() for line in text[start:end].splitlines() if line.strip()]
        if code[0].startswith("#") or all(line.startswith("#") for line in code):
            continue  # A comment's text is never tested: the hole must start with code.
        if counter.count(text[start:end]) > max_tokens:
            continue
        if python_check(probe_source(text, start, end))[1]:
            return tasklib.Hole(start, end), ("single-line" if i == j else "multi-line")
    return None


def find_tested_tasks(records: list[dict], counter, rng: random.Random, max_tasks: int, context_tokens: int,
                      max_span_tokens: int, timeout: float, workers: int, prefix_share: float = 0.75,
                      log=print) -> list[dict]:
    """Infill tasks in doctested functions whose doctests check the hole: every counted example passes on the
    original file and fails on the probe. At most one task per function, 2 per file; up to 3 * max_tasks candidates
    are probed, in parallel. Examples of runs slower than timeout / 2 on the original are not kept (they would time
    out under load)."""

    candidates = []
    files = [r for r in records if r.get("language") in PYTHON and ">>>" in r["text"]]
    rng.shuffle(files)
    for record in files:
        functions = doctested_functions(record["text"])
        rng.shuffle(functions)
        for fn in functions[:2]:
            cut = cut_tested_hole(record["text"], fn["body"], rng, counter, max_span_tokens)
            if cut is None:
                continue
            hole, kind = cut
            task = tasklib.make_task(record, hole, kind, counter, context_tokens, prefix_share)
            task["tests"] = {"kind": "doctest", "module": module_name(record["path"]), "filename": record["path"],
                             "qualname": fn["qualname"], "docstring": fn["docstring"]}
            candidates.append(task)
        if len(candidates) >= 3 * max_tasks:
            break
    t0 = time.time()

    def probe(task):
        s0 = time.time()
        original = run_doctests(task["file"], task["tests"], timeout)
        seconds = time.time() - s0
        if not original or not any(original) or seconds > timeout / 2:
            return None
        probed = run_doctests(probe_source(task["file"], task["start"], task["end"]), task["tests"], timeout)
        if probed is None:  # The probed module did not even load: every passing example depends on the hole.
            probed = [False] * len(original)
        counted = [k for k, (a, b) in enumerate(zip(original, probed)) if a and not b]
        return (counted, seconds) if counted else None

    kept = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for task, result in zip(candidates, pool.map(probe, candidates)):
            if result is not None and len(kept) < max_tasks:
                task["tests"]["examples"], task["tests"]["seconds"] = result[0], round(result[1], 3)
                kept.append(task)
    log(f"rewards: {len(kept)} tested tasks from {len(candidates)} candidates in {len(files)} files with doctests "
        f"({time.time() - t0:.0f} s of probing)")
    return kept
