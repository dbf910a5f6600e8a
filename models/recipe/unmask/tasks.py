"""Deterministic infill tasks cut from the held-out test split, for the eval harness and the RL task pool. Runs
nothing on its own: scripts/data_tasks.py writes the held-out eval's file (scripts/eval_heldout.py makes it when it
is missing). Feed the file to the extension's CLI as it is: `node dist/cli.js --batch
models/recipe/data/eval/heldout.jsonl --out results.jsonl` (eval_heldout.py --onnx-cli does that and scores it).

A task is one hole in one held-out file: {id, language, kind, prefix, suffix, target, ...}. `prefix` and `suffix`
are the model's context, cut to whole tokens so that [lang tag] + prefix + span + suffix fits in the model's
max_seq_len with room for the largest span; `file`, `start` and `end` locate the hole in the whole file so that the
syntax check can parse the filled file. The extra keys are ignored by the TypeScript CLI's batch mode, which reads
{prefix, suffix, language} from the same file.

Kinds (each cut from Python files and from TypeScript/JavaScript files, `--per-cell` tasks per language group and
kind; `--kinds` picks them):
- single-line: one whole line (with its indentation and its newline) of at least 3 non-blank characters;
- multi-line: 2-4 consecutive whole lines (newlines included), at least 2 of them non-blank;
- rest-of-line: the cursor inside a line, as typing leaves it: the line is cut at a character position that is
  *not* a token boundary of the file's own tokenization (mid-token: `self.marks.append(token.start_ma|rk)`, or
  right after a space that the tokenizer glues to the next word), with at least one non-blank character of the line
  before the cursor and one after; the target is the rest of that line (its newline included);
- random-span (not in the default set): a run of 1..max-span-tokens tokens of the file's own tokenization, anywhere.
Every target is at most `--max-span-tokens` tokens (64) when encoded alone, which is how the canvas sees it.
Exact match is scored after trimming trailing whitespace, so the newline ending a line target does not count.
Each file gives at most one task per kind while the files last; when a cell still lacks tasks, further passes over
the files (at most `--max-per-file` in all) cut other holes from the same files.
The same seed, test split and tokenizer always give the same tasks.
"""
from __future__ import annotations

import gzip
import json
import random
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from unmask import paths  # not common: cutting tasks needs no torch (its import alone takes seconds)

DEFAULT_TEST = str(paths.CORPUS_DIR / "test.jsonl.gz")
DEFAULT_TOKENIZER = str(paths.TOKENIZER_PATH)
DEFAULT_OUT = str(paths.DATA_DIR / "eval" / "heldout.jsonl")

KINDS = ("single-line", "multi-line", "rest-of-line")  # The default set: the held-out eval's three kinds.
ALL_KINDS = KINDS + ("random-span",)
# Language groups: TypeScript and JavaScript share one group (one parser, one tag family); the task keeps the
# file's own language so the right tag and dialect are used.
GROUPS = {"python": ("python",), "ts/js": ("typescript", "javascript")}
GROUP_OF = {lang: group for group, langs in GROUPS.items() for lang in langs}  # language -> its group
GROUP_SHORT = {"python": "py", "ts/js": "ts"}
KIND_SHORT = {"single-line": "line", "multi-line": "lines", "rest-of-line": "rest", "random-span": "span"}

MIN_LINE_CHARS = 3  # A single-line target must hold this many non-blank characters ("}" alone teaches nothing).
MULTI_LINE_RANGE = (2, 4)


@dataclass(frozen=True)
class Hole:
    """Character offsets [start, end) of the target inside the file."""

    start: int
    end: int


