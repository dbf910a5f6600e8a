"""Runs the doctests of one function against one (filled) Python file, in a child process: rewards.py starts it.

    python -I unmask/doctest_runner.py < request.json > result.json

Request (JSON on stdin): {"source": file text, "module": dotted module name ("sympy.core.add", "fractions"),
"filename": its path, "docstring": the docstring whose examples are run, "timeout": seconds}.
Result (JSON on stdout): {"loaded": bool, "error": str | null, "passed": [bool per example, in docstring order],
"seconds": float}.

The file is executed as module `module`, its package imported first (so relative imports resolve against the
installed package, when there is one), and the names it defines are re-bound in every loaded module that held the
installed module's object of the same name, so `from sympy import Add` inside an example reaches the filled code.
The examples run in order in one namespace (later examples may use earlier results), with ELLIPSIS and
NORMALIZE_WHITESPACE. This process only needs the standard library: it starts once per test, so it must start fast,
and -I keeps the recipe folder and the user's environment variables out of its import path. The parent enforces the
wall-clock timeout and kills the whole process group; here CPU time and file sizes are capped as a second fence,
and the working directory is a fresh temporary folder.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import json
import os
import resource
import sys
import time
import types
import warnings


def limit_resources(timeout: float) -> None:
    seconds = int(timeout) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))  # No test needs to write more than 16 MiB.


class RecordingRunner(doctest.DocTestRunner):
    """A doctest runner that remembers which examples failed or raised, instead of printing a report."""

    def __init__(self):
        super().__init__(verbose=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        self.failed: set[int] = set()

    def report_start(self, out, test, example):
        pass

    def report_success(self, out, test, example, got):
        pass

    def report_failure(self, out, test, example, got):
        self.failed.add(id(example))

    def report_unexpected_exception(self, out, test, example, exc_info):
        self.failed.add(id(example))


def load_filled_module(source: str, name: str, filename: str) -> types.ModuleType:
    """Executes `source` as module `name` and re-binds its names wherever the installed module's objects were."""
    package = name.rpartition(".")[0]
    if package:
        try:
            importlib.import_module(package)  # Before the swap: the package may import the installed module itself.
        except Exception:
            pass
    installed = sys.modules.get(name)
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__package__ = package if not filename.endswith("__init__.py") else name
    if installed is not None and hasattr(installed, "__path__"):
        module.__path__ = list(installed.__path__)
    module.__dict__["__builtins__"] = __builtins__
    sys.modules[name] = module
    code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, module.__dict__)
    if installed is not None:
        rebind(installed, module)
    return module


def rebind(installed: types.ModuleType, filled: types.ModuleType) -> None:
    """Every loaded module attribute that is the installed module's object of some name now points at the filled
    module's object of that name (the package's re-exports, `from x import y` copies in sibling modules)."""
    swaps = {}
    for key, new in filled.__dict__.items():
        old = installed.__dict__.get(key)
        if old is not None and old is not new and not key.startswith("__") and not isinstance(old, types.ModuleType):
            swaps[id(old)] = (old, new)
    if not swaps:
        return
    for mod in list(sys.modules.values()):
        if mod is None or mod is filled:
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for key, value in items:
            hit = swaps.get(id(value))
            if hit is not None and hit[0] is value:
                try:
                    setattr(mod, key, hit[1])
                except (AttributeError, TypeError):
                    pass


def run(request: dict) -> dict:
    t0 = time.time()
    try:
        module = load_filled_module(request["source"], request["module"], request["filename"])
    except BaseException as error:  # SystemExit and KeyboardInterrupt from a module body are failures too.
        return {"loaded": False, "error": f"{type(error).__name__}: {error}"[:500], "passed": [],
                "seconds": time.time() - t0}
    globs = dict(module.__dict__)
    test = doctest.DocTestParser().get_doctest(request["docstring"], globs, request["module"], request["filename"], 0)
    runner = RecordingRunner()
    error = None
    try:
        runner.run(test, clear_globs=True)
    except BaseException as exc:  # An example calling sys.exit() ends the run: the rest count as failed.
        error = f"{type(exc).__name__}: {exc}"[:500]
        ran_out = True
    else:
        ran_out = False
    passed = [id(ex) not in runner.failed for ex in test.examples]
    if ran_out:
        passed = [False] * len(test.examples)
    return {"loaded": True, "error": error, "passed": passed, "seconds": time.time() - t0}


def main() -> None:
    request = json.loads(sys.stdin.read())
    limit_resources(float(request.get("timeout", 5.0)))
    # Whatever the module or the examples print outside doctest's capture must not corrupt the JSON answer.
    answer_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(1, "w", closefd=False)
    warnings.simplefilter("ignore")
    result = run(request)
    with os.fdopen(answer_fd, "w") as out:
        out.write(json.dumps(result))


if __name__ == "__main__":
    main()
