"""Snippets of other files of the same package in the denoiser's canvas (issue 14, item 3, route 1): the chunk
selection the trainer uses, the same as the extension's server/engine/related-snippets.ts (the shared fixture
test/fixtures/related-snippets-cases.json, written by tests/test_related.py --write-fixture, holds both to it).

Canvas with snippets (no [FILE] token at all when none is chosen, which is the canvas as before):

    [lang] [FILE] chunk_k ... [FILE] chunk_1 [FILE] prefix [MASK]... suffix      (chunk_1 the best, nearest the text)

A chunk is CHUNK_LINES lines of another file (chunks start every CHUNK_STRIDE lines), scored by the Jaccard
similarity of its distinct token ids with the last QUERY_TOKENS ids before the first hole: what llama.vscode does
with its ring buffer of chunks, on ids so that the trainer and the extension need no tokenizer to agree.
"""

from __future__ import annotations

import numpy as np

CHUNK_LINES = 8
CHUNK_STRIDE = 4
QUERY_TOKENS = 64
MIN_SCORE = 0.1
MIN_CHUNK_TOKENS = 8
LAYOUT = "file_sep"


def chunk_ranges(ids: np.ndarray, newline: np.ndarray) -> list[tuple[int, int]]:
    """[begin, end) token ranges of the chunks of one document. `newline` [V] bool: the token ends a line."""
    ends = (np.flatnonzero(newline[ids]) + 1).tolist()  # a line ends right after a newline token
    if not ends or ends[-1] != len(ids):
        ends.append(len(ids))  # trailing tokens without a newline form the last line
    starts = [0] + ends[:-1]
    n_lines = len(ends) if len(ids) else 0
    out = []
    s = 0
    while s < n_lines:
        last = min(s + CHUNK_LINES, n_lines) - 1
        out.append((starts[s], ends[last]))
        if last == n_lines - 1:
            break
        s += CHUNK_STRIDE
    return out


def select(query: np.ndarray, others: list[np.ndarray], newline: np.ndarray, budget: int) -> list[np.ndarray]:
    """The chunks to place before the file's own text, in canvas order (best last); [] when none.

    query [<=QUERY_TOKENS] int: the last ids before the first hole; others: token ids of other documents; budget: the
    canvas tokens the snippets may take in all, every [FILE] token and the one before the file's text included.
    """
    q = set(np.asarray(query).tolist())
    if not q or budget <= 1:
        return []
    cands = []  # (-score, doc, begin, end)
    for d, ids in enumerate(others):
        ids = np.asarray(ids)
        for b, e in chunk_ranges(ids, newline):
            if e - b < MIN_CHUNK_TOKENS:
                continue
            c = set(ids[b:e].tolist())
            score = len(c & q) / len(c | q)
            if score >= MIN_SCORE:
                cands.append((-score, d, b, e))
    cands.sort()
    remaining = budget - 1  # the [FILE] before the file's own text
    chosen: list[tuple[int, int, int]] = []
    for _, d, b, e in cands:
        if any(d == cd and b < ce and cb < e for cd, cb, ce in chosen):
            continue
        if 1 + (e - b) <= remaining:
            chosen.append((d, b, e))
            remaining -= 1 + (e - b)
        elif remaining - 1 >= MIN_CHUNK_TOKENS:
            chosen.append((d, b, b + remaining - 1))
            break
        else:
            break
    return [np.asarray(others[d][b:e], dtype=np.int64) for d, b, e in reversed(chosen)]


def layout(chunks: list[np.ndarray], file_sep: int) -> np.ndarray:
    """[FILE] chunk ... [FILE]: the ids between the language tag and the file's text ([] without chunks)."""
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    parts = []
    for c in chunks:
        parts += [np.array([file_sep], dtype=np.int64), np.asarray(c, dtype=np.int64)]
    parts.append(np.array([file_sep], dtype=np.int64))
    return np.concatenate(parts)
