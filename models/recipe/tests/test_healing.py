"""Token healing in the recipe's sampler (sample.py heal_tail, heal_chains, denoise's first_tokens): the rule on
the fixture shared with the TypeScript engine (test/fixtures/healing-cases.json, also run by
test/unit/engine-healing.test.ts) and the sampler against a mock model that only makes sense of spans starting at a
token boundary.

Run: python -m unittest tests.test_healing   (from models/recipe/)
"""
from __future__ import annotations

import json
import os
import unittest

import torch


from unmask import paths, sample

CASES = os.path.join(paths.REPO_DIR, "test", "fixtures", "healing-cases.json")


def load_fixture():
    with open(CASES, encoding="utf-8") as f:
        fixture = json.load(f)
    token_bytes = [b"" if v is None else v.encode("utf-8") if isinstance(v, str) else bytes(v["bytes"])
                   for v in fixture["vocab"]]

    def decode(ids):
        return b"".join(token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    specials = [i for i, v in enumerate(fixture["vocab"]) if v is None]
    return fixture, decode, sample.token_pieces(decode, len(token_bytes), specials)


class HealingMatchesTheSharedFixture(unittest.TestCase):
    def test_every_heal_case(self):
        fixture, decode, pieces = load_fixture()
        for case in fixture["heal"]:
            with self.subTest(case["name"]):
                healing = sample.heal_tail(case["tokens"], case["text"], decode, pieces)
                if case["expect"] is None:
                    self.assertIsNone(healing)
                    continue
                self.assertEqual({"partial": healing.partial, "fallback": list(healing.fallback),
                                  "ids": list(healing.ids)}, case["expect"])
                self.assertEqual(list(healing.texts), [pieces[i] for i in healing.ids])

    def test_every_chain_case(self):
        fixture, decode, pieces = load_fixture()
        V = len(pieces)
        for case in fixture["chain"]:
            with self.subTest(case["name"]):
                healing = sample.heal_tail(case["tokens"], case["text"], decode, pieces)
                kept = case["tokens"][:len(case["tokens"]) - len(healing.fallback)]
                start = 1 + len(kept)
                canvas = torch.tensor([[3] + kept + [1] * 8])

                def model(ids, positions, span, lists=case["lists"], start=start):
                    logits = torch.full((*positions.shape, V), float("-inf"))
                    for b in range(positions.shape[0]):
                        for j in range(positions.shape[1]):
                            offset = int(positions[b, j]) - start
                            for i, logit in (lists[offset] if 0 <= offset < len(lists) else [[2, 5.0]]):
                                logits[b, j, i] = logit
                    return logits

                result = sample.denoise(model, canvas, 1, 2, sample.SamplerOptions(steps=8), [torch.Generator()],
                                        banned_ids=(0, 3), first_tokens=[{start: healing}])
                span = result.canvas[0, start:].tolist()
                n = len(case["expect"]["tokens"])
                self.assertEqual({"tokens": sample.trim_at_eos(span, 2),
                                  "fell_back": bool(result.filled[0, start:start + n].all())}, case["expect"])
                self.assertTrue(bool((result.step[0, start:start + n] == 0).all()), "decided in the first step")


# A mock vocabulary: special ids, two context tokens, then words.
PAD, MASK, EOS, FILE, X, Y, LANG = 0, 1, 2, 3, 4, 5, 7
MA, MARK, MARKS, MAX, TRUE, CLOSE, Q, UNDERSCORE = 8, 9, 10, 11, 12, 13, 14, 15
PIECES = ["", "", "", "", "x", "y", "", "", "ma", "mark", "marks", "max", " True", ")", "q", "_"]
V = len(PIECES)
HEALING = sample.TokenHealing("ma", (MA, MARK, MARKS, MAX), ("ma", "mark", "marks", "max"), (MA,))


class Scripted:
    """Logits by the offset of a position in the span (the span starts at `start`): offset 0 gets `first`, offset 1
    `)`, the rest end-of-span; everything else 0."""

    def __init__(self, start: int, first: dict[int, float]):
        self.start, self.first = start, first

    def __call__(self, ids, positions, span):
        B, P = positions.shape
        logits = torch.zeros(B, P, V)
        for b in range(B):
            for j in range(P):
                offset = int(positions[b, j]) - self.start
                prefs = self.first if offset == 0 else {CLOSE: 10.0} if offset == 1 else {EOS: 10.0}
                for token, strength in prefs.items():
                    logits[b, j, token] = strength
        return logits


class HealedDenoising(unittest.TestCase):
    START = 4

    def run_rows(self, model, first_tokens, rows=1, **options):
        canvas = torch.tensor([[LANG, X, Y, UNDERSCORE] + [MASK] * 8 + [X]] * rows)
        opts = sample.SamplerOptions(**{"steps": 8, "eos_fill": False, **options})
        generators = [torch.Generator().manual_seed(r) for r in range(rows)]
        return sample.denoise(model, canvas, MASK, EOS, opts, generators, banned_ids=(PAD, FILE, LANG),
                              first_tokens=first_tokens)

    def span(self, result, row=0):
        return sample.trim_at_eos(result.canvas[row, self.START:self.START + 8].tolist(), EOS)

    def test_the_first_position_takes_the_best_listed_token_that_extends_the_partial(self):
        model = Scripted(self.START, {TRUE: 10.0, MARKS: 5.0})
        healed = self.run_rows(model, [{self.START: HEALING}])
        self.assertEqual(self.span(healed), [MARKS, CLOSE])
        plain = self.run_rows(model, None)
        self.assertEqual(self.span(plain), [TRUE, CLOSE], "without the constraint the model's best goes in")
        text = "".join(PIECES[i] for i in self.span(healed))
        self.assertEqual(sample.after_partial(text, HEALING.partial), "rks)")
        # Decided in the first step though the model is unsure of it (p ~ 0.01), by the model (not filled).
        self.assertEqual(int(healed.step[0, self.START]), 0)
        self.assertFalse(bool(healed.filled[0, self.START]))
        self.assertNotEqual(int(plain.step[0, self.START]), 0)

    def test_no_extending_token_in_the_list_falls_back_to_the_partial_in_the_first_step(self):
        model = Scripted(self.START, {TRUE: 10.0})
        result = self.run_rows(model, [{self.START: HEALING}], top_k=2)
        self.assertEqual(self.span(result), [MA, CLOSE])
        self.assertTrue(bool(result.filled[0, self.START]), "the sampler's commit, not the model's")
        self.assertEqual(int(result.step[0, self.START]), 0)
        # The fallback is not one of the step's scheduled commits: step 0 also commits the model's `)`.
        self.assertEqual(int((result.step[0] == 0).sum()), 2)
        order = sample.decoding_order(result.step[0, self.START:self.START + 8].tolist(),
                                      result.filled[0, self.START:self.START + 8].tolist())
        self.assertNotIn(0, order)

    def test_rows_are_healed_by_their_own_rules_and_sampled_rows_stay_inside_the_allowed_ids(self):
        model = Scripted(self.START, {TRUE: 10.0, MARKS: 6.0, MAX: 5.0})
        result = self.run_rows(model, [{self.START: HEALING}, {}, {self.START: HEALING}], rows=3, temperature=1.5)
        self.assertIn(int(result.canvas[0, self.START]), HEALING.ids)
        self.assertIn(int(result.canvas[2, self.START]), HEALING.ids)
        greedy = self.run_rows(model, [{}], rows=1)
        self.assertEqual(int(greedy.canvas[0, self.START]), TRUE)

    def test_heal_prefix_drops_the_partial_token_and_keeps_a_boundary(self):
        decode = lambda ids: "".join(PIECES[i] for i in ids)  # noqa: E731
        ids, healing = sample.heal_prefix([X, UNDERSCORE, MA], "x_ma", decode, PIECES)
        self.assertEqual(ids, [X, UNDERSCORE])
        self.assertEqual(healing, HEALING)
        ids, healing = sample.heal_prefix([X, CLOSE], "x)", decode, PIECES)
        self.assertEqual((ids, healing), ([X, CLOSE], None))


if __name__ == "__main__":
    unittest.main()
