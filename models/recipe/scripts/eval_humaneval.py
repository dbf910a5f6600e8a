"""HumanEval-Infilling through the extension's CLI, with each completion's tests executed in a sandbox: pass@1.

Run (build the CLI first with `node esbuild.mjs`; single-line, one-line answers as its holes are single lines, every
task: 1033 tasks, about 5 minutes on 2 cores; `--every 5`: 207 tasks, about 1 minute):
    python -m scripts.eval_humaneval --benchmarks single-line --multiline never
All three benchmarks, every task (1033 + 5815 + 164 tasks):
    python -m scripts.eval_humaneval --benchmarks single-line,multi-line,random-span-light --every 1
Only the overlap check of the training corpus against HumanEval (prompts and canonical solutions):
    python -m scripts.eval_humaneval --overlap-only

The data is openai/human-eval-infilling (MIT; models/recipe/evaldata/humaneval-infilling/README.md says what was
taken). Each problem becomes one CLI batch task {prefix: prompt, suffix, language: python}; the completion is run as
prompt + completion + suffix + "\\n" + test + "\\ncheck(entry_point)" (the upstream harness's program) in a fresh
`python -I` process with resource limits (address space --memory-mb, CPU seconds, file size, open files, no core
dumps), a wall-clock timeout that kills its process group, an empty temporary working directory, and no network
(`unshare -n`, or `unshare -rn` without root; where neither works the report says the network was not isolated).
pass@1 is the share of tasks whose program exits 0, with one greedy completion per task (temperature 0), so it is
exact, not estimated. Exact match (completion vs canonical solution, trailing whitespace trimmed) and the empty rate
are reported too, and the copy-from-file lookup (metrics.copy_from_file) as a baseline row (`--copy-baseline`).

Published anchor: Open-dCoder 0.5B, HumanEval-SingleLineInfilling pass@1 32.5 (fixed length). The span here is the
CLI's default (the editor's unmask.maxSpanTokens) unless --max-tokens says otherwise ('oracle': the smallest span
bucket that holds the canonical solution).

The overlap check (`--overlap`, on by default) reads the training split and counts HumanEval problems whose
canonical solution, or whose prompt (signature and docstring), shares a run of --ngram code tokens (words and single
punctuation characters, whitespace ignored) with any training file; solutions shorter than the n-gram cannot be
checked this way and are counted apart.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Optional


from unmask import onnx_cli
from unmask import metrics, paths

REPO = str(paths.REPO_DIR)
DATA_DIR = str(paths.EVALDATA_DIR / "humaneval-infilling")
BENCHMARKS = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
# Published pass@1 anchors (%), per benchmark.
ANCHORS = {"single-line": [("Open-dCoder 0.5B (fixed length)", 32.5),
                           ("DiffuGPT-S 127M, 30B tokens", 0.3)]}
DEFAULT_TRAIN = str(paths.CORPUS_DIR / "train.jsonl.gz")
DEFAULT_OUT = str(paths.DATA_DIR / "eval" / "humaneval.json")
DEFAULT_MARKDOWN = str(paths.DATA_DIR / "eval" / "humaneval.md")


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def read_jsonl(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_benchmark(name: str, data_dir: str = DATA_DIR) -> list[dict]:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return read_jsonl(os.path.join(data_dir, BENCHMARKS[name]))


def subsample(problems: list[dict], every: int, offset: int = 0) -> list[dict]:
    """Every `every`-th problem in file order, starting at `offset` (every 1: all of them)."""
    return problems[offset::every]


def to_task(problem: dict, benchmark: str) -> dict:
    """A CLI batch task (prefix, suffix, language) that also carries what scoring needs."""
    return {"id": problem["task_id"], "prefix": problem["prompt"], "suffix": problem["suffix"], "language": "python",
            "target": problem["canonical_solution"], "kind": benchmark, "test": problem["test"],
            "entry_point": problem["entry_point"]}


def program(task: dict, completion: str) -> str:
    """The upstream harness's check program (human_eval_infilling/execution.py)."""
    return (task["prefix"] + completion + task["suffix"] + "\n" + task["test"] + "\n"
            + f"check({task['entry_point']})\n")


# ---------------------------------------------------------------------------------------------------------------
# Sandbox
# ---------------------------------------------------------------------------------------------------------------

_NETWORK_WRAPPER: Optional[list[str]] = None