class TokenCounter:
    """Wraps a Hugging Face tokenizer: token counts and token offsets of plain text (no special tokens added)."""

    def __init__(self, tokenizer_path: str):
        from tokenizers import Tokenizer  # Imported here so that `--help` works without the package.

        self.tokenizer = Tokenizer.from_file(tokenizer_path)

    def encode(self, text: str):
        return self.tokenizer.encode(text, add_special_tokens=False)

    def count(self, text: str) -> int:
        return len(self.encode(text).ids)

    def boundaries(self, text: str) -> set[int]:
        """Character positions where a token of `text`'s own tokenization starts or ends (0 and len(text) included).
        Byte-level tokens are counted in bytes (each character of a byte-level token string is one byte), which is
        exact where character offsets are not (the tokenizer trims a token's leading space from its offsets); a
        boundary inside a multi-byte character is no character position and is left out."""
        enc = self.encode(text)
        data = text.encode("utf-8")
        lengths = [len(t) for t in enc.tokens]
        if sum(lengths) != len(data):  # Not byte-level: fall back on the offsets.
            return {0, len(text)} | {a for a, _ in enc.offsets} | {b for _, b in enc.offsets}
        char_at = {}  # byte offset -> character offset, at character starts
        pos = 0
        for i, ch in enumerate(text):
            char_at[pos] = i
            pos += len(ch.encode("utf-8"))
        char_at[pos] = len(text)
        out, byte = {0}, 0
        for n in lengths:
            byte += n
            if byte in char_at:
                out.add(char_at[byte])
        return out


def line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, its newline included (the last line may have none). Line-aligned training spans
    end after a newline too, so the hole's suffix starts at the beginning of the next line."""
    spans, start = [], 0
    for line in text.split("\n"):
        end = min(start + len(line) + 1, len(text))
        spans.append((start, end))
        start = end
    return spans


def cut_single_line(text: str, rng: random.Random, counter: TokenCounter, max_tokens: int) -> Optional[Hole]:
    """A random whole line with at least MIN_LINE_CHARS non-blank characters and at most max_tokens tokens."""
    candidates = [s for s in line_spans(text) if len(text[s[0]:s[1]].strip()) >= MIN_LINE_CHARS]
    rng.shuffle(candidates)
    for start, end in candidates[:8]:  # A few tries: long lines are the only reason to reject one.
        if start > 0 and counter.count(text[start:end]) <= max_tokens:
            return Hole(start, end)
    return None


def cut_multi_line(text: str, rng: random.Random, counter: TokenCounter, max_tokens: int) -> Optional[Hole]:
    """2-8 consecutive whole lines starting at a non-blank line, at least two non-blank, at most max_tokens tokens."""
    lines = line_spans(text)
    starts = [i for i, (a, b) in enumerate(lines) if text[a:b].strip() and i > 0]
    rng.shuffle(starts)
    for first in starts[:8]:
        count = rng.randint(*MULTI_LINE_RANGE)
        # Shrink the block until it fits the token budget; give up on this start below two lines.
        while count >= MULTI_LINE_RANGE[0]:
            last = first + count - 1
            if last < len(lines):
                start, end = lines[first][0], lines[last][1]
                block = text[start:end]
                non_blank = sum(1 for line in block.split("\n") if line.strip())
                if non_blank >= 2 and counter.count(block) <= max_tokens:
                    return Hole(start, end)
            count -= 1
    return None


def cut_random_span(text: str, rng: random.Random, counter: TokenCounter, max_tokens: int) -> Optional[Hole]:
    """A run of 1..max_tokens tokens of the file's own tokenization that holds some non-blank text."""
    offsets = counter.encode(text).offsets
    if len(offsets) < 4:
        return None
    for _ in range(8):
        length = rng.randint(1, min(max_tokens, len(offsets) - 2))
        first = rng.randint(1, len(offsets) - length - 1)  # Leave at least one token of prefix and of suffix.
        start, end = offsets[first][0], offsets[first + length - 1][1]
        # Byte-level tokens may split a character; offsets of such tokens overlap, so check the cut is sane.
        if 0 < start < end < len(text) and text[start:end].strip() and counter.count(text[start:end]) <= max_tokens:
            return Hole(start, end)
    return None


def rest_of_line_cuts(text: str, start: int, end: int, boundaries: set[int]) -> list[int]:
    """Cursor positions inside the line text[start:end] for a rest-of-line task: at least one non-blank character of
    the line before the cursor and one after, and not a token boundary."""
    line = text[start:end]
    content = line.rstrip()
    indent = len(line) - len(line.lstrip())
    if not content.strip():
        return []
    return [start + c for c in range(indent + 1, len(content)) if start + c not in boundaries]


