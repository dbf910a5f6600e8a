"""Cut deterministic infill tasks from the held-out test split for the eval harness.

Run:
    python models/recipe/tasks.py --per-cell 20
      (reads models/recipe/data/corpus/test.jsonl.gz and the tokenizer, writes models/recipe/data/eval/tasks.jsonl)

A task is one hole in one held-out file: {id, language, kind, prefix, suffix, target, ...}. `prefix` and `suffix`
are the model's context, cut to whole tokens so that [lang tag] + prefix + span + suffix fits in the model's
max_seq_len with room for the largest span; `file`, `start` and `end` locate the hole in the whole file so that the
syntax check can parse the filled file. The extra keys are ignored by the TypeScript CLI's batch mode, which reads
{prefix, suffix, language} from the same file.

Kinds (each cut from Python files and from TypeScript/JavaScript files, `--per-cell` tasks per language group and
kind):
- single-line: one whole line (with its indentation and its newline) of at least 3 non-blank characters;
- multi-line: 2-8 consecutive whole lines (newlines included), at least 2 of them non-blank;
- random-span: a run of 1..max-span-tokens tokens of the file's own tokenization, anywhere (mid-line included).
Every target is at most `--max-span-tokens` tokens (64) when encoded alone, which is how the canvas sees it.
Exact match is scored after trimming trailing whitespace, so the newline ending a line target does not count.
The same seed, test split and tokenizer always give the same tasks.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEST = os.path.join(HERE, "data", "corpus", "test.jsonl.gz")
DEFAULT_TOKENIZER = os.path.join(HERE, "data", "tokenizer", "tokenizer.json")
DEFAULT_OUT = os.path.join(HERE, "data", "eval", "tasks.jsonl")

KINDS = ("single-line", "multi-line", "random-span")
# Language groups: TypeScript and JavaScript share one group (one parser, one tag family); the task keeps the
# file's own language so the right tag and dialect are used.
GROUPS = {"python": ("python",), "ts/js": ("typescript", "javascript")}
GROUP_SHORT = {"python": "py", "ts/js": "ts"}
KIND_SHORT = {"single-line": "line", "multi-line": "lines", "random-span": "span"}

MIN_LINE_CHARS = 3  # A single-line target must hold this many non-blank characters ("}" alone teaches nothing).
MULTI_LINE_RANGE = (2, 8)


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


CUTTERS: dict[str, Callable[..., Optional[Hole]]] = {
    "single-line": cut_single_line,
    "multi-line": cut_multi_line,
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


def build_tasks(records: list[dict], counter: TokenCounter, per_cell: int, seed: int, max_span_tokens: int,
                context_tokens: int, prefix_share: float = 0.75) -> list[dict]:
    """`per_cell` tasks for every (language group, kind), each file used at most once per kind, packages taken in
    turn."""
    tasks = []
    for group, languages in GROUPS.items():
        files = sorted((r for r in records if r.get("language") in languages), key=lambda r: (r["package"], r["path"]))
        for kind in KINDS:
            rng = random.Random(f"{seed}:{group}:{kind}")  # String seeds are hashed with sha512: stable across runs.
            order = package_balanced_order(files, rng)
            made = 0
            for index in order:
                if made == per_cell:
                    break
                hole = CUTTERS[kind](files[index]["text"], rng, counter, max_span_tokens)
                if hole is None:
                    continue
                task = make_task(files[index], hole, kind, counter, context_tokens, prefix_share)
                task["id"] = f"{GROUP_SHORT[group]}-{KIND_SHORT[kind]}-{made:04d}"
                tasks.append(task)
                made += 1
            if made < per_cell:
                print(f"tasks: only {made} {group} {kind} tasks could be cut (wanted {per_cell})", file=sys.stderr)
    return tasks


def key_order(task: dict) -> dict:
    """Readable key order in the JSONL file: the batch-mode keys first, the whole file last."""
    first = ["id", "language", "kind", "prefix", "suffix", "target", "target_tokens", "package", "version", "path",
             "start", "end", "file"]
    return {k: task[k] for k in first if k in task}


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", default=DEFAULT_TEST, help="held-out test split (JSONL, gzip allowed)")
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="tokenizer.json used to count tokens")
    parser.add_argument("--out", default=DEFAULT_OUT, help="where to write the tasks (JSONL)")
    parser.add_argument("--per-cell", type=int, default=20,
                        help="tasks per (language group, kind): 2 groups x 3 kinds, so 6x this many in all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task cutter")
    parser.add_argument("--max-span-tokens", type=int, default=64, help="largest target, in tokens")
    parser.add_argument("--max-seq-len", type=int, default=256, help="the model's max_seq_len (canvas length)")
    parser.add_argument("--reserved-tokens", type=int, default=8,
                        help="canvas tokens kept free for special tokens (language tag, FIM markers of the AR "
                             "baseline, its end token)")
    parser.add_argument("--prefix-share", type=float, default=0.75,
                        help="share of the context budget given to the prefix when both sides are long")
    args = parser.parse_args(argv)

    context_tokens = args.max_seq_len - args.max_span_tokens - args.reserved_tokens
    if context_tokens <= 0:
        parser.error("max-seq-len leaves no room for context after the span and the reserved tokens")
    counter = TokenCounter(args.tokenizer)
    records = list(read_jsonl_gz(args.test))
    tasks = build_tasks(records, counter, args.per_cell, args.seed, args.max_span_tokens, context_tokens,
                        args.prefix_share)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(key_order(task), ensure_ascii=False) + "\n")
    print(f"tasks: wrote {len(tasks)} tasks to {args.out} (context {context_tokens} tokens, "
          f"spans <= {args.max_span_tokens} tokens)")


if __name__ == "__main__":
    main()
