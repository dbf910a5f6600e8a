"""Unit tests for the snippets of other files in the canvas (unmask/related.py, data.Examples --p-related).

Run: python -m unittest tests.test_related
Rewrite the fixture the extension's engine is tested against (test/fixtures/related-snippets-cases.json):
    python -m tests.test_related --write-fixture
"""

import json
import sys
import types
import unittest
from pathlib import Path

import numpy as np

from unmask import related
from unmask.data import Examples

NEWLINE = 10
FILE_SEP = 3
FIXTURE = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "related-snippets-cases.json"


def newline_table() -> np.ndarray:
    table = np.zeros(64, dtype=bool)
    table[NEWLINE] = True
    return table


def lines(*rows: list[int]) -> np.ndarray:
    """Token ids of a document: each row is a line, ended by the newline id."""
    return np.asarray([t for row in rows for t in list(row) + [NEWLINE]], dtype=np.int64)


def random_doc(rng: np.random.Generator, n_lines: int, low: int, high: int) -> np.ndarray:
    return lines(*[list(rng.integers(low, high, size=int(rng.integers(2, 7)))) for _ in range(n_lines)])


def fixture_cases() -> list[dict]:
    """Hand-made and random cases; `expected` is what related.select returns (the reference)."""
    rng = np.random.default_rng(7)
    cases = [
        ("empty query chooses nothing", np.zeros(0, np.int64), [random_doc(rng, 20, 20, 40)], 64),
        ("no other document", np.arange(20, 30), [], 64),
        ("budget too small for a chunk", np.arange(20, 30), [lines(*[[20, 21, 22]] * 12)], 8),
        ("a trailing line without newline", np.arange(20, 26),
         [np.asarray([20, 21, 22, NEWLINE, 23, 24, 25, NEWLINE, 20, 21, 22, 23, 24], np.int64)], 40),
        ("nothing similar", np.arange(40, 50), [random_doc(rng, 20, 20, 30)], 64),
    ]
    for i in range(12):
        query = rng.integers(20, 45, size=int(rng.integers(1, 65)))
        others = [random_doc(rng, int(rng.integers(1, 40)), 15 + 5 * d, 45 + 5 * d) for d in range(int(rng.integers(1, 4)))]
        cases.append((f"random {i}", query, others, int(rng.integers(2, 129))))
    out = []
    for name, query, others, budget in cases:
        chosen = related.select(query, others, newline_table(), budget)
        out.append({"name": name, "query": [int(t) for t in query], "others": [[int(t) for t in d] for d in others],
                    "newline_ids": [NEWLINE], "budget": budget, "expected": [[int(t) for t in c] for c in chosen]})
    return out


class ChunkSelection(unittest.TestCase):
    def test_chunks_are_eight_lines_every_four(self):
        doc = lines(*[[20 + i] for i in range(18)])  # 18 one-token lines, 2 tokens each
        ranges = related.chunk_ranges(doc, newline_table())
        self.assertEqual(ranges, [(0, 16), (8, 24), (16, 32), (24, 36)])

    def test_the_best_chunk_comes_last_and_overlaps_are_skipped(self):
        near = [[30, 31, 32]] * 8
        far = [[50, 51, 52]] * 8
        doc = lines(*far, *near)
        chosen = related.select(np.asarray([30, 31, 32, 33]), [doc, lines(*near[:4], [30, 40])], newline_table(), 200)
        self.assertTrue(chosen, "similar chunks are chosen")
        scores = [len(set(c.tolist()) & {30, 31, 32, 33}) / len(set(c.tolist()) | {30, 31, 32, 33}) for c in chosen]
        self.assertEqual(scores, sorted(scores), "ascending score: the best next to the file's text")
        self.assertLessEqual(sum(1 + len(c) for c in chosen) + 1, 200)

    def test_the_budget_cuts_the_last_chunk(self):
        doc = lines(*[[30, 31, 32]] * 8)  # one chunk of 32 tokens
        chosen = related.select(np.asarray([30, 31, 32]), [doc], newline_table(), 20)
        self.assertEqual([len(c) for c in chosen], [18], "20 = [FILE] + 18 + [FILE]")
        self.assertEqual(related.layout(chosen, FILE_SEP).tolist(), [FILE_SEP, *chosen[0].tolist(), FILE_SEP])
        self.assertEqual(related.layout([], FILE_SEP).tolist(), [])

    def test_the_fixture_file_is_current(self):
        self.assertTrue(FIXTURE.exists(), f"{FIXTURE} missing: python -m tests.test_related --write-fixture")
        self.assertEqual(json.loads(FIXTURE.read_text())["cases"], fixture_cases(),
                         "the fixture differs from related.select: python -m tests.test_related --write-fixture")


class CanvasesWithSnippets(unittest.TestCase):
    def examples(self, p_related: float) -> Examples:
        rng = np.random.default_rng(0)
        files, starts, lengths, langs, packages, tokens = 4, [], [], [], [], []
        for f in range(files):
            body = random_doc(rng, 60, 20, 30)[:300]
            starts.append(len(tokens))
            tokens += [FILE_SEP] + body.tolist()
            lengths.append(len(body) + 1)
            langs.append(7)
            packages.append(0 if f < 3 else 1)
        stream = types.SimpleNamespace(starts=np.array(starts), lengths=np.array(lengths),
                                       tokens=np.asarray(tokens, np.uint16), langs=np.array(langs),
                                       packages=np.array(packages))
        return Examples(stream, {"eos": 2, "pad": 0, "mask": 1, "file": FILE_SEP}, newline_table(), 256,
                        np.random.default_rng(1), p_whole=0.0, p_line=0.5, p_empty=0.0, fim_rate=0.0,
                        p_related=p_related)

    def test_snippets_precede_the_file_and_the_canvas_fits(self):
        ex = self.examples(1.0)
        with_snippets = 0
        for _ in range(100):
            toks, span, _ = ex.mdm()
            self.assertLessEqual(len(toks), 256)
            seps = np.flatnonzero(toks == FILE_SEP)
            if len(seps):
                with_snippets += 1
                self.assertEqual(seps[0], 1, "snippets start right after the language tag")
                self.assertFalse(span[:seps[-1] + 1].any(), "snippets are context, never masked")
                self.assertLessEqual(int(seps[-1]), 128, "the snippets and their [FILE] tokens stay within the budget")
        self.assertGreater(with_snippets, 50, "files of the same package share ids: most canvases get snippets")

    def test_off_by_default(self):
        ex = self.examples(0.0)
        for _ in range(50):
            toks, _, _ = ex.mdm()
            self.assertFalse((toks == FILE_SEP).any())


if __name__ == "__main__":
    if "--write-fixture" in sys.argv:
        FIXTURE.write_text(json.dumps({"cases": fixture_cases()}) + "\n")
        print(f"wrote {FIXTURE}")
    else:
        unittest.main()