def network_wrapper() -> list[str]:
    """The command prefix that runs a program without network: `unshare -n` (root), else `unshare -rn` (an
    unprivileged user namespace), else nothing (the caller reports that the network was not isolated)."""
    global _NETWORK_WRAPPER
    if _NETWORK_WRAPPER is None:
        _NETWORK_WRAPPER = []
        if shutil.which("unshare"):
            for wrapper in (["unshare", "-n", "--"], ["unshare", "-rn", "--"]):
                try:
                    ok = subprocess.run(wrapper + ["true"], capture_output=True, timeout=10).returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    ok = False
                if ok:
                    _NETWORK_WRAPPER = wrapper
                    break
    return list(_NETWORK_WRAPPER)


def _limits(timeout: float, memory_mb: int):
    """Runs in the child before exec: the resource limits."""
    import resource

    def apply():
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(math.ceil(timeout)) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024, 16 * 1024 * 1024))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_sandboxed(source: str, timeout: float = 10.0, memory_mb: int = 1024, python: str = sys.executable,
                  isolate_network: bool = True) -> dict:
    """Runs `source` as a Python program in a sandbox (module docstring). Returns {status: passed | failed |
    timed out, returncode, detail: the last line of its stderr, seconds}."""
    with tempfile.TemporaryDirectory(prefix="unmask-sandbox-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        command = (network_wrapper() if isolate_network else []) + [python, "-I", "-B", path]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp, "TMPDIR": tmp}
        t0 = time.time()
        proc = subprocess.Popen(command, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_limits(timeout, memory_mb))
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.communicate()
            return {"status": "timed out", "returncode": None, "detail": f"over {timeout:g} s",
                    "seconds": round(time.time() - t0, 3)}
        finally:
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)  # Whatever it left running.
        lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        detail = lines[-1][:300] if lines else ""
        if proc.returncode == 0:
            status = "passed"
        elif proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not detail:
            status, detail = "timed out", "CPU limit"
        else:
            status = "failed"
        return {"status": status, "returncode": proc.returncode, "detail": detail,
                "seconds": round(time.time() - t0, 3)}


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (ProcessLookupError, PermissionError, OSError))


# ---------------------------------------------------------------------------------------------------------------
# Completions: the CLI, or the copy lookup, or the canonical solutions (a check of the harness)
# ---------------------------------------------------------------------------------------------------------------


def max_tokens_for(task: dict, setting: str, tokenizer, buckets: tuple[int, ...]) -> Optional[int]:
    """The span sent to the CLI: None (the CLI's default) for 'default', a number, or the oracle bucket."""
    if setting == "default":
        return None
    if setting == "oracle":
        n = len(tokenizer.encode(task["target"], add_special_tokens=False).ids)
        return next((b for b in buckets if b >= max(n, 1)), buckets[-1])
    return int(setting)


def run_cli(task_list: list[dict], args) -> tuple[list[str], float]:
    """Fills every task through `node dist/cli.js --batch` (the extension's engine, runtime and post-processing)."""
    cli = os.path.join(REPO, args.cli)
    if not os.path.exists(cli):
        raise SystemExit(f"humaneval: {cli} not found; build it with `node esbuild.mjs`")
    tokenizer, buckets = None, (8, 16, 32, 64, 128)
    if args.max_tokens == "oracle":
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
        with open(os.path.join(args.model, "manifest.json"), encoding="utf-8") as f:
            facts = json.load(f).get("facts", {})
        buckets = tuple(json.loads(facts.get("unmask.span_buckets", json.dumps(buckets))))
    with tempfile.TemporaryDirectory() as tmp:
        requests, results = os.path.join(tmp, "tasks.jsonl"), os.path.join(tmp, "results.jsonl")
        with open(requests, "w", encoding="utf-8") as f:
            for i, task in enumerate(task_list):
                request = {"id": i, "prefix": task["prefix"], "suffix": task["suffix"], "language": "python"}
                n = max_tokens_for(task, args.max_tokens, tokenizer, buckets)
                if n is not None:
                    request["max_tokens"] = n
                f.write(json.dumps(request) + "\n")
        command = [args.node, cli, "--batch", requests, "--out", results, "--model", os.path.abspath(args.model),
                   "--precision", args.precision, "--steps", str(args.steps), "--strategy", args.strategy,
                   "--seed", str(args.seed), "--multiline", args.multiline] + (["--threads", str(args.threads)] if args.threads else [])
        answers, seconds = onnx_cli.run_batch(command, results, REPO)
    return [onnx_cli.answer(answers, i, task["id"])["completion"] for i, task in enumerate(task_list)], seconds