def cut_rest_of_line(text: str, rng: random.Random, counter: TokenCounter, max_tokens: int) -> Optional[Hole]:
    """A random line of at least MIN_LINE_CHARS non-blank characters, cut at a random mid-token character position;
    the hole is the rest of the line, its newline included."""
    candidates = [s for s in line_spans(text) if len(text[s[0]:s[1]].strip()) >= MIN_LINE_CHARS]
    rng.shuffle(candidates)
    boundaries = None
    for start, end in candidates[:8]:
        if boundaries is None:
            boundaries = counter.boundaries(text)  # Only for files that have a candidate line.
        cuts = rest_of_line_cuts(text, start, end, boundaries)
        if not cuts:
            continue
        cursor = rng.choice(cuts)
        if counter.count(text[cursor:end]) <= max_tokens:
            return Hole(cursor, end)
    return None


CUTTERS: dict[str, Callable[..., Optional[Hole]]] = {
    "single-line": cut_single_line,
    "multi-line": cut_multi_line,
    "rest-of-line": cut_rest_of_line,
    "random-span": cut_random_span,
}


def window_prefix(prefix: str, counter: TokenCounter, budget: int) -> str:
    """The longest tail of `prefix`, cut at a token boundary, that encodes to at most `budget` tokens."""
    if budget <= 0:
        return ""
    while True:
        enc = counter.encode(prefix)
        if len(enc.ids) <= budget:
            return prefix
        cut = enc.offsets[len(enc.ids) - budget][0]
        # Re-encoding the tail may merge differently at its new first character; loop until it fits.
        prefix = prefix[max(cut, 1):]  # Always drop at least one character, so the loop ends.


def window_suffix(suffix: str, counter: TokenCounter, budget: int) -> str:
    """The longest head of `suffix`, cut at a token boundary, that encodes to at most `budget` tokens."""
    if budget <= 0:
        return ""
    while True:
        enc = counter.encode(suffix)
        if len(enc.ids) <= budget:
            return suffix
        cut = enc.offsets[budget - 1][1]
        suffix = suffix[:cut] if cut < len(suffix) else suffix[:-1]  # Always drop at least one character.


def split_context(prefix_tokens: int, suffix_tokens: int, budget: int, prefix_share: float) -> tuple[int, int]:
    """Token budgets (prefix, suffix): prefix_share of the budget to the prefix, and what one side leaves unused
    goes to the other."""
    want_prefix = int(round(budget * prefix_share))
    take_prefix = min(prefix_tokens, max(want_prefix, budget - suffix_tokens))
    take_suffix = min(suffix_tokens, budget - take_prefix)
    return take_prefix, take_suffix


def make_task(record: dict, hole: Hole, kind: str, counter: TokenCounter, context_tokens: int,
              prefix_share: float) -> dict:
    text = record["text"]
    prefix, target, suffix = text[:hole.start], text[hole.start:hole.end], text[hole.end:]
    n_prefix, n_suffix = split_context(counter.count(prefix), counter.count(suffix), context_tokens, prefix_share)
    return {
        "language": record["language"],
        "kind": kind,
        "prefix": window_prefix(prefix, counter, n_prefix),
        "suffix": window_suffix(suffix, counter, n_suffix),
        "target": target,
        "target_tokens": counter.count(target),
        "package": record.get("package"),
        "version": record.get("version"),
        "path": record.get("path"),
        "file": text,
        "start": hole.start,
        "end": hole.end,
    }


def rewindow_task(task: dict, counter: TokenCounter, context_tokens: int, prefix_share: float) -> dict:
    """The same hole with its prefix and suffix cut again from the whole file for another context budget (a model
    with a longer window is measured on the holes the shorter one was, with the context it can read). make_task's
    windowing, so rewindowing at the budget a task was cut with gives the task back unchanged."""
    text = task["file"]
    if text[task["start"]:task["end"]] != task["target"]:
        raise ValueError(f"task {task.get('id')}: file[start:end] is not the target; the task was not cut from this file")
    prefix, suffix = text[:task["start"]], text[task["end"]:]
    n_prefix, n_suffix = split_context(counter.count(prefix), counter.count(suffix), context_tokens, prefix_share)
    return {**task, "prefix": window_prefix(prefix, counter, n_prefix), "suffix": window_suffix(suffix, counter, n_suffix)}


