"""Syntax checks of filled files, for the eval (syntax validity) and the RL rewards (parses / compiles). Python is
checked in-process with `ast` / `compile()`; TypeScript and JavaScript with the real TypeScript parser in Node
(node/syntax_check.mjs), started once per batch (SyntaxBatch, the eval) or kept running (NodeLineServer, the
rewards, which also drives node/ts_typecheck.mjs). Runs nothing on its own."""

from __future__ import annotations

import ast
import json
import os
import select
import subprocess
import tempfile
import warnings
from typing import Optional

from unmask.paths import NODE_DIR, REPO_DIR  # no torch here: the rewards and the eval's checks stay light
from unmask.tasks import GROUP_OF

SYNTAX_CHECKER = str(NODE_DIR / "syntax_check.mjs")  # parse-only: TypeScript's syntactic diagnostics
TYPE_CHECKER = str(NODE_DIR / "ts_typecheck.mjs")  # single-file type check (rl's optional reward)


def python_parses(source: str) -> bool:
    """Whether `source` parses as Python (the eval's syntax validity; warnings such as invalid escapes ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Invalid escape sequences and the like warn; they still parse.
        try:
            ast.parse(source)
            return True
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False


class SyntaxBatch:
    """The eval's syntax checks: collected, Python ones run in-process, TypeScript/JavaScript ones in one Node process at the end
    (starting Node and loading typescript costs far more than a parse)."""

    def __init__(self, node: str = "node"):
        self.node = node
        self.requests: list[dict] = []
        self.results: dict[int, bool] = {}

    def add(self, language: str, path: Optional[str], source: str) -> int:
        key = len(self.requests)
        if GROUP_OF.get(language) == "python":
            self.results[key] = python_parses(source)
            self.requests.append({})
        else:
            self.requests.append({"id": key, "text": source, "path": path or "", "language": language})
        return key

    def run(self) -> dict[int, bool]:
        pending = [r for r in self.requests if r]
        if pending:
            payload = "".join(json.dumps(r) + "\n" for r in pending)
            proc = subprocess.run([self.node, SYNTAX_CHECKER], input=payload, capture_output=True, text=True,
                                  cwd=str(REPO_DIR))
            if proc.returncode != 0:
                raise RuntimeError(f"syntax_check.mjs failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
            answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
            if len(answers) != len(pending):
                raise RuntimeError(f"syntax_check.mjs answered {len(answers)} of {len(pending)} requests")
            for answer in answers:
                if answer.get("errors") == -1:
                    raise RuntimeError(f"syntax_check.mjs could not check request {answer.get('id')}: "
                                       f"{answer['first']}")
                self.results[int(answer["id"])] = bool(answer["ok"])
        return self.results


def python_check(source: str, filename: str = "<infill>") -> tuple[bool, bool]:
    """(parses, compiles) with this interpreter's `ast` and `compile()`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Invalid escapes and the like only warn.
        try:
            compile(source, filename, "exec", dont_inherit=True)
            return True, True
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            pass
        try:
            ast.parse(source)
            return True, False
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False, False


class NodeLineServer:
    """One long-lived `node script` that answers one JSON line per JSON request line, asked in lock step (so neither
    pipe can fill up). A crashed process is restarted once per request; a second crash is an error."""

    def __init__(self, script: str, node: str = "node", timeout: float = 120.0):
        self.script, self.node, self.timeout = script, node, timeout
        self.proc: Optional[subprocess.Popen] = None
        self.stderr = None

    def _start(self) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([self.node, self.script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, encoding="utf-8", cwd=str(REPO_DIR), bufsize=1)

    def _stderr_tail(self) -> str:
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def ask(self, request: dict) -> dict:
        for attempt in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
                ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
                line = self.proc.stdout.readline() if ready else ""
            except (BrokenPipeError, OSError):
                line = ""
            if line:
                return json.loads(line)
            reason = f"no answer in {self.timeout:.0f} s" if self.proc.poll() is None else f"exit {self.proc.returncode}"
            tail = self._stderr_tail()
            self.close()
            if attempt == 1:
                raise RuntimeError(f"{os.path.basename(self.script)} failed ({reason}): {tail}")
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None
