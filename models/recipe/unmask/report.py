"""The held-out eval's report: the markdown table of every run, the per-language-and-kind table, the issue's targets
said met or missed, the N-candidates summary. Reads the report dict scripts/eval_heldout.py writes as JSON. Runs
nothing on its own."""

from __future__ import annotations

from typing import Optional

from unmask.metrics import ARNESS_K


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def num(x: Optional[float], digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def headline(report: dict) -> list[str]:
    """The issue's target in words: does the denoiser at the focus setting beat the AR baseline on exact match and
    syntax validity? Said either way."""
    focus = report["focus"]
    mdm = next((r for r in report["runs"] if r["model"] == "mdm" and r.get("strategy") == focus["strategy"]
                and r.get("steps") == focus["steps"]), None)
    ar = next((r for r in report["runs"] if r["model"] == "ar"), None)
    if mdm is None or ar is None:
        return []
    parts = []
    for key, label in (("exact_match", "exact match"), ("syntax_valid", "syntax validity")):
        a, b = mdm[key], ar[key]
        if a is None or b is None:
            continue
        verdict = "beats" if a > b else ("ties" if a == b else "does not beat")
        parts.append(f"{verdict} the AR baseline on {label} ({pct(a)}% vs {pct(b)}%)")
    if not parts:
        return []
    text = (f"**{focus['strategy']}, {focus['steps']} steps:** the denoiser " + "; it ".join(parts) +
            f", on {mdm['tasks']} tasks.")
    if mdm["empty"] is not None and ar["empty"] is not None and mdm["empty"] > ar["empty"]:
        # An empty hole often leaves a file that parses, so syntax validity alone flatters a model that writes nothing.
        text += (f" But {pct(mdm['empty'])}% of the denoiser's completions are empty (AR: {pct(ar['empty'])}%), and "
                 "an empty hole often leaves a file that parses: its syntax validity says little until it writes code.")
    return [text, ""]


def candidates_summary(report: dict) -> list[str]:
    """What the N-candidates rows say, next to the single completion of the same setting through the same CLI."""
    out = []
    for ranked in (r for r in report["runs"] if r.get("pick") == "ranked"):
        same = [r for r in report["runs"] if r["model"] == ranked["model"] and r.get("strategy") == ranked["strategy"]
                and r.get("steps") == ranked["steps"] and r.get("copy_min_match") == ranked.get("copy_min_match")]
        single = next((r for r in same if not r.get("candidates")), None)
        best = next((r for r in same if r.get("pick") == "best" and r.get("candidates") == ranked["candidates"]), None)
        if single is None or best is None:
            continue
        n = ranked["candidates"]
        out += ["", f"Candidates ({ranked['strategy']}, {ranked['steps']} steps): {n} alternatives per task in one "
                f"batch through the CLI, ranked as the editor ranks the rows of an inline completion and \"Regenerate "
                f"with N Candidates\" (likelihood, tree-sitter syntax errors of the file, blank ones dropped, "
                f"near-duplicates merged). The top-ranked one: "
                f"edit similarity {pct(ranked['edit_similarity'])}%, syntax valid {pct(ranked['syntax_valid'])}%, "
                f"empty {pct(ranked['empty'])}%, against {pct(single['edit_similarity'])}%, "
                f"{pct(single['syntax_valid'])}% and {pct(single['empty'])}% for the single completion; the best of the "
                f"{n} (closest to the target, an upper bound on the ranking): edit similarity "
                f"{pct(best['edit_similarity'])}%, exact match {pct(best['exact_match'])}%."
                + (" (Syntax validity falls where empty completions fall: a blank hole often leaves a file that "
                   "parses.)" if ranked["syntax_valid"] is not None and single["syntax_valid"] is not None
                   and ranked["syntax_valid"] < single["syntax_valid"] and ranked["empty"] < single["empty"] else "")]
    return out


def run_label(run: dict) -> str:
    """The model column: the model, and for a candidates run how many and which one was scored."""
    copy = f" copy>={run['copy_min_match']}" if run.get("copy_min_match") else (
        " model only" if run.get("copy_min_match") == 0 else "")
    if run.get("cache_ngram") == "on":
        copy += " +cache n-gram" + "".join(f" {name} {run[key]}" for name, key in (
            ("w", "cache_ngram_weight"), ("order", "cache_ngram_order"), ("open docs", "cache_ngram_open_documents"))
            if run.get(key) is not None)
    if run.get("multiline"):
        copy += f" multiline {run['multiline']}"
    if run.get("context_tokens") is not None:
        copy += f" context {run['context_tokens']}"
    if run.get("candidates"):
        return f"{run['model']} x{run['candidates']} {run['pick']}{copy}"
    if run["model"] == "onnx":
        return f"onnx{copy}"
    if run["model"] == "copy" and run.get("context"):
        return f"copy ({COPY_CONTEXT_TEXT.get(run['context'], run['context'])})"
    return run["model"]


COPY_CONTEXT_TEXT = {"file": "whole file", "task": "model's context"}


KIND_TEXT = {"single-line": "single-line (one whole line)", "multi-line": "multi-line (2-4 whole lines)",
             "rest-of-line": "rest-of-line (the cursor inside a line, cut at a character position inside a token; "
                             "the target is the rest of the line)",
             "random-span": "random spans (1-64 tokens)"}


def focus_runs(report: dict) -> list[dict]:
    """The runs shown per language and kind: every model at the focus setting, the AR baseline and the copy
    lookup."""
    return [r for r in report["runs"] if r["model"] in ("ar", "copy") or
            (r.get("strategy") == report["focus"]["strategy"] and r.get("steps") == report["focus"]["steps"])]


def focus_label(r: dict) -> str:
    return run_label(r) if r["model"] in ("ar", "copy") else f"{run_label(r)} {r['strategy']} {r['steps']} steps"


def cell_table(report: dict) -> list[str]:
    """Every metric per language and kind, one row per (model, cell), models grouped by cell."""
    focus = focus_runs(report)
    if not focus:
        return []
    cells_all = sorted({c for r in focus for c in r["by_cell"]})
    lines = ["", "By language and kind (%):", "",
             "| language/kind | model | tasks | exact | first-line exact | edit sim | syntax valid | empty | "
             "degenerate |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells_all:
        for r in focus:
            v = r["by_cell"].get(c)
            if v is None:
                continue
            lines.append(f"| {c} | {focus_label(r)} | {v['tasks']} | {pct(v['exact_match'])} | "
                         f"{pct(v.get('first_line_exact'))} | {pct(v['edit_similarity'])} | {pct(v['syntax_valid'])} | "
                         f"{pct(v['empty'])} | {pct(v.get('degenerate'))} |")
    return lines


def pooled(run: dict, kind: str, key: str) -> Optional[float]:
    """A metric of one kind over every language group, weighted by tasks."""
    cells = [v for c, v in run["by_cell"].items() if c.rsplit("/", 1)[1] == kind and v.get(key) is not None]
    n = sum(v["tasks"] for v in cells)
    return sum(v[key] * v["tasks"] for v in cells) / n if n else None


def targets_summary(report: dict) -> list[str]:
    """Issue 11's targets for the shipped model at the focus setting (the single-completion onnx run; else the
    checkpoint's), said met or missed, and whether it beats the copy lookup on every language and kind (exact
    match)."""
    focus = report["focus"]
    model = next((r for name in ("onnx", "mdm") for r in report["runs"] if r["model"] == name
                  and not r.get("candidates") and r.get("strategy") == focus["strategy"]
                  and r.get("steps") == focus["steps"]), None)
    if model is None:
        return []
    checks = []
    for kind, key, label, goal in (("single-line", "first_line_exact", "single-line first-line exact", 0.15),
                                   ("rest-of-line", "exact_match", "rest-of-line exact", 0.25),
                                   ("multi-line", "exact_match", "multi-line exact", 0.03)):
        value = pooled(model, kind, key)
        if value is not None:
            checks.append(f"{label} {pct(value)}% ({'met' if value >= goal else 'missed'}: >= {pct(goal)}%)")
    if model.get("empty") is not None:
        checks.append(f"empty {pct(model['empty'])}% ({'met' if model['empty'] <= 0.05 else 'missed'}: <= 5.0%)")
    text = f"**Targets (issue 11), {focus_label(model)}:** " + "; ".join(checks) + "."
    for copy in (r for r in report["runs"] if r["model"] == "copy"):
        behind = [c for c, v in copy["by_cell"].items() if c in model["by_cell"]
                  and (model["by_cell"][c]["exact_match"] or 0.0) <= (v["exact_match"] or 0.0)]
        name = f"the {run_label(copy)} lookup"
        text += (f" Beats {name} on exact match in every language and kind." if not behind else
                 f" Does not beat {name} on exact match in {len(behind)} of {len(copy['by_cell'])} language/kind "
                 f"cells ({', '.join(behind)}).")
    return [text, ""]


def markdown(report: dict) -> str:
    lines = []
    t = report["tasks"]
    cells = ", ".join(f"{c} {n}" for c, n in t["by_cell"].items())
    lines.append(f"Tasks: {t['count']} infill tasks from the held-out test packages ({cells}); "
                 f"span length: {t['bucket']}; {report['sampler']}.")
    lines.append("")
    kinds = sorted({c.rsplit("/", 1)[1] for c in t["by_cell"]}, key=lambda k: list(KIND_TEXT).index(k)
                   if k in KIND_TEXT else len(KIND_TEXT))
    lines.append("The tasks (`models/recipe/unmask/tasks.py`, seeded) are cut from packages that no training split has seen: "
                 + ", ".join(KIND_TEXT.get(k, k) for k in kinds) + ", in Python and "
                 "TypeScript/JavaScript, with up to 184 tokens of context around the hole (prefix:suffix 3:1). "
                 "Exact match is compared after trimming trailing whitespace; first-line exact: the completion's first "
                 "line equals the target's (trailing whitespace trimmed), what a one-line ghost text must get right; "
                 "edit similarity is 1 - character Levenshtein / longer length; syntax valid means the whole file with "
                 "the completion parses (Python `ast`, the TypeScript parser), over the tasks whose original file "
                 "parses; empty: no visible text; degenerate: at least 6 code tokens, half of them or more covered by "
                 "one n-gram (n <= 4) repeated 3+ times (`self = self = self =`; `models/recipe/unmask/metrics.py`). "
                 "Completions are scored raw, before the editor's indentation tidying. `onnx` rows run the shipped "
                 "ONNX model through the extension's CLI (`node dist/cli.js --batch`, its engine, runtime and "
                 "post-processing); `mdm` rows run the Python twin of the engine's sampler (`models/recipe/unmask/sample.py`) "
                 "on the PyTorch checkpoint; the AR baseline decodes greedily from a PSM fill-in-the-middle prompt "
                 "with the same token cap as the denoiser's span; `copy` is the copy-from-file lookup: the longest "
                 "tail of the text before the cursor that occurs elsewhere in the file (whole file: everything around "
                 "the hole; model's context: the task's prefix and suffix only), and what followed it to the end of "
                 "that line (multi-line: whole lines on until the copy meets the suffix's first line, at most 4, else "
                 "2).")
    lines.append("")
    lines.extend(headline(report))
    if report.get("note"):
        lines.extend([report["note"], ""])
    lines.extend(targets_summary(report))
    lines.append("| model | strategy | steps | NFE | exact match % | first-line exact % | edit sim % | "
                 "syntax valid % | empty % | degenerate % | local AR@1 | global AR@1 | s/task |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in report["runs"]:
        lines.append(f"| {run_label(r)} | {r.get('strategy', '-')} | {r.get('steps', '-')} | {num(r['nfe'], 1)} | "
                     f"{pct(r['exact_match'])} | {pct(r.get('first_line_exact'))} | {pct(r['edit_similarity'])} | "
                     f"{pct(r['syntax_valid'])} | {pct(r['empty'])} | {pct(r.get('degenerate'))} | "
                     f"{num(r['arness_local'][0])} | {num(r['arness_global'][0])} | "
                     f"{num(r['seconds'] / max(r['tasks'], 1), 3)} |")
    lines.append("")
    lines.append(f"Syntax valid counts the {report['runs'][0]['syntax_counted'] if report['runs'] else 0} tasks whose "
                 "original file parses. Empty: completions with no visible text. NFE: model calls per task "
                 "(end-of-span fill ends a span early). s/task: CPU or GPU seconds per task of the setting "
                 "(batched). AR-ness is defined for one commit per step; "
                 "with fewer steps than span tokens the commits of a step are read left to right, and end-of-span "
                 "fill is left out.")
    lines.extend(candidates_summary(report))
    lines.extend(cell_table(report))
    mdm_runs = [r for r in report["runs"] if r["model"] == "mdm"]
    one_per_step = [r for r in mdm_runs if r.get("steps", 0) >= 64]
    if one_per_step:
        lines.append("")
        lines.append("AR-ness@k at >= 64 steps (about one commit per step), k = 1..8 (local / global):")
        lines.append("")
        lines.append("| strategy | steps | " + " | ".join(f"k={k}" for k in range(1, ARNESS_K + 1)) + " |")
        lines.append("|---|---:|" + "---:|" * ARNESS_K)
        for r in one_per_step:
            vals = [f"{num(lo)} / {num(gl)}" for lo, gl in zip(r["arness_local"], r["arness_global"])]
            lines.append(f"| {r['strategy']} | {r['steps']} | " + " | ".join(vals) + " |")
    nll = report.get("nll") or {}
    if nll:
        lines.append("")
        parts = []
        for model, values in nll.items():
            parts.append(model + ": " + ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "canvases")
                         + f" ({values['canvases']} canvases)")
        lines.append("Test-split NLL (bits/token; the denoiser's is an ELBO upper bound): " + "; ".join(parts) + ".")
    lines.append("")
    lines.append(f"Command (`{report['device']}`, {report['wall_seconds']:.0f} s):")
    lines.append("")
    lines.append("```")
    lines.append(report["command"])
    lines.append("```")
    return "\n".join(lines) + "\n"
