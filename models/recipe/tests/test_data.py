"""Unit tests for the training canvases' span choice (unmask/data.py). Run: python -m unittest tests.test_data"""

import types
import unittest

import numpy as np

from unmask.data import Examples

NEWLINE = 10


def examples(p_rest: float, seed: int = 0) -> Examples:
    # One file of 400 tokens: lines of 3-9 ordinary tokens (ids 20-29), each ended by the newline id.
    rng = np.random.default_rng(seed)
    body = []
    while len(body) < 400:
        body += list(rng.integers(20, 30, size=int(rng.integers(3, 10)))) + [NEWLINE]
    tokens = np.asarray([3] + body[:400], dtype=np.uint16)  # <|file|> then the file
    stream = types.SimpleNamespace(starts=np.array([0]), lengths=np.array([len(tokens)]), tokens=tokens,
                                   langs=np.array([7]))
    newline = np.zeros(64, dtype=bool)
    newline[NEWLINE] = True
    return Examples(stream, {"eos": 2, "pad": 0, "mask": 1}, newline, 128, np.random.default_rng(seed),
                    p_whole=0.0, p_line=0.0, p_empty=0.0, fim_rate=0.0, p_rest=p_rest)


class RestOfLineSpans(unittest.TestCase):
    def test_start_inside_a_line_and_end_with_a_newline(self):
        ex = examples(p_rest=1.0)
        _, w = ex.window(127)
        inside = 0
        for _ in range(200):
            s0, e0 = ex.span_end(w, 0, len(w))
            self.assertLess(s0, e0)
            self.assertEqual(int(w[e0 - 1]), NEWLINE, "a rest-of-line span ends with its line's newline")
            self.assertLessEqual(int((w[s0:e0] == NEWLINE).sum()), 4, "the rest of the line and at most 3 more lines")
            inside += s0 > 0 and int(w[s0 - 1]) != NEWLINE
        self.assertGreater(inside, 150, "nearly every span starts after the first token of its line")

    def test_off_by_default(self):
        ex = examples(p_rest=0.0)
        _, w = ex.window(127)
        ends = [ex.span_end(w, 0, len(w))[1] for _ in range(200)]
        self.assertLess(sum(int(w[e - 1]) == NEWLINE for e in ends if e > 0), 100, "random runs rarely end a line")


class SpanPlacement(unittest.TestCase):
    def test_a_span_that_never_fits_falls_back_to_a_whole_window_canvas(self):
        # Every span lands at the window's end in the largest bucket, so none fits the 128-token canvas: the canvas
        # must still come (a GPU window's DataLoader worker used to raise after 10 tries and end the stage).
        ex = examples(p_rest=0.0)
        ex.span_end = lambda w, start, limit: (len(w) - 1, len(w))
        ex.bucket_for = lambda length, room: 128
        toks, span, whole = ex.mdm()
        self.assertEqual(whole, 1)
        self.assertEqual(len(toks), 128)
        self.assertFalse(span[0], "the language token is context")
        self.assertTrue(span[1:].all())

    def test_ordinary_spans_fit(self):
        ex = examples(p_rest=0.3)
        for _ in range(300):
            toks, span, whole = ex.mdm()
            self.assertEqual(whole, 0)
            self.assertLessEqual(len(toks), 128)
            self.assertTrue(span.any())


if __name__ == "__main__":
    unittest.main()
