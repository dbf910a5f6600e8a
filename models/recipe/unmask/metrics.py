"""Text metrics of a completion against its target, shared by the eval harness (eval_heldout.py, eval_humaneval.py) and the RL
rewards (rewards.py, train_rl.py). Torch-free: numpy and the standard library only, so scoring never loads a model stack.

- exact match: the completion equals the target after trailing whitespace is trimmed from both;
- first-line exact match: the completion's first line equals the target's first line, each with trailing
  whitespace trimmed (what a one-line ghost text must get right); an empty completion never matches a target whose
  first line holds text;
- edit similarity: 1 - Levenshtein(completion, target) / max(len), characters, both trimmed the same way;
- empty: the completion holds no visible text;
- degenerate repetition: the completion is mostly one repeated n-gram (`degenerate`, below: `self = self = self =`,
  `, True, True, , 0,`);
- AR-ness@k, local and global (methods.md section 3; the TypeScript engine implements the same definitions).
Also the copy-from-file lookup baseline (`copy_from_file`), the reference row every model must beat.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Optional

import numpy as np

ARNESS_K = 8


# ---------------------------------------------------------------------------------------------------------------
# Text metrics
# ---------------------------------------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Character edit distance. One numpy row per character of the longer string: the insertion recurrence
    cur[j] = min(cur[j-1] + 1, tmp[j]) is solved for the whole row at once as j + cummin(tmp[k] - k)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    bb = np.array([ord(c) for c in b], dtype=np.int64)
    idx = np.arange(len(b) + 1, dtype=np.int64)
    prev = idx.copy()
    tmp = np.empty_like(prev)
    for i, ch in enumerate(a, start=1):
        tmp[0] = i
        np.minimum(prev[:-1] + (bb != ord(ch)), prev[1:] + 1, out=tmp[1:])
        prev = np.minimum.accumulate(tmp - idx) + idx
    return int(prev[-1])


def exact_match(completion: str, target: str) -> bool:
    return completion.rstrip() == target.rstrip()


def first_line(text: str) -> str:
    """The first line of `text` with trailing whitespace trimmed."""
    return text.split("\n", 1)[0].rstrip()


def first_line_exact(completion: str, target: str) -> bool:
    """The completion's first line equals the target's first line (trailing whitespace trimmed from each). Both
    first lines blank counts as a match only when the target's first line is blank too (a target that starts with a
    newline); a blank completion never matches a target whose first line holds text."""
    return first_line(completion) == first_line(target)


def edit_similarity(completion: str, target: str) -> float:
    a, b = completion.rstrip(), target.rstrip()
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def is_empty(completion: str) -> bool:
    return not completion.strip()


# ---------------------------------------------------------------------------------------------------------------
# Degenerate repetition
# ---------------------------------------------------------------------------------------------------------------

CODE_TOKEN = re.compile(r"\w+|[^\w\s]")
DEGENERATE_MIN_TOKENS = 6  # Shorter completions are never called degenerate.
DEGENERATE_MAX_N = 4  # n-grams of 1..4 code tokens are looked at.
DEGENERATE_MIN_REPEATS = 3  # The n-gram must occur at least this often (non-overlapping)...
DEGENERATE_COVERAGE = 0.5  # ...and its occurrences must cover at least this share of the completion's tokens.
CLOSERS = frozenset(")]}\"'`")  # An n-gram of these alone is nesting being closed (`))))`, `""\"`), not a loop.


def code_tokens(text: str) -> list[str]:
    """Words (letters, digits, underscore) and single punctuation characters; whitespace dropped."""
    return CODE_TOKEN.findall(text)


def count_non_overlapping(tokens: list[str], gram: tuple[str, ...]) -> int:
    n, i, count = len(gram), 0, 0
    while i + n <= len(tokens):
        if tuple(tokens[i:i + n]) == gram:
            count += 1
            i += n
        else:
            i += 1
    return count


def repetition(text: str, max_n: int = DEGENERATE_MAX_N) -> tuple[float, Optional[tuple[str, ...]]]:
    """(coverage, n-gram): the largest share of the text's code tokens covered by the non-overlapping occurrences of
    one n-gram (n = 1..max_n) that occurs at least DEGENERATE_MIN_REPEATS times, and that n-gram; (0, None) when no
    n-gram repeats that often. N-grams made only of closing brackets and quotes are not counted."""
    tokens = code_tokens(text)
    best, best_gram = 0.0, None
    for n in range(1, max_n + 1):
        if len(tokens) < n * DEGENERATE_MIN_REPEATS:
            break
        grams = Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        for gram, overlapping in grams.most_common():
            if overlapping < DEGENERATE_MIN_REPEATS:
                break
            if all(t in CLOSERS for t in gram):
                continue
            occurrences = count_non_overlapping(tokens, gram)
            if occurrences < DEGENERATE_MIN_REPEATS:
                continue
            coverage = occurrences * n / len(tokens)
            if coverage > best:
                best, best_gram = coverage, gram
    return best, best_gram


def degenerate(completion: str) -> bool:
    """Degenerate repetition: the completion has at least 6 code tokens (words and single punctuation characters)
    and one n-gram of 1-4 of them, repeated at least 3 times without overlap, covers at least half of them (n-grams
    of closing brackets and quotes alone do not count: `foo(bar(baz(qux()))))` closes nesting). `self = self = self =`
    (the bigram "self =" covers 6 of 6 tokens) and `, True, True, , 0,` ("," covers 5 of 8) are degenerate;
    `self.a = a` / `self.b = b` / `self.c = c` on three lines ("self ." covers 6 of 15) and `f(a, b, c, d)` (","
    covers 3 of 10) are not. A literal such as `[0, 0, 0, 0]` is flagged too: rare in a target, and a completion that
    is nothing else is what this rate is meant to catch."""
    tokens = code_tokens(completion)
    if len(tokens) < DEGENERATE_MIN_TOKENS:
        return False
    return repetition(completion)[0] >= DEGENERATE_COVERAGE


# ---------------------------------------------------------------------------------------------------------------
# AR-ness (methods.md section 3; the TypeScript engine implements the same definitions)
# ---------------------------------------------------------------------------------------------------------------


def local_arness(order: list[int], k: int) -> float:
    """Share of steps t whose position continues a consecutive increasing run of length k over the k previous
    commits: p_t - i == p_{t-i} for i = 1..k. Steps with fewer than k previous commits are not scored, so strict
    left-to-right decoding scores 1. Returns nan when no step can be scored (order of length <= k)."""
    scored = len(order) - k
    if scored <= 0:
        return float("nan")
    hits = sum(1 for t in range(k, len(order)) if all(order[t] - i == order[t - i] for i in range(1, k + 1)))
    return hits / scored


def global_arness(order: list[int], k: int) -> float:
    """Share of steps whose position is among the k left-most positions still masked just before that step, "still
    masked" counting only positions in the order (those committed at or after it). Left-to-right decoding scores 1.
    Returns nan for an empty order."""
    if not order:
        return float("nan")
    remaining = sorted(order)
    hits = 0
    for p in order:
        if p in remaining[:k]:
            hits += 1
        remaining.remove(p)
    return hits / len(order)


def arness_profile(order: list[int], k_max: int = ARNESS_K) -> dict:
    """order: span offsets in decoding order (sample.decoding_order: by step, left to right within a step, so a step
    that commits a consecutive run counts as that run written left to right; end-of-span fill left out)."""
    if len(set(order)) != len(order):
        raise ValueError("a decoding order must not list a position twice")
    return {"local": [local_arness(order, k) for k in range(1, k_max + 1)],
            "global": [global_arness(order, k) for k in range(1, k_max + 1)]}


# ---------------------------------------------------------------------------------------------------------------
# The copy-from-file lookup baseline
# ---------------------------------------------------------------------------------------------------------------

COPY_MAX_LINES = 4  # A multi-line copy bridges to the suffix within this many lines (the eval's largest target).


def longest_repeated_tail(prefix: str, text: str) -> tuple[int, int]:
    """(length, start): the longest tail of `prefix` that also occurs in `text` (= prefix + suffix) somewhere other
    than at the end of the prefix itself, and where that other occurrence starts: the nearest one before the cursor,
    else the first one after it. (0, -1) when not even the last character recurs. A tail that occurs with length L
    also occurs with every shorter length (its own tail), so the length is found by bisection."""
    end = len(prefix)

    def where(length: int) -> int:
        tail = prefix[end - length:]
        before = text.rfind(tail, 0, end - 1)  # Occurrences ending before the cursor's own tail does.
        if before >= 0:
            return before
        return text.find(tail, end - length + 1)  # Occurrences starting after its start (overlaps allowed).

    lo, hi, best = 0, end, (0, -1)  # Invariant: a tail of length lo recurs; of length hi + 1 does not.
    while lo < hi:
        mid = (lo + hi + 1) // 2
        start = where(mid)
        if start >= 0:
            lo, best = mid, (mid, start)
        else:
            hi = mid - 1
    return best


def copy_from_file(prefix: str, suffix: str, kind: str = "single-line") -> str:
    """The copy-from-file lookup baseline: find the longest tail of the text before the cursor that occurs elsewhere
    in the same file (prefix + suffix, the hole removed), and copy what followed that occurrence up to the end of its
    line (the newline included).

    Multi-line tasks (kind "multi-line") copy whole lines on from there, and stop where the copy meets the suffix:
    after the first line count k (1..COPY_MAX_LINES) for which the line that followed the copied block in the file
    equals the suffix's first non-blank line (stripped), i.e. the copied block bridges the prefix to the suffix as its
    original bridged to the same line. When no k up to COPY_MAX_LINES bridges, two lines (the fewest a multi-line
    target has). The copy never runs past the end of the file. An empty string when nothing recurs."""
    text = prefix + suffix
    length, start = longest_repeated_tail(prefix, text)
    if length == 0:
        return ""
    source = text[start + length:]
    lines = source.split("\n")
    pieces = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    if kind != "multi-line":
        return pieces[0] if pieces else ""
    anchor = next((line.strip() for line in suffix.split("\n") if line.strip()), None)
    take = min(2, len(pieces))
    if anchor is not None:
        for k in range(1, min(COPY_MAX_LINES, len(pieces)) + 1):
            after = next((p.strip() for p in pieces[k:] if p.strip()), None)
            if after == anchor:
                take = k
                break
    return "".join(pieces[:take])


# ---------------------------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------------------------


def nanmean(values: Iterable) -> Optional[float]:
    """Mean of the values that are neither None nor nan; None when none is left."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def completion_metrics(completion: str, target: str) -> dict:
    """Every text metric of one completion: exact, first_line_exact, edit_sim, empty, degenerate."""
    return {"exact": exact_match(completion, target), "first_line_exact": first_line_exact(completion, target),
            "edit_sim": edit_similarity(completion, target), "empty": is_empty(completion),
            "degenerate": degenerate(completion)}