def copy_completions(task_list: list[dict]) -> list[str]:
    kind = {"single-line": "single-line", "multi-line": "multi-line"}
    return [metrics.copy_from_file(t["prefix"], t["suffix"], kind.get(t["kind"], "single-line")) for t in task_list]


def execute(task_list: list[dict], completions: list[str], args) -> list[dict]:
    """Runs every task's program in the sandbox, --workers at a time."""
    def one(pair):
        task, completion = pair
        return run_sandboxed(program(task, completion), args.timeout, args.memory_mb)

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        return list(pool.map(one, zip(task_list, completions)))


def score(task_list: list[dict], completions: list[str], results: list[dict]) -> dict:
    by_bench: dict[str, list] = defaultdict(list)
    for task, completion, result in zip(task_list, completions, results):
        by_bench[task["kind"]].append((task, completion, result))
    out = {}
    for bench, rows in by_bench.items():
        n = len(rows)
        out[bench] = {
            "tasks": n,
            "pass_at_1": sum(r["status"] == "passed" for _, _, r in rows) / n,
            "exact_match": sum(metrics.exact_match(c, t["target"]) for t, c, _ in rows) / n,
            "edit_similarity": sum(metrics.edit_similarity(c, t["target"]) for t, c, _ in rows) / n,
            "empty": sum(metrics.is_empty(c) for _, c, _ in rows) / n,
            "timed_out": sum(r["status"] == "timed out" for _, _, r in rows) / n,
        }
    return out


# ---------------------------------------------------------------------------------------------------------------
# Overlap of the training corpus with HumanEval
# ---------------------------------------------------------------------------------------------------------------


def problems_for_overlap(data_dir: str = DATA_DIR) -> list[dict]:
    """One record per HumanEval problem: {problem, prompt, solution}. The random-span-light file has one task per
    problem; prompt + canonical_solution + suffix is the problem's whole text there. The solution is the original
    HumanEval solution: the text after the docstring's closing quotes."""
    out = []
    for p in read_benchmark("random-span-light", data_dir):
        whole = p["prompt"] + p["canonical_solution"] + p["suffix"]
        problem = ["HumanEval", p["task_id"].split("/")[2]]  # "RandomSpanInfilling/HumanEval/0/1" -> HumanEval/0
        marker = max(whole.rfind('"""'), whole.rfind("'''"))
        head, body = (whole[:marker + 3], whole[marker + 3:]) if marker >= 0 else (whole, "")
        out.append({"problem": "/".join(problem), "prompt": head, "solution": body})
    return out


def ngrams(tokens: list[str], n: int) -> Iterable[tuple[str, ...]]:
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i:i + n])