def read_jsonl_gz(path: str) -> Iterable[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def package_balanced_order(files: list[dict], rng: random.Random) -> list[int]:
    """File indices taking one file of each package in turn (packages and their files shuffled), so that one large
    package (rxjs has more test files than all the other TypeScript packages together) does not fill every cell."""
    by_package: dict[str, list[int]] = {}
    for i, record in enumerate(files):
        by_package.setdefault(record["package"], []).append(i)
    queues = [by_package[name] for name in sorted(by_package)]
    rng.shuffle(queues)
    for queue in queues:
        rng.shuffle(queue)
    order = []
    for depth in range(max((len(q) for q in queues), default=0)):
        order.extend(q[depth] for q in queues if depth < len(q))
    return order


def overlaps_any(record: dict, hole: Hole, exclude: dict[tuple, list[tuple[int, int]]]) -> bool:
    """Whether `hole` in `record`'s file overlaps a hole of `exclude` ((package, path) -> [(start, end)])."""
    return any(hole.start < end and start < hole.end
               for start, end in exclude.get((record.get("package"), record.get("path")), ()))


def excluded_holes(tasks: Iterable[dict]) -> dict[tuple, list[tuple[int, int]]]:
    """The holes of existing tasks by file, for build_tasks' `exclude`."""
    out: dict[tuple, list[tuple[int, int]]] = {}
    for task in tasks:
        out.setdefault((task.get("package"), task.get("path")), []).append((task["start"], task["end"]))
    return out


def build_tasks(records: list[dict], counter: TokenCounter, per_cell: int, seed: int, max_span_tokens: int,
                context_tokens: int, prefix_share: float = 0.75, kinds: tuple[str, ...] = KINDS,
                max_per_file: int = 1, exclude: Optional[dict[tuple, list[tuple[int, int]]]] = None,
                id_prefix: str = "") -> list[dict]:
    """`per_cell` tasks for every (language group, kind), packages taken in turn. A pass over the files uses each
    file at most once; up to `max_per_file` passes are made while the cell lacks tasks (a hole already taken from a
    file is not taken again). A hole that overlaps one of `exclude` (excluded_holes: another task set's, e.g. the
    held-out eval's when cutting the gate's calibration set) is not taken either. Ids start with `id_prefix`."""
    exclude = exclude or {}
    tasks = []
    for group, languages in GROUPS.items():
        files = sorted((r for r in records if r.get("language") in languages), key=lambda r: (r["package"], r["path"]))
        for kind in kinds:
            rng = random.Random(f"{seed}:{group}:{kind}")  # String seeds are hashed with sha512: stable across runs.
            order = package_balanced_order(files, rng)
            made, taken = 0, set()
            for _ in range(max_per_file):
                for index in order:
                    if made == per_cell:
                        break
                    hole = CUTTERS[kind](files[index]["text"], rng, counter, max_span_tokens)
                    if hole is None or (index, hole) in taken or overlaps_any(files[index], hole, exclude):
                        continue
                    taken.add((index, hole))
                    task = make_task(files[index], hole, kind, counter, context_tokens, prefix_share)
                    task["id"] = f"{id_prefix}{GROUP_SHORT[group]}-{KIND_SHORT[kind]}-{made:04d}"
                    tasks.append(task)
                    made += 1
            if made < per_cell:
                print(f"tasks: only {made} {group} {kind} tasks could be cut (wanted {per_cell})", file=sys.stderr)
    return tasks


def key_order(task: dict) -> dict:
    """Readable key order in the JSONL file: the batch-mode keys first, then any others (an RL pool's split and
    tests, kept when --rewindow rewrites one), the whole file last."""
    first = ["id", "language", "kind", "prefix", "suffix", "target", "target_tokens", "package", "version", "path",
             "start", "end"]
    rest = [k for k in task if k not in first and k != "file"]
    return {k: task[k] for k in [*first, *rest, "file"] if k in task}