def overlap(corpus_files: list[str], n: int, data_dir: str = DATA_DIR, limit_examples: int = 3) -> dict:
    """Problems whose solution / prompt shares an n-gram of code tokens with a training file."""
    problems = problems_for_overlap(data_dir)
    index: dict[tuple[str, ...], set] = defaultdict(set)  # n-gram -> {(problem index, part)}
    short = 0
    for i, p in enumerate(problems):
        for part in ("solution", "prompt"):
            tokens = metrics.code_tokens(p[part])
            if part == "solution" and len(tokens) < n:
                short += 1
            for gram in ngrams(tokens, n):
                index[gram].add((i, part))
    pairs = {(g[0], g[-1]) for g in index}  # A cheap filter before building each n-gram of the corpus.
    hits: dict[tuple[int, str], list] = defaultdict(list)
    matched: dict[tuple[int, str], str] = {}  # The first shared run of each (problem, part), to judge it by.
    files = scanned_tokens = 0
    for path in corpus_files:
        for record in read_jsonl(path):
            files += 1
            tokens = metrics.code_tokens(record.get("text", ""))
            scanned_tokens += len(tokens)
            seen = set()
            for i, (first, last) in enumerate(zip(tokens, tokens[n - 1:])):
                if (first, last) in pairs:
                    gram = tuple(tokens[i:i + n])
                    for key in index.get(gram, ()):
                        if key not in seen:
                            seen.add(key)
                            hits[key].append(f"{record.get('package')}:{record.get('path')}")
                            matched.setdefault(key, " ".join(gram))
    report = {"ngram": n, "problems": len(problems), "corpus_files": files, "corpus_code_tokens": scanned_tokens,
              "corpus": [os.path.relpath(os.path.abspath(p), REPO) for p in corpus_files],
              "solutions_too_short": short,
              "solution_overlap": sorted({problems[i]["problem"] for (i, part) in hits if part == "solution"}),
              "prompt_overlap": sorted({problems[i]["problem"] for (i, part) in hits if part == "prompt"}),
              "examples": {f"{problems[i]['problem']} {part}": {"files": len(where), "first": where[:limit_examples],
                                                                  "shared": matched[(i, part)]}
                           for (i, part), where in sorted(hits.items())}}
    return report


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown(report: dict) -> str:
    lines = []
    if report.get("runs"):
        lines += [f"HumanEval-Infilling (openai/human-eval-infilling, MIT), {report['subsample']}; pass@1 with the "
                  f"tests executed in a sandbox ({report['sandbox']}); one greedy completion per task through "
                  f"`node dist/cli.js --batch` ({report['setting']}).", "",
                  "| benchmark | model | tasks | pass@1 % | exact match % | edit sim % | empty % | timed out % |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for run in report["runs"]:
            for bench, v in run["by_benchmark"].items():
                lines.append(f"| {bench} | {run['model']} | {v['tasks']} | {pct(v['pass_at_1'])} | "
                             f"{pct(v['exact_match'])} | {pct(v['edit_similarity'])} | {pct(v['empty'])} | "
                             f"{pct(v['timed_out'])} |")
        for bench, anchors in ANCHORS.items():
            if any(bench in run["by_benchmark"] for run in report["runs"]):
                for name, value in anchors:
                    lines.append(f"| {bench} | {name} (published) | - | {value:.1f} | - | - | - | - |")
        lines.append("")
    ov = report.get("overlap")
    if ov:
        lines += [f"Training-corpus overlap ({', '.join(ov['corpus'])}, {ov['corpus_files']} files, "
                  f"{ov['corpus_code_tokens']:,} code tokens): {len(ov['solution_overlap'])} of {ov['problems']} "
                  f"HumanEval canonical solutions and {len(ov['prompt_overlap'])} prompts share a run of "
                  f"{ov['ngram']} code tokens with a training file"
                  + (f" ({', '.join(ov['solution_overlap'][:10])}{', ...' if len(ov['solution_overlap']) > 10 else ''})"
                     if ov["solution_overlap"] else "")
                  + f"; {ov['solutions_too_short']} solutions are shorter than {ov['ngram']} tokens and cannot be "
                  "checked this way. The shared runs, to judge whether any is a copy:", ""]
        for key, ex in ov["examples"].items():
            lines.append(f"- {key} ({ex['files']} files, e.g. `{ex['first'][0]}`): `{ex['shared']}`")
        lines.append("")
    lines += [f"Command ({report['wall_seconds']:.0f} s):", "", "```", report["command"], "```"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--benchmarks", default="single-line",
      help=f"comma-separated benchmarks to run, from {', '.join(BENCHMARKS)}")
    a("--every", type=int, default=5, help="subsample: every N-th task of each benchmark, in file order (1: all)")
    a("--offset", type=int, default=0, help="subsample: index of the first task taken")
    a("--data-dir", default=DATA_DIR, help="folder with the HumanEval-Infilling jsonl.gz files")
    a("--model", default=os.path.join(REPO, "models", "unmask-coder-base"), help="model folder the CLI loads")
    a("--precision", default="int8", choices=["auto", "int8", "fp32"], help="ONNX weights the CLI loads")
    a("--steps", type=int, default=8, help="denoising steps")
    a("--strategy", default="confidence", help="unmasking strategy (the CLI's --strategy)")
    a("--multiline", default="auto", choices=["auto", "always", "never"],
      help="lines a completion may have (the CLI's --multiline, the editor's unmask.multiline; 'never' is the "
           "one-line answer a single-line benchmark asks for)")
    a("--max-tokens", default="default",
      help="span per task: 'default' (the CLI's default, the editor's unmask.maxSpanTokens), 'oracle' (the smallest "
           "span bucket that holds the canonical solution) or a number")
    a("--seed", type=int, default=0, help="sampler seed passed to the CLI")
    a("--threads", type=int, default=0, help="CPU threads for the CLI's onnxruntime (0: its choice)")
    a("--cli", default=os.path.join("dist", "cli.js"), help="the built CLI, relative to the repository root")
    a("--node", default="node", help="Node.js binary")
    a("--copy-baseline", action=argparse.BooleanOptionalAction, default=True,
      help="also score the copy-from-file lookup on the same tasks (row 'copy')")
    a("--canonical", action="store_true",
      help="also run the canonical solutions through the sandbox (row 'canonical'; a check of the harness: 100%%)")
    a("--no-model", action="store_true", help="skip the CLI (only the copy lookup, --canonical and the overlap)")
    a("--timeout", type=float, default=10.0, help="wall-clock seconds per program (CPU limit: this + 1)")
    a("--memory-mb", type=int, default=1024, help="address-space limit per program, MiB")
    a("--workers", type=int, default=2, help="programs run at once")
    a("--tasks-out", default=None, help="also write the CLI batch tasks (JSONL) here")
    a("--per-task", action="store_true", help="keep every task's completion and result in the JSON")
    a("--overlap", action=argparse.BooleanOptionalAction, default=True,
      help="check the training corpus for HumanEval prompts and canonical solutions (n-gram overlap)")
    a("--overlap-only", action="store_true", help="only the overlap check")
    a("--train", default=DEFAULT_TRAIN, help="comma-separated training splits (JSONL, gzip allowed) for the overlap")
    a("--ngram", type=int, default=20, help="overlap: length of the shared run, in code tokens")
    a("--out", default=DEFAULT_OUT, help="JSON results")
    a("--markdown", default=DEFAULT_MARKDOWN, help="markdown table")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = paths.command_line("scripts.eval_humaneval", given)
    wall0 = time.time()
    report: dict = {"command": command, "runs": []}
    if not args.overlap_only:
        task_list = []
        for bench in [b for b in args.benchmarks.split(",") if b]:
            if bench not in BENCHMARKS:
                raise SystemExit(f"humaneval: unknown benchmark {bench!r}; choose from {', '.join(BENCHMARKS)}")
            task_list += [to_task(p, bench) for p in subsample(read_benchmark(bench, args.data_dir), args.every,
                                                              args.offset)]
        if args.tasks_out:
            os.makedirs(os.path.dirname(os.path.abspath(args.tasks_out)), exist_ok=True)
            with open(args.tasks_out, "w", encoding="utf-8") as f:
                for t in task_list:
                    f.write(json.dumps({k: t[k] for k in ("id", "prefix", "suffix", "language", "target", "kind")})
                            + "\n")
        wrapper = network_wrapper()
        report["sandbox"] = (f"`python -I` in an empty temp dir, {args.timeout:g} s wall clock, "
                             f"{args.memory_mb} MiB address space, "
                             + (f"no network (`{' '.join(wrapper[:-1])}`)" if wrapper else
                                "NETWORK NOT ISOLATED (no working `unshare -n` on this machine)"))
        report["subsample"] = (f"every {args.every}th task" + (f" from index {args.offset}" if args.offset else "")
                               if args.every > 1 else "every task")
        report["setting"] = (f"{os.path.relpath(os.path.abspath(args.model), REPO)}, {args.precision}, "
                             f"{args.steps} steps, {args.strategy}, multiline {args.multiline}, span "
                             + ("the CLI's default" if args.max_tokens == "default" else args.max_tokens))
        rows = []
        if not args.no_model:
            completions, seconds = run_cli(task_list, args)
            print(f"humaneval: {len(task_list)} tasks filled by the CLI in {seconds:.1f} s", file=sys.stderr)
            rows.append(("onnx", completions, seconds))
        if args.copy_baseline:
            rows.append(("copy", copy_completions(task_list), 0.0))
        if args.canonical:
            rows.append(("canonical", [t["target"] for t in task_list], 0.0))
        for name, completions, seconds in rows:
            t0 = time.time()
            results = execute(task_list, completions, args)
            print(f"humaneval: {name}: {len(results)} programs run in {time.time() - t0:.1f} s", file=sys.stderr)
            run = {"model": name, "cli_seconds": round(seconds, 2), "by_benchmark": score(task_list, completions,
                                                                                           results)}
            if args.per_task:
                run["per_task"] = [{"id": t["id"], "completion": c, **r}
                                   for t, c, r in zip(task_list, completions, results)]
            report["runs"].append(run)
    if args.overlap or args.overlap_only:
        t0 = time.time()
        files = [f for f in args.train.split(",") if f]
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            print(f"humaneval: overlap check skipped, {', '.join(missing)} not found", file=sys.stderr)
        else:
            report["overlap"] = overlap(files, args.ngram, args.data_dir)
            print(f"humaneval: overlap check in {time.time() - t0:.1f} s", file=sys.stderr)
    report["wall_seconds"] = time.time() - wall0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    body = markdown(report)
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(body)
    print(body)
    return report


if __name__ == "__main__":
    main()
