"""Tests of the eval harness: metrics, AR-ness (on the fixture shared with the TypeScript engine), the diffusion
sampler against a mock model, the AR decoder, task cutting, the TypeScript syntax checker and an end-to-end run on a
random-weight model.

Run: python -m unittest tests.test_eval   (from models/recipe/)
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import math
import os
import random
import sys
import tempfile
import unittest

import torch


from scripts import data_tasks
from scripts import eval_heldout as ev
from unmask import metrics, paths, sample
from unmask import tasks as tasks_mod
from unmask.card import replace_section
from unmask.metrics import arness_profile, edit_similarity, exact_match, levenshtein
from unmask.onnx_cli import run_onnx_cli, setting_flags, setting_record
from unmask.report import markdown, run_label
from unmask.syntax import SyntaxBatch, python_parses
from unmask.tasks import GROUP_OF

ARNESS_CASES = os.path.join(paths.REPO_DIR, "test", "fixtures", "arness-cases.json")

# Ids of the mock vocabulary: the special ids as in the recipe's tokenizer, then ordinary tokens.
PAD, MASK, EOS, FILE = 0, 1, 2, 3
LANG = 7
V = 16


def reference_levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


class MockDenoiser:
    """Logits that depend on the position only: position p prefers token 8 + p % 8, more surely the further right it
    is (so confidence order is right to left). Records every canvas it sees."""

    def __init__(self, eos_at: int | None = None, sure: float = 0.5):
        self.calls = 0
        self.seen: list[torch.Tensor] = []
        self.eos_at = eos_at
        self.sure = sure

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(ids.clone())
        B, P = positions.shape
        logits = torch.zeros(B, P, V)
        preferred = 8 + positions % 8
        logits.scatter_(2, preferred.unsqueeze(-1), (self.sure * positions.float()).unsqueeze(-1))
        logits[..., MASK] = 50.0  # A denoiser that loves the mask token: the sampler must never commit it.
        logits[..., PAD] = 40.0  # Banned as well.
        if self.eos_at is not None:
            logits[..., EOS] = torch.where(positions == self.eos_at, torch.tensor(100.0), torch.tensor(-5.0))
        return logits


def canvas_with_span(context_left: int, span: int, context_right: int, batch: int = 1) -> torch.Tensor:
    row = [LANG] + [4] * context_left + [MASK] * span + [5] * context_right
    return torch.tensor([row] * batch, dtype=torch.long)


class ArnessMatchesTheSharedFixture(unittest.TestCase):
    def test_every_fixture_case_gives_the_expected_local_and_global_arness(self):
        with open(ARNESS_CASES, encoding="utf-8") as f:
            fixture = json.load(f)
        tolerance = fixture["conventions"]["tolerance"]
        self.assertGreater(len(fixture["cases"]), 5)
        for case in fixture["cases"]:
            with self.subTest(case=case["name"]):
                # The order comes from the steps the way the sampler's decoding_order reads them.
                positions = sorted(p for step in case["steps"] for p in step)
                width = max(positions, default=-1) + 1
                step_of = [-1] * width
                for s, step in enumerate(case["steps"]):
                    for p in step:
                        step_of[p] = s
                order = sample.decoding_order(step_of, [False] * width)
                self.assertEqual(order, case["order"])
                profile = arness_profile(order, fixture["maxK"])
                for kind in ("local", "global"):
                    for got, want in zip(profile[kind], case[kind]):
                        if want is None:
                            self.assertTrue(math.isnan(got), f"{kind}: expected undefined, got {got}")
                        else:
                            self.assertAlmostEqual(got, want, delta=tolerance * 1e3)

    def test_an_order_that_lists_a_position_twice_is_rejected(self):
        with self.assertRaises(ValueError):
            arness_profile([0, 1, 1])

    def test_end_of_span_fill_is_left_out_of_the_decoding_order(self):
        self.assertEqual(sample.decoding_order([1, 0, 2, 2, -1], [False, False, True, False, False]), [1, 0, 3])


class TextMetrics(unittest.TestCase):
    def test_levenshtein_agrees_with_the_textbook_dynamic_program(self):
        rng = random.Random(7)
        for _ in range(300):
            a = "".join(rng.choice("ab c\n") for _ in range(rng.randint(0, 12)))
            b = "".join(rng.choice("ab c\n") for _ in range(rng.randint(0, 12)))
            self.assertEqual(levenshtein(a, b), reference_levenshtein(a, b), (a, b))
        self.assertEqual(levenshtein("kitten", "sitting"), 3)
        self.assertEqual(levenshtein("ünïcödé", "unicode"), 4)

    def test_exact_match_ignores_trailing_whitespace_only(self):
        self.assertTrue(exact_match("    return x  \n", "    return x\n"))
        self.assertFalse(exact_match("return x\n", "    return x\n"))

    def test_edit_similarity_is_one_minus_distance_over_the_longer_length(self):
        self.assertEqual(edit_similarity("abcd", "abcd\n"), 1.0)
        self.assertAlmostEqual(edit_similarity("abcd", "abxd"), 0.75)
        self.assertEqual(edit_similarity("", "abc"), 0.0)
        self.assertEqual(edit_similarity("", " \n"), 1.0)


class CommitSchedule(unittest.TestCase):
    def test_counts_follow_masked_over_remaining_steps_with_at_least_one_and_all_at_the_end(self):
        # The TypeScript engine's tokensToCommit: max(1, floor(m / (N - k))), all at the last step.
        for masked, steps in [(8, 8), (8, 3), (5, 16), (64, 8), (1, 1), (17, 4)]:
            m, calls, counts = masked, 0, []
            for k in range(steps):
                if m == 0:
                    break
                n = int(sample.commit_counts(torch.tensor([m]), k, steps)[0])
                expected = m if k == steps - 1 else max(1, m // (steps - k))
                self.assertEqual(n, expected)
                counts.append(n)
                m -= n
                calls += 1
            self.assertEqual(m, 0)
            self.assertEqual(calls, min(steps, masked))
            self.assertTrue(all(c >= 1 for c in counts))


class DiffusionSampler(unittest.TestCase):
    def run_sampler(self, model, canvas, seed=0, **options):
        opts = sample.SamplerOptions(**{"steps": 8, "strategy": "confidence", "eos_fill": False,
                                        "eos_after_code": False, **options})
        generators = [torch.Generator().manual_seed(seed + r) for r in range(canvas.shape[0])]
        return sample.denoise(model, canvas, MASK, EOS, opts, generators, banned_ids=(PAD, FILE, LANG))

    def test_every_mask_is_resolved_and_the_context_is_untouched(self):
        canvas = canvas_with_span(5, 16, 4, batch=3)
        result = self.run_sampler(MockDenoiser(), canvas, steps=4)
        self.assertFalse(bool((result.canvas == MASK).any()))
        span = canvas == MASK
        self.assertTrue(torch.equal(result.canvas[~span], canvas[~span]))
        self.assertTrue(bool((result.step[span] >= 0).all()))
        self.assertTrue(bool((result.step[~span] == -1).all()))

    def test_it_makes_exactly_min_steps_masks_model_calls_without_threshold_or_fill(self):
        for steps, span in [(4, 16), (16, 16), (32, 8), (1, 8)]:
            model = MockDenoiser()
            result = self.run_sampler(model, canvas_with_span(3, span, 3), steps=steps)
            self.assertEqual(model.calls, min(steps, span))
            self.assertEqual(result.model_calls, min(steps, span))

    def test_committed_tokens_never_change(self):
        model = MockDenoiser()
        result = self.run_sampler(model, canvas_with_span(2, 16, 2, batch=2), steps=8, strategy="random",
                                  temperature=1.0)
        for before, after in zip(model.seen, model.seen[1:] + [result.canvas]):
            committed = before != MASK
            self.assertTrue(torch.equal(before[committed], after[committed]))

    def test_banned_ids_and_the_mask_are_never_committed(self):
        result = self.run_sampler(MockDenoiser(), canvas_with_span(2, 16, 2), steps=4, temperature=2.0)
        span = result.step >= 0
        for banned in (MASK, PAD, FILE, LANG):
            self.assertFalse(bool((result.canvas[span] == banned).any()))

    def test_temperature_zero_is_deterministic_whatever_the_seed(self):
        canvas = canvas_with_span(3, 16, 3)
        a = self.run_sampler(MockDenoiser(), canvas, strategy="margin", seed=1)
        b = self.run_sampler(MockDenoiser(), canvas, strategy="margin", seed=2)
        self.assertTrue(torch.equal(a.canvas, b.canvas))
        self.assertTrue(torch.equal(a.step, b.step))

    def test_the_same_seed_reproduces_a_sampled_run_and_another_seed_does_not(self):
        canvas = canvas_with_span(3, 32, 3)
        a = self.run_sampler(MockDenoiser(sure=0.01), canvas, strategy="random", temperature=1.0, seed=5)
        b = self.run_sampler(MockDenoiser(sure=0.01), canvas, strategy="random", temperature=1.0, seed=5)
        c = self.run_sampler(MockDenoiser(sure=0.01), canvas, strategy="random", temperature=1.0, seed=6)
        self.assertTrue(torch.equal(a.canvas, b.canvas) and torch.equal(a.step, b.step))
        self.assertFalse(torch.equal(a.canvas, c.canvas) and torch.equal(a.step, c.step))

    def test_more_steps_than_masks_decode_exactly_like_as_many_steps_as_masks(self):
        canvas = canvas_with_span(3, 16, 3, batch=2)
        for strategy in ("random", "confidence"):
            base = self.run_sampler(MockDenoiser(sure=0.05), canvas, strategy=strategy, temperature=1.0, steps=16)
            more = self.run_sampler(MockDenoiser(sure=0.05), canvas, strategy=strategy, temperature=1.0, steps=128)
            self.assertTrue(torch.equal(base.canvas, more.canvas) and torch.equal(base.step, more.step))

    def test_a_row_decodes_the_same_alone_or_in_a_batch(self):
        pair = torch.cat([canvas_with_span(3, 16, 3), canvas_with_span(3, 16, 3)])
        together = self.run_sampler(MockDenoiser(sure=0.05), pair, strategy="random", temperature=1.0, seed=3)
        opts = sample.SamplerOptions(steps=8, strategy="random", temperature=1.0, eos_fill=False, eos_after_code=False)
        alone = sample.denoise(MockDenoiser(sure=0.05), pair[1:], MASK, EOS, opts, [torch.Generator().manual_seed(4)],
                               banned_ids=(PAD, FILE, LANG))
        self.assertTrue(torch.equal(together.canvas[1:], alone.canvas))
        self.assertTrue(torch.equal(together.step[1:], alone.step))

    def test_confidence_commits_the_surest_positions_first(self):
        # The mock is surer the further right a position is: one token per step goes right to left.
        canvas = canvas_with_span(2, 8, 0)
        result = self.run_sampler(MockDenoiser(), canvas, steps=8)
        span_steps = result.step[0, 3:11].tolist()
        self.assertEqual(span_steps, [7, 6, 5, 4, 3, 2, 1, 0])
        self.assertEqual(result.canvas[0, 3:11].tolist(), [8 + p % 8 for p in range(3, 11)])

    def test_a_threshold_commits_every_sure_position_at_once(self):
        model = MockDenoiser(sure=10.0)  # Every position's token has probability ~1 (positions >= 3).
        result = self.run_sampler(model, canvas_with_span(2, 16, 2), steps=16, threshold=0.9)
        self.assertEqual(model.calls, 1)
        self.assertFalse(bool((result.canvas == MASK).any()))

    def test_end_of_span_fill_closes_the_rest_of_the_span_in_the_same_step(self):
        # Position 6 (span offset 3) is surest about end-of-span; with fill, offsets 4.. become end-of-span at once.
        model = MockDenoiser(eos_at=6)
        result = self.run_sampler(model, canvas_with_span(2, 8, 2), steps=8, eos_fill=True)
        span = result.canvas[0, 3:11].tolist()
        self.assertEqual(span[3:], [EOS] * 5)
        self.assertEqual(result.filled[0, 3:11].tolist(), [False] * 4 + [True] * 4)
        self.assertEqual(int(result.step[0, 6]), 0)
        self.assertTrue(bool((result.step[0, 7:11] == 0).all()))
        self.assertEqual(model.calls, 4)  # One step for the eos and its fill, then one per remaining position.
        self.assertEqual(sample.trim_at_eos(span, EOS), span[:3])

    def test_end_of_span_after_code_grows_the_end_from_committed_code(self):
        # The mock is surest of end-of-span at position 6 (span offset 3): with the rule it waits for offset 2.
        for steps in (2, 4, 8):
            model = MockDenoiser(eos_at=6)
            result = self.run_sampler(model, canvas_with_span(2, 8, 2), steps=steps, eos_fill=True,
                                      eos_after_code=True)
            span, step = result.canvas[0, 3:11].tolist(), result.step[0, 3:11].tolist()
            self.assertNotEqual(span[0], EOS, "a hole never starts with end-of-span")
            for i in range(1, 8):
                if span[i] == EOS and not bool(result.filled[0, 3 + i]) and step[i] < steps - 1:
                    self.assertLess(step[i - 1], step[i], "an end-of-span is committed after its left neighbour")
            self.assertLessEqual(model.calls, steps)

    def test_end_of_span_after_code_never_leaves_a_hole_empty(self):
        class AlwaysEnd:
            calls = 0

            def __call__(self, ids, positions, span):
                self.calls += 1
                logits = torch.zeros(*positions.shape, V)
                logits[..., EOS] = 20.0
                return logits
        for rule, first_is_eos in ((True, False), (False, True)):
            result = self.run_sampler(AlwaysEnd(), canvas_with_span(2, 8, 2), eos_fill=True, eos_after_code=rule)
            self.assertEqual(result.canvas[0, 3].item() == EOS, first_is_eos)

    def test_rows_with_different_mask_counts_are_decoded_independently(self):
        canvas = torch.tensor([[LANG, 4, MASK, MASK, MASK, MASK, 5], [LANG, MASK, MASK, 4, 4, 4, 5]])
        result = self.run_sampler(MockDenoiser(), canvas, steps=4)
        self.assertFalse(bool((result.canvas == MASK).any()))
        self.assertEqual(result.canvas[1, 3:].tolist(), [4, 4, 4, 5])

    def test_hole_ids_number_each_run_of_span_positions(self):
        span = torch.tensor([[False, True, True, False, True, False]])
        self.assertEqual(sample.hole_ids(span).tolist(), [[-1, 0, 0, -1, 1, -1]])


class KBestSampler(unittest.TestCase):
    """The per-position rule of models/README.md ("K-best head"), shared with the engine's choose-token.ts."""

    BANNED = (PAD, MASK, FILE, LANG)

    def lists(self, rows, k=4):
        """rows: [P][V] logits of one canvas row -> its K-best lists [1, P, K] and log_z [1, P]."""
        return sample.kbest(torch.tensor([rows], dtype=torch.float32), k, self.BANNED)

    def choose(self, top_logits, top_ids, log_z, seed=0, tail=None, **options):
        opts = sample.SamplerOptions(**{"steps": 1, **options})
        valid = torch.ones(top_ids.shape[:2], dtype=torch.bool)
        return sample.choose_tokens(top_logits, top_ids, log_z, valid, opts, [torch.Generator().manual_seed(seed)], tail)

    def test_kbest_lists_the_largest_allowed_logits_with_ties_to_the_lower_id(self):
        logits = torch.zeros(V)
        logits[[MASK, PAD]] = 9.0  # banned, however likely
        logits[[12, 5, 9]] = torch.tensor([3.0, 3.0, 1.0])
        top, ids, log_z = self.lists([logits.tolist()], k=4)
        self.assertEqual(ids[0, 0].tolist(), [5, 12, 9, 2])  # 5 before 12 at equal logits; then 2 (EOS), the lowest 0
        self.assertEqual(top[0, 0].tolist(), [3.0, 3.0, 1.0, 0.0])
        allowed = [i for i in range(V) if i not in self.BANNED]
        self.assertAlmostEqual(float(log_z[0, 0]), float(logits[allowed].logsumexp(0)), places=5)
        self.assertEqual(ids.dtype, torch.long)

    def test_kbest_of_more_entries_than_allowed_ids_ends_in_minus_infinity(self):
        top, ids, _ = self.lists([[0.0] * V], k=V)
        self.assertEqual(int(torch.isinf(top).sum()), len(self.BANNED))
        self.assertEqual(set(ids[0, 0, -len(self.BANNED):].tolist()), set(self.BANNED))

    def test_greedy_takes_the_first_entry_and_scores_with_the_models_own_probabilities(self):
        logits = [0.0] * V
        logits[8], logits[9], logits[10] = 4.0, 3.0, 2.5
        top, ids, log_z = self.lists([logits], k=3)
        z = float(log_z[0, 0])
        p = [math.exp(v - z) for v in (4.0, 3.0, 2.5)]
        # The entropy counts the unlisted mass as spread evenly over the allowed ids outside the list.
        rest, n = 1 - sum(p), V - len(self.BANNED) - 3
        tail = sample.entropy_tail(top, log_z, V - len(self.BANNED))
        for strategy, want in (("confidence", p[0]), ("margin", p[0] - p[1]),
                               ("entropy", sum(q * math.log(q) for q in p) + rest * math.log(rest / n))):
            tokens, prob, score = self.choose(top, ids, log_z, strategy=strategy, tail=tail)
            self.assertEqual(int(tokens[0, 0]), 8)
            self.assertAlmostEqual(float(prob[0, 0]), p[0], places=6)
            self.assertAlmostEqual(float(score[0, 0]), want, places=5, msg=strategy)
        # Every allowed id listed: no tail, the exact entropy.
        top, ids, log_z = self.lists([logits], k=V)
        self.assertAlmostEqual(float(sample.entropy_tail(top, log_z, V - len(self.BANNED))[0, 0]), 0.0, places=6)

    def test_a_list_of_one_entry_has_margin_p0(self):
        logits = [0.0] * V
        logits[8] = 2.0
        top, ids, log_z = self.lists([logits], k=1)
        _, prob, score = self.choose(top, ids, log_z, strategy="margin")
        self.assertAlmostEqual(float(score[0, 0]), float(prob[0, 0]), places=6)

    def test_end_of_span_is_dropped_from_the_list_at_a_holes_first_position_without_renormalising(self):
        logits = [0.0] * V
        logits[EOS], logits[8], logits[9] = 5.0, 3.0, 1.0
        top, ids, log_z = self.lists([logits, logits], k=3)
        positions = torch.tensor([[3, 4]])
        hole_of = torch.tensor([[-1, -1, -1, 0, 0, -1]])  # position 3 starts the hole, 4 follows it
        top = sample.ban_eos_first(top, ids, positions, hole_of, EOS)
        self.assertTrue(math.isinf(float(top[0, 0, 0])) and float(top[0, 1, 0]) == 5.0)
        tokens, prob, score = self.choose(top, ids, log_z, strategy="margin")
        self.assertEqual(tokens[0].tolist(), [8, EOS])
        z = float(log_z[0, 0])
        self.assertAlmostEqual(float(prob[0, 0]), math.exp(3.0 - z), places=6)  # log_z still counts end-of-span
        self.assertAlmostEqual(float(score[0, 0]), math.exp(3.0 - z) - math.exp(1.0 - z), places=6)

    def test_sampling_weighs_the_list_by_tempered_logits_and_scores_with_q(self):
        logits = [0.0] * V
        logits[8], logits[9], logits[10] = 2.0, 1.0, 0.5
        top, ids, log_z = self.lists([logits], k=3)
        T = 0.5
        w = [math.exp((v - 2.0) / T) for v in (2.0, 1.0, 0.5)]
        q = {8: w[0] / sum(w), 9: w[1] / sum(w), 10: w[2] / sum(w)}
        seen = set()
        for seed in range(40):
            tokens, prob, score = self.choose(top, ids, log_z, seed=seed, temperature=T, strategy="confidence")
            token = int(tokens[0, 0])
            seen.add(token)
            self.assertAlmostEqual(float(prob[0, 0]), q[token], places=6)
            self.assertAlmostEqual(float(score[0, 0]), q[token], places=6)
            _, _, margin = self.choose(top, ids, log_z, seed=seed, temperature=T, strategy="margin")
            self.assertAlmostEqual(float(margin[0, 0]), q[8] - q[9], places=6)
            _, _, entropy = self.choose(top, ids, log_z, seed=seed, temperature=T, strategy="entropy")
            self.assertAlmostEqual(float(entropy[0, 0]), sum(v * math.log(v) for v in q.values()), places=6)
        self.assertEqual(seen, {8, 9, 10})  # every entry of the list is drawn, and nothing else

    def test_top_p_keeps_the_shortest_prefix_that_reaches_it(self):
        logits = [0.0] * V
        logits[8], logits[9], logits[10] = 2.0, 1.0, 0.5
        top, ids, log_z = self.lists([logits], k=3)
        w = [1.0, math.exp(-1.0), math.exp(-1.5)]
        share = w[0] / sum(w)  # about 0.63: top_p just above it needs two entries, just below it one
        for top_p, nucleus in ((share - 1e-3, [8]), (share + 1e-3, [8, 9])):
            seen = set()
            for seed in range(40):
                tokens, prob, score = self.choose(top, ids, log_z, seed=seed, temperature=1.0, top_p=top_p,
                                                  strategy="margin")
                seen.add(int(tokens[0, 0]))
                want = 1.0 if len(nucleus) == 1 else (w[0] - w[1]) / (w[0] + w[1])
                self.assertAlmostEqual(float(score[0, 0]), want, places=6)
            self.assertEqual(seen, set(nucleus))

    def test_sampling_never_leaves_the_k_entries(self):
        top, ids, log_z = self.lists([[0.0] * V], k=2)  # a flat distribution: only ids 2 and 4 are listed
        drawn = {int(self.choose(top, ids, log_z, seed=s, temperature=5.0)[0][0, 0]) for s in range(30)}
        self.assertEqual(drawn, {EOS, 4})

    def test_a_position_with_nothing_to_commit_is_an_error(self):
        top, ids, log_z = self.lists([[0.0] * V], k=1)  # the list holds end-of-span only
        top = sample.ban_eos_first(top, ids, torch.tensor([[0]]), torch.tensor([[0]]), EOS)
        with self.assertRaises(RuntimeError):
            self.choose(top, ids, log_z)

    def test_top_k_reaches_the_sampler_through_its_options(self):
        # A nearly flat model sampled at temperature 1: with K = 1 every seed fills the same tokens, with K = 64
        # the seeds disagree.
        canvas = canvas_with_span(2, 16, 2)
        fills = {k: {tuple(self.run_sampled(canvas, k, seed).canvas[0].tolist()) for seed in range(3)} for k in (1, 64)}
        self.assertEqual(len(fills[1]), 1)
        self.assertGreater(len(fills[64]), 1)
        with self.assertRaises(ValueError):
            sample.SamplerOptions(steps=1, top_k=0)

    @staticmethod
    def run_sampled(canvas, top_k, seed):
        opts = sample.SamplerOptions(steps=4, strategy="random", temperature=1.0, top_k=top_k)
        return sample.denoise(MockDenoiser(sure=0.01), canvas, MASK, EOS, opts, [torch.Generator().manual_seed(seed)],
                              banned_ids=(PAD, FILE, LANG))


class GreedyAR(unittest.TestCase):
    @staticmethod
    def counting_model(ids, last):
        """Next token = the token at `last` + 1, except that 12 comes out as end-of-span."""
        nxt = ids[torch.arange(ids.shape[0]), last] + 1
        logits = torch.zeros(ids.shape[0], V)
        logits[torch.arange(ids.shape[0]), torch.where(nxt == 12, torch.tensor(EOS), nxt % V)] = 1.0
        return logits

    def test_rows_of_different_lengths_stop_at_end_of_span_or_their_own_limit(self):
        out, calls = sample.greedy_ar(self.counting_model, [[9], [3, 4], [5]], EOS, [5, 5, 2], PAD)
        self.assertEqual(out, [[10, 11], [5, 6, 7, 8, 9], [6, 7]])
        self.assertEqual(calls, [3, 5, 2])  # The first row's third call wrote its end-of-span.

    def test_a_row_decodes_the_same_alone_or_next_to_a_longer_one(self):
        def model(ids, last):  # Depends on every token up to `last`: padding to the right must not matter.
            total = torch.stack([ids[b, :last[b] + 1].sum() for b in range(ids.shape[0])])
            logits = torch.zeros(ids.shape[0], V)
            logits[torch.arange(ids.shape[0]), 4 + total % 8] = 1.0
            return logits

        alone, _ = sample.greedy_ar(model, [[4, 5]], EOS, [6], PAD)
        together, _ = sample.greedy_ar(model, [[4, 5], [6, 7, 8, 9, 10]], EOS, [6, 3], PAD)
        self.assertEqual(together[0], alone[0])


class SyntaxChecks(unittest.TestCase):
    def test_python_files_are_parsed_with_ast(self):
        self.assertTrue(python_parses("def f(x):\n    return x\n"))
        self.assertFalse(python_parses("def f(x):\nreturn x\n"))
        self.assertFalse(python_parses("x = '\0'\0"))

    def test_typescript_and_javascript_go_through_the_typescript_parser_in_one_process(self):
        batch = SyntaxBatch()
        keys = [
            batch.add("typescript", "a.ts", "const a: number = 1;\n"),
            batch.add("typescript", "a.ts", "const a: number = ;\n"),
            batch.add("javascript", "a.js", "const a: number = 1;\n"),  # Type annotations are TS-only syntax.
            batch.add("typescript", "a.tsx", "const x = <div>{a}</div>;\n"),
            batch.add("python", "a.py", "x = (\n"),
        ]
        results = batch.run()
        self.assertEqual([results[k] for k in keys], [True, False, False, True, False])


class SharedMetrics(unittest.TestCase):
    """metrics.py: the torch-free module eval_heldout.py, eval_humaneval.py and rewards.py share."""

    def test_the_metrics_module_loads_without_torch(self):
        # The scoring side stays light: cutting tasks, syntax checks, rewards, the CLI runner, HumanEval.
        code = ("import sys; sys.modules['torch'] = None; from unmask import metrics, onnx_cli, paths, rewards, "
                "syntax, tasks; from scripts import data_tasks, eval_calibrate, eval_humaneval; "
                "print(metrics.edit_similarity('ab', 'ab'))")
        import subprocess

        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.RECIPE_DIR)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "1.0")

    def test_the_eval_and_the_rewards_score_with_the_shared_metrics(self):
        from unmask import rewards

        for name in ("exact_match", "edit_similarity", "first_line_exact", "degenerate", "arness_profile", "nanmean"):
            self.assertIs(getattr(ev, name), getattr(metrics, name))
        for name in ("exact_match", "edit_similarity"):
            self.assertIs(getattr(rewards, name), getattr(metrics, name))

    def test_first_line_exact_compares_the_first_lines_only(self):
        from unmask import metrics

        self.assertTrue(metrics.first_line_exact("    x = 1  \n    y = 3\n", "    x = 1\n    y = 2\n"))
        self.assertTrue(metrics.first_line_exact("    x = 1", "    x = 1\n"))
        self.assertFalse(metrics.first_line_exact("x = 1\n", "    x = 1\n"))
        self.assertFalse(metrics.first_line_exact("", "x = 1\n"))
        self.assertFalse(metrics.first_line_exact("\nx = 1", "x = 1\n"))
        self.assertTrue(metrics.first_line_exact("\n", "\n    pass\n"))

    def test_degenerate_repetition_flags_loops_not_code(self):
        from unmask import metrics

        for text in ("self = self = self =", ", True, True, , 0,", "foo foo foo foo foo foo", "# # # # # #",
                     "x.x.x.x.x.x.x"):
            self.assertTrue(metrics.degenerate(text), text)
        for text in ("self.a = a\nself.b = b\nself.c = c", "f(a, b, c, d)", "return x", "", "))))))",
                     "foo(bar(baz(qux()))))", 'x = """"""', "a.b.c.d.e", "for i in range(len(items)):"):
            self.assertFalse(metrics.degenerate(text), text)
        coverage, gram = metrics.repetition("self = self = self =")
        self.assertEqual((coverage, gram), (1.0, ("self", "=")))

    def test_completion_metrics_bundle_every_text_metric(self):
        from unmask import metrics

        row = metrics.completion_metrics("  return x\n", "  return x\n  y\n")
        self.assertEqual(row, {"exact": False, "first_line_exact": True, "edit_sim": row["edit_sim"], "empty": False,
                               "degenerate": False})
        self.assertTrue(metrics.completion_metrics(" \n", "x")["empty"])


class CopyBaseline(unittest.TestCase):
    def test_the_longest_recurring_tail_wins_and_its_line_is_copied(self):
        from unmask import metrics

        prefix = "a = compute(x)\nb = compute(y)\nprint(a)\nc = comp"
        # "= comp" recurs twice before the cursor; the nearest occurrence is taken.
        self.assertEqual(metrics.copy_from_file(prefix, "\n"), "ute(y)\n")
        length, start = metrics.longest_repeated_tail(prefix, prefix + "\n")
        self.assertEqual(prefix[start:start + length], " = comp")

    def test_an_occurrence_after_the_cursor_is_used_when_none_precedes(self):
        from unmask import metrics

        self.assertEqual(metrics.copy_from_file("x = 1\nvalue = fo", "\nvalue = foo(bar)\n"), "o(bar)\n")

    def test_nothing_recurs_gives_an_empty_completion(self):
        from unmask import metrics

        self.assertEqual(metrics.copy_from_file("abc", "xyz"), "")
        self.assertEqual(metrics.copy_from_file("", "xyz"), "")

    def test_the_tail_itself_does_not_count_as_an_occurrence(self):
        from unmask import metrics

        self.assertEqual(metrics.longest_repeated_tail("xyz", "xyz"), (0, -1))
        # Overlapping occurrences count: in "aaaa" the tail "aaa" also starts at 0.
        self.assertEqual(metrics.longest_repeated_tail("aaaa", "aaaa"), (3, 0))

    def test_a_single_line_task_copies_the_next_line(self):
        from unmask import metrics

        prefix = "def f(x):\n    y = x + 1\n    return y\n\ndef g(x):\n"
        self.assertEqual(metrics.copy_from_file(prefix, "    return y\n", "single-line"), "    y = x + 1\n")

    def test_multi_line_copies_until_the_copy_meets_the_suffix(self):
        from unmask import metrics

        prefix = "def f(x):\n    y = x + 1\n    z = y * 2\n    w = z - 3\n    return w\n\ndef g(x):\n"
        # The suffix starts with "    return w": three copied lines bridge to it.
        self.assertEqual(metrics.copy_from_file(prefix, "    return w\n", "multi-line"),
                         "    y = x + 1\n    z = y * 2\n    w = z - 3\n")
        # No bridge within four lines: two lines.
        self.assertEqual(metrics.copy_from_file(prefix, "    print(q)\n", "multi-line"),
                         "    y = x + 1\n    z = y * 2\n")
        # The file ends: what is left (the rest of the line after "ab" is empty, then the last line).
        self.assertEqual(metrics.copy_from_file("ab\nab", "", "multi-line"), "\nab")

    def test_eval_scores_the_copy_rows_on_the_whole_file_or_the_models_context(self):
        task = {"id": "t", "prefix": "y = fo", "suffix": "\n", "language": "python", "kind": "rest-of-line",
                "target": "o(2)\n", "file": "x = foo(1)\ny = foo(2)\n", "start": 17, "end": 22}
        self.assertEqual(ev.run_copy([task], "file")[0][0]["completion"], "o(1)\n")
        self.assertEqual(ev.run_copy([task], "task")[0][0]["completion"], "")


class Sandbox(unittest.TestCase):
    """eval_humaneval.py's sandbox: a passing, a failing, a timing-out and a memory-hungry program."""

    @classmethod
    def setUpClass(cls):
        from scripts import eval_humaneval

        cls.he = eval_humaneval

    def test_a_passing_program_passes(self):
        result = self.he.run_sandboxed("assert sum(range(4)) == 6\nprint('ok')\n", timeout=20)
        self.assertEqual(result["status"], "passed", result)

    def test_a_failing_program_fails_with_its_error(self):
        result = self.he.run_sandboxed("def f():\n    return 1\nassert f() == 2, 'wrong'\n", timeout=20)
        self.assertEqual(result["status"], "failed")
        self.assertIn("AssertionError: wrong", result["detail"])

    def test_a_program_that_loops_forever_is_stopped_at_the_timeout(self):
        t0 = __import__("time").time()
        result = self.he.run_sandboxed("while True:\n    pass\n", timeout=1.5)
        self.assertEqual(result["status"], "timed out")
        self.assertLess(__import__("time").time() - t0, 15)

    def test_a_program_over_the_memory_limit_fails(self):
        result = self.he.run_sandboxed("x = bytearray(1024 * 1024 * 1024)\n", timeout=20, memory_mb=256)
        self.assertEqual(result["status"], "failed")
        self.assertIn("MemoryError", result["detail"])

    def test_the_program_sees_no_network_where_unshare_works(self):
        if not self.he.network_wrapper():
            self.skipTest("no working unshare -n here (the report says so)")
        code = "import socket\nassert [n for _, n in socket.if_nameindex()] == ['lo'], socket.if_nameindex()\n"
        self.assertEqual(self.he.run_sandboxed(code, timeout=20)["status"], "passed")

    def test_the_check_program_and_tasks_follow_the_upstream_harness(self):
        problem = {"task_id": "SingleLineInfilling/HumanEval/0/L1", "entry_point": "add",
                   "prompt": "def add(a, b):\n", "suffix": "", "canonical_solution": "    return a + b\n",
                   "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n"}
        task = self.he.to_task(problem, "single-line")
        self.assertEqual((task["prefix"], task["suffix"], task["language"]), ("def add(a, b):\n", "", "python"))
        source = self.he.program(task, task["target"])
        self.assertTrue(source.endswith("check(add)\n"))
        self.assertEqual(self.he.run_sandboxed(source, timeout=20)["status"], "passed")
        self.assertEqual(self.he.run_sandboxed(self.he.program(task, "    return a - b\n"), timeout=20)["status"],
                         "failed")
        self.assertEqual([p["i"] for p in self.he.subsample([{"i": i} for i in range(12)], 5)], [0, 5, 10])

    def test_the_overlap_check_finds_a_copied_solution(self):
        problems = self.he.problems_for_overlap()
        self.assertEqual(len(problems), 164)
        victim = next(p for p in problems if len(metrics.code_tokens(p["solution"])) > 40)
        with tempfile.TemporaryDirectory() as tmp:
            corpus = os.path.join(tmp, "train.jsonl.gz")
            with gzip.open(corpus, "wt") as f:
                f.write(json.dumps({"package": "p", "path": "copied.py", "text": "x = 1\n" + victim["solution"]})
                        + "\n")
                f.write(json.dumps({"package": "p", "path": "clean.py", "text": "print('hello world')\n"}) + "\n")
            report = self.he.overlap([corpus], 20)
        self.assertIn(victim["problem"], report["solution_overlap"])  # (Similar problems may share the run.)
        self.assertTrue(victim["problem"].startswith("HumanEval/"))
        self.assertTrue(all(e["first"] == ["p:copied.py"] for e in report["examples"].values()))
        self.assertEqual(report["corpus_files"], 2)


class TaskCutting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.tokenizer_path = make_tokenizer(cls.tmp.name)
        cls.counter = tasks_mod.TokenCounter(cls.tokenizer_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_tasks_are_deterministic_balanced_and_fit_their_budgets(self):
        records = sample_records()
        first = tasks_mod.build_tasks(records, self.counter, per_cell=3, seed=1, max_span_tokens=24,
                                      context_tokens=40)
        again = tasks_mod.build_tasks(records, self.counter, per_cell=3, seed=1, max_span_tokens=24,
                                      context_tokens=40)
        self.assertEqual(first, again)
        other = tasks_mod.build_tasks(records, self.counter, per_cell=3, seed=2, max_span_tokens=24,
                                      context_tokens=40)
        self.assertNotEqual([t["target"] for t in first], [t["target"] for t in other])
        cells: dict = {}
        for task in first:
            cell = (GROUP_OF[task["language"]], task["kind"])
            cells[cell] = cells.get(cell, 0) + 1
            text = task["file"]
            self.assertEqual(text[task["start"]:task["end"]], task["target"])
            self.assertTrue(text[:task["start"]].endswith(task["prefix"]))
            self.assertTrue(text[task["end"]:].startswith(task["suffix"]))
            self.assertLessEqual(self.counter.count(task["target"]), 24)
            self.assertLessEqual(self.counter.count(task["prefix"]) + self.counter.count(task["suffix"]), 40)
            self.assertTrue(task["target"].strip())
            self.assertTrue(task["end"] == len(text) or text[task["end"] - 1] == "\n")
            if task["kind"] == "rest-of-line":
                line_start = text.rfind("\n", 0, task["start"]) + 1
                self.assertTrue(text[line_start:task["start"]].strip(), "text of the line before the cursor")
                self.assertNotIn("\n", task["target"].rstrip("\n"))
                self.assertNotIn(task["start"], self.counter.boundaries(text), "the cut is inside a token")
            else:
                self.assertTrue(task["start"] == 0 or text[task["start"] - 1] == "\n")
            if task["kind"] == "multi-line":
                self.assertGreaterEqual(sum(1 for line in task["target"].split("\n") if line.strip()), 2)
                self.assertLessEqual(task["target"].rstrip("\n").count("\n") + 1, 4)
        self.assertEqual(sorted(cells), sorted((g, k) for g in tasks_mod.GROUPS for k in tasks_mod.KINDS))
        self.assertEqual(sorted(cells.values()), [3] * 6)

    def test_token_boundaries_are_where_the_tokens_of_the_file_meet(self):
        text = "def f(value):\n    return value + ü * 2\n"
        boundaries = self.counter.boundaries(text)
        enc = self.counter.encode(text)
        # Decoding the tokens before each boundary gives exactly the text before it.
        ends, byte = [], 0
        for token in enc.tokens:
            byte += len(token)
            ends.append(byte)
        data = text.encode("utf-8")
        for b in boundaries:
            self.assertIn(len(text[:b].encode("utf-8")), [0] + ends)
        self.assertIn(0, boundaries)
        self.assertIn(len(text), boundaries)
        self.assertEqual(len(data), ends[-1])
        self.assertLess(len(boundaries), len(text) + 1, "some positions are inside tokens")

    def test_rest_of_line_cuts_are_mid_token_with_text_on_both_sides(self):
        text = "x = 1\n    result = compute(alpha, beta)\n"
        start, end = 6, len(text)
        boundaries = self.counter.boundaries(text)
        cuts = tasks_mod.rest_of_line_cuts(text, start, end, boundaries)
        self.assertTrue(cuts)
        for c in cuts:
            self.assertNotIn(c, boundaries)
            self.assertGreater(c, start + 4, "after the first non-blank character")
            self.assertLess(c, len(text.rstrip()), "before the last non-blank character")
        # Every position is a boundary: no cut.
        self.assertEqual(tasks_mod.rest_of_line_cuts(text, start, end, set(range(len(text) + 1))), [])
        # A blank line: no cut.
        self.assertEqual(tasks_mod.rest_of_line_cuts("a\n   \nb", 2, 6, set()), [])
        rng = random.Random(3)
        hole = tasks_mod.cut_rest_of_line(text, rng, self.counter, 64)
        self.assertIsNotNone(hole)
        self.assertEqual(hole.end, text.index("\n", hole.start) + 1, "the hole ends with its line")
        self.assertNotIn(hole.start, boundaries)

    def test_more_passes_over_the_files_fill_a_cell_that_one_pass_cannot(self):
        records = sample_records()[:3]  # One file per language: one task per kind in a pass.
        more = tasks_mod.build_tasks(records, self.counter, per_cell=2, seed=0, max_span_tokens=24, context_tokens=40,
                                     kinds=("single-line",), max_per_file=3)
        with contextlib.redirect_stderr(io.StringIO()):
            one = tasks_mod.build_tasks(records, self.counter, per_cell=2, seed=0, max_span_tokens=24,
                                        context_tokens=40, kinds=("single-line",), max_per_file=1)
        self.assertEqual(len(one), 3)  # Python: its one file once; TypeScript/JavaScript: two files.
        self.assertEqual(len(more), 4)
        holes = [(t["path"], t["start"]) for t in more]
        self.assertEqual(len(set(holes)), len(holes), "no hole is taken twice")

    def test_a_second_set_cut_around_the_first_takes_none_of_its_holes(self):
        # The gate's calibration set (eval_calibrate.py): another seed, no hole overlapping a reported task.
        records = sample_records()
        first = tasks_mod.build_tasks(records, self.counter, per_cell=2, seed=0, max_span_tokens=24,
                                      context_tokens=40, max_per_file=3)
        exclude = tasks_mod.excluded_holes(first)
        with contextlib.redirect_stderr(io.StringIO()):
            second = tasks_mod.build_tasks(records, self.counter, per_cell=2, seed=1, max_span_tokens=24,
                                           context_tokens=40, max_per_file=3, exclude=exclude, id_prefix="cal-")
        self.assertTrue(second)
        self.assertTrue(all(t["id"].startswith("cal-") for t in second))
        for task in second:
            self.assertFalse(tasks_mod.overlaps_any(task, tasks_mod.Hole(task["start"], task["end"]), exclude))
            for other in first:
                if (other["package"], other["path"]) == (task["package"], task["path"]):
                    self.assertTrue(task["end"] <= other["start"] or other["end"] <= task["start"])
        self.assertTrue(tasks_mod.overlaps_any(first[0], tasks_mod.Hole(first[0]["start"], first[0]["start"] + 1),
                                               exclude), "the check itself sees an overlap")

    def test_rewindowing_keeps_the_holes_and_reads_more_context(self):
        # data_tasks --rewindow: a longer window's model is measured on the same holes with the context it can read.
        first = tasks_mod.build_tasks(sample_records(), self.counter, per_cell=2, seed=0, max_span_tokens=24,
                                      context_tokens=20)
        same = [tasks_mod.rewindow_task(t, self.counter, 20, 0.75) for t in first]
        self.assertEqual(same, first, "the budget a task was cut with gives it back unchanged")
        wider = [tasks_mod.rewindow_task(t, self.counter, 80, 0.75) for t in first]
        grew = 0
        for old, new in zip(first, wider):
            self.assertEqual({k: v for k, v in new.items() if k not in ("prefix", "suffix")},
                             {k: v for k, v in old.items() if k not in ("prefix", "suffix")})
            self.assertTrue(new["prefix"].endswith(old["prefix"]) and new["suffix"].startswith(old["suffix"]))
            self.assertTrue(new["file"][:new["start"]].endswith(new["prefix"]))
            self.assertTrue(new["file"][new["end"]:].startswith(new["suffix"]))
            self.assertLessEqual(self.counter.count(new["prefix"]) + self.counter.count(new["suffix"]), 80)
            grew += len(new["prefix"]) + len(new["suffix"]) > len(old["prefix"]) + len(old["suffix"])
        self.assertGreater(grew, len(first) // 2)
        # An RL pool's own keys (split, tests) survive the rewrite; the whole file stays last.
        self.assertEqual(list(tasks_mod.key_order({"split": "train", **first[0]}))[-2:], ["split", "file"])
        moved = {**first[0], "start": first[0]["start"] + 1}
        with self.assertRaisesRegex(ValueError, "is not the target"):
            tasks_mod.rewindow_task(moved, self.counter, 80, 0.75)

    def test_files_are_taken_one_package_at_a_time(self):
        files = [{"package": "big"} for _ in range(6)] + [{"package": "small"}, {"package": "tiny"}]
        order = tasks_mod.package_balanced_order(files, random.Random(0))
        self.assertEqual(sorted(order), list(range(8)))
        self.assertEqual({files[i]["package"] for i in order[:3]}, {"big", "small", "tiny"})

    def test_the_context_budget_favours_the_prefix_and_passes_on_what_one_side_leaves(self):
        self.assertEqual(tasks_mod.split_context(1000, 1000, 100, 0.75), (75, 25))
        self.assertEqual(tasks_mod.split_context(10, 1000, 100, 0.75), (10, 90))
        self.assertEqual(tasks_mod.split_context(1000, 5, 100, 0.75), (95, 5))


class ModelCard(unittest.TestCase):
    def test_the_evaluation_section_is_replaced_and_the_rest_of_the_card_kept(self):
        with tempfile.TemporaryDirectory() as tmp:
            card = os.path.join(tmp, "MODEL_CARD.md")
            with open(card, "w") as f:
                f.write("# Model\n\nintro\n\n## Evaluation\n\nold table\n\n## Limits\n\nnone\n")
            replace_section(card, "## Evaluation", "## Evaluation\n\nnew table\n")
            with open(card) as f:
                text = f.read()
            self.assertEqual(text, "# Model\n\nintro\n\n## Evaluation\n\nnew table\n\n## Limits\n\nnone\n")
            os.remove(card)
            with open(card, "w") as f:
                f.write("# Model\n")
            replace_section(card, "## Evaluation", "## Evaluation\n\ntable\n")
            with open(card) as f:
                self.assertEqual(f.read(), "# Model\n\n## Evaluation\n\ntable\n")


FAKE_CLI = """
import json, sys
args = sys.argv[1:]
requests, results = args[args.index("--batch") + 1], args[args.index("--out") + 1]
n = int(args[args.index("--candidates") + 1])
with open(requests) as f, open(results, "w") as out:
    for line in f:
        task = json.loads(line)
        # Candidates best first; the second one repeats the file around the hole so the test can see what it got.
        texts = ["first", task["before"][-3:] + "|" + task["after"][:3], "third"][:n]
        answer = {"id": task["id"], "completion": texts[0], "order": [[0]], "model_calls": 1}
        if n > 1:
            answer["candidates"] = [{"text": t, "score": -i} for i, t in enumerate(texts)]
        out.write(json.dumps(answer) + "\\n")
"""


class CandidatesThroughTheCli(unittest.TestCase):
    """`--onnx-candidates`: the CLI is asked for N ranked candidates with the whole file around each hole."""

    task = {"id": "t", "prefix": "a = ", "suffix": "\n", "language": "python", "target_tokens": 3, "target": "abc|xyz",
            "file": "abc<hole>xyz", "start": 3, "end": 9}

    def run_cli(self, candidates):
        with tempfile.TemporaryDirectory() as tmp:
            fake = os.path.join(tmp, "cli.py")
            with open(fake, "w") as f:
                f.write(FAKE_CLI)
            with open(os.path.join(tmp, "manifest.json"), "w") as f:
                json.dump({"facts": {"unmask.top_k": "64"}}, f)
            args = argparse.Namespace(cli=os.path.relpath(fake, str(paths.REPO_DIR)), node=sys.executable, onnx_precision="auto",
                                      threads=1, seed=0)
            options = sample.SamplerOptions(steps=4, strategy="confidence", top_k=64)
            outputs, _ = run_onnx_cli(tmp, [self.task], options, None, (8,), args, candidates)
        return outputs[0]

    def test_the_ranked_list_comes_back_best_first_with_the_file_around_the_hole(self):
        output = self.run_cli(3)
        self.assertEqual(output["completion"], "first")
        self.assertEqual(output["candidates"], ["first", "abc|xyz", "third"])

    def test_one_candidate_is_its_own_list(self):
        self.assertEqual(self.run_cli(1)["candidates"], ["first"])

    def test_best_of_takes_the_candidate_closest_to_the_target_and_the_first_of_equals(self):
        outputs = [{"completion": "first", "candidates": ["first", "abc|xyz", "third"]},
                   {"completion": "x", "candidates": ["q", "r"]}]
        tasks = [self.task, {**self.task, "target": "zz"}]
        self.assertEqual([o["completion"] for o in ev.best_of(tasks, outputs)], ["abc|xyz", "q"])

    def test_the_table_labels_the_candidates_rows_and_says_what_they_show(self):
        def run(**extra):
            return {"model": "onnx", "strategy": "confidence", "steps": 8, "nfe": 2.0, "exact_match": 0.0,
                    "edit_similarity": extra.pop("sim"), "syntax_valid": 0.5, "empty": extra.pop("empty"),
                    "arness_local": [1.0], "arness_global": [1.0], "seconds": 1.0, "tasks": 2, "syntax_counted": 2,
                    "by_cell": {}, **extra}

        report = {"tasks": {"count": 2, "by_cell": {"python/single-line": 2}, "bucket": "oracle bucket"},
                  "sampler": "s", "focus": {"strategy": "confidence", "steps": 8}, "runs": [
                      run(sim=0.1, empty=0.5), run(sim=0.2, empty=0.0, candidates=4, pick="ranked"),
                      run(sim=0.3, empty=0.0, candidates=4, pick="best")],
                  "nll": {}, "device": "cpu", "wall_seconds": 1.0, "command": "python -m scripts.eval_heldout"}
        text = markdown(report)
        self.assertIn("| onnx x4 ranked | confidence | 8 |", text)
        self.assertIn("| onnx x4 best | confidence | 8 |", text)
        self.assertIn("The top-ranked one: edit similarity 20.0%, syntax valid 50.0%, empty 0.0%, against 10.0%, "
                      "50.0% and 50.0% for the single completion; the best of the 4", text)


class CacheNgramThroughTheCli(unittest.TestCase):
    """`--cli-cache-ngram*`: the cache n-gram settings reach the CLI and name the rows they made."""

    def test_the_flags_given_reach_the_cli_and_the_record(self):
        args = argparse.Namespace(cli_cache_ngram="on", cli_cache_ngram_weight=0.8, cli_cache_ngram_order=None)
        self.assertEqual(setting_flags(args), ["--cache-ngram", "on", "--cache-ngram-weight", "0.8"])
        self.assertEqual(setting_record(args), {"cache_ngram": "on", "cache_ngram_weight": 0.8})

    def test_the_line_policy_reaches_the_cli_and_names_the_row(self):
        args = argparse.Namespace(cli_multiline="always")
        self.assertEqual(setting_flags(args), ["--multiline", "always"])
        self.assertEqual(run_label({"model": "onnx", "copy_min_match": 0, **setting_record(args)}), "onnx model only multiline always")

    def test_the_context_budget_reaches_the_cli_and_names_the_row(self):
        args = argparse.Namespace(cli_context_tokens=440)
        self.assertEqual(setting_flags(args), ["--context-tokens", "440"])
        self.assertEqual(run_label({"model": "onnx", "copy_min_match": 0, **setting_record(args)}), "onnx model only context 440")

    def test_none_given_leaves_the_cli_at_its_defaults(self):
        self.assertEqual(setting_flags(argparse.Namespace()), [])
        self.assertEqual(setting_record(argparse.Namespace(cli_cache_ngram=None)), {})

    def test_the_table_says_which_rows_mixed_the_cache_in(self):
        on = setting_record(argparse.Namespace(cli_cache_ngram="on", cli_cache_ngram_weight=0.5,
                                                   cli_cache_ngram_order=6))
        self.assertEqual(run_label({"model": "onnx", "copy_min_match": 0, **on}),
                         "onnx model only +cache n-gram w 0.5 order 6")
        self.assertEqual(run_label({"model": "onnx", "copy_min_match": 4, "cache_ngram": "off"}), "onnx copy>=4")


class OtherOpenFiles(unittest.TestCase):
    """`--cli-cache-ngram-open-documents N`: each task gets N other files of its package and family as open documents."""

    FILES = [
        {"package": "p", "path": "lib/a/x.py", "language": "python", "text": "x"},
        {"package": "p", "path": "lib/a/y.py", "language": "python", "text": "y"},
        {"package": "p", "path": "lib/b/z.py", "language": "python", "text": "z"},
        {"package": "p", "path": "top.py", "language": "python", "text": "top"},
        {"package": "p", "path": "lib/a/w.ts", "language": "typescript", "text": "ts"},
        {"package": "q", "path": "lib/a/v.py", "language": "python", "text": "other package"},
        {"package": "p", "path": "lib/a/copy.py", "language": "python", "text": "task file"},
    ]
    TASK = {"id": "t", "package": "p", "path": "lib/a/task.py", "language": "python", "file": "task file"}

    def test_same_package_and_family_nearest_folder_first_never_the_task_file(self):
        from unmask.onnx_cli import other_open_files
        got = other_open_files(self.TASK, self.FILES, 8)
        self.assertEqual(sorted(got[:2]), ["x", "y"], "the task's own folder first")
        self.assertEqual(got[2], "z")
        self.assertEqual(got[3], "top")
        self.assertEqual(len(got), 4, "not TypeScript, not another package, not a copy of the task's file")
        self.assertEqual(other_open_files(self.TASK, self.FILES, 1), got[:1])
        self.assertEqual(other_open_files(self.TASK, self.FILES, 0), [])

    def test_javascript_and_typescript_are_one_family(self):
        from unmask.onnx_cli import other_open_files
        task = {**self.TASK, "path": "lib/a/task.js", "language": "javascript"}
        self.assertEqual(other_open_files(task, self.FILES, 8), ["ts"])

    def test_the_count_reaches_the_cli_and_names_the_rows(self):
        args = argparse.Namespace(cli_cache_ngram="on", cli_cache_ngram_open_documents=3)
        self.assertEqual(setting_flags(args), ["--cache-ngram", "on", "--cache-ngram-open-documents", "3"])
        self.assertEqual(run_label({"model": "onnx", "copy_min_match": 0, **setting_record(args)}),
                         "onnx model only +cache n-gram open docs 3")


class EndToEnd(unittest.TestCase):
    """The whole harness on random-weight models: it must run and produce a consistent report."""

    def test_a_small_sweep_produces_results_a_table_and_a_card_section(self):
        from unmask import common
        from unmask.model import build_model

        with tempfile.TemporaryDirectory() as tmp:
            tokenizer_path = make_tokenizer(tmp)
            special = common.read_special_ids(tokenizer_path)
            corpus = os.path.join(tmp, "corpus")
            os.makedirs(corpus)
            with gzip.open(os.path.join(corpus, "test.jsonl.gz"), "wt") as f:
                for record in sample_records():
                    f.write(json.dumps(record) + "\n")
            with open(tokenizer_path) as f:
                vocab = json.load(f)["model"]["vocab"]
            paths = {}
            for kind in ("mdm", "ar"):
                torch.manual_seed(0)
                config = {"kind": kind, "n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64,
                          "vocab_size": len(vocab), "max_seq_len": 128}
                model = build_model(config)
                paths[kind] = os.path.join(tmp, f"{kind}.pt")
                torch.save({"model": model.state_dict(), "config": dict(model.config), "special": special,
                            "tokenizer": tokenizer_path, "step": 0}, paths[kind])
            card = os.path.join(tmp, "CARD.md")
            out = os.path.join(tmp, "results.json")
            tasks_file = os.path.join(tmp, "tasks.jsonl")
            data_tasks.main(["--test", os.path.join(corpus, "test.jsonl.gz"), "--tokenizer", tokenizer_path,
                            "--out", tasks_file, "--per-cell", "2", "--max-seq-len", "128",
                            "--max-span-tokens", "16"])
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                report = ev.main(["--ckpt", paths["mdm"], "--ar-ckpt", paths["ar"], "--tasks-file", tasks_file,
                                  "--tasks", "6", "--steps", "1,4", "--strategies", "confidence,random",
                                  "--nll-batches", "1", "--batch-size", "4", "--corpus-dir", corpus, "--out", out,
                                  "--markdown", os.path.join(tmp, "results.md"), "--card", card, "--focus",
                                  "confidence:4"])
            self.assertEqual(len(report["runs"]), 5)
            for run in report["runs"]:
                self.assertEqual(run["tasks"], 6)
                for key in ("exact_match", "edit_similarity"):
                    self.assertTrue(0.0 <= run[key] <= 1.0)
                self.assertGreaterEqual(run["syntax_counted"], 1)
            one_step = report["runs"][0]
            self.assertEqual(one_step["nfe"], 1.0)
            ar_run = report["runs"][-1]
            self.assertEqual(ar_run["model"], "ar")
            self.assertTrue(all(v in (1.0, None) for v in ar_run["arness_global"]))
            self.assertGreater(report["nll"]["mdm"]["test_elbo_bits"], 0)
            self.assertGreater(report["nll"]["ar"]["test_bits"], 0)
            with open(out) as f:
                self.assertEqual(json.load(f)["tasks"]["count"], 6)
            with open(card) as f:
                text = f.read()
            self.assertIn("## Evaluation", text)
            self.assertIn("| mdm | confidence | 4 |", text)
            self.assertRegex(text, r"the denoiser (beats|ties|does not beat) the AR baseline on exact match")
            self.assertIn("python -m scripts.eval_heldout --ckpt", text)


FAKE_NODE_CLI = """
import fs from 'node:fs';
const args = process.argv.slice(2);
const requests = args[args.indexOf('--batch') + 1], results = args[args.indexOf('--out') + 1];
const out = fs.readFileSync(requests, 'utf8').split('\\n').filter((l) => l.trim()).map((line) => {
  const task = JSON.parse(line);
  // A span the CLI sizes itself (no max_tokens) comes back as a repetition loop, so the test can tell.
  const completion = 'max_tokens' in task ? 'first' : 'x x x x x x';
  return JSON.stringify({ id: task.id, completion, order: [[0]], model_calls: 1 });
});
fs.writeFileSync(results, out.join('\\n') + '\\n');
"""


class HeldOutWithoutACheckpoint(unittest.TestCase):
    """The held-out eval of issue 11: the shipped model through the CLI and the copy lookup, no checkpoint."""

    def test_cli_and_copy_rows_report_every_metric_per_language_and_kind(self):
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer_path = make_tokenizer(tmp)
            model_dir = os.path.join(tmp, "model")
            os.makedirs(model_dir)
            with open(os.path.join(model_dir, "manifest.json"), "w") as f:
                json.dump({"facts": {"unmask.top_k": "64", "unmask.max_seq_len": "128",
                                     "unmask.span_buckets": "[8, 16]"}}, f)
            with open(tokenizer_path) as src, open(os.path.join(model_dir, "tokenizer.json"), "w") as dst:
                dst.write(src.read())
            fake = os.path.join(tmp, "cli.mjs")
            with open(fake, "w") as f:
                f.write(FAKE_NODE_CLI)
            corpus = os.path.join(tmp, "test.jsonl.gz")
            with gzip.open(corpus, "wt") as f:
                for record in sample_records():
                    f.write(json.dumps(record) + "\n")
            tasks_file, out, md = (os.path.join(tmp, n) for n in ("tasks.jsonl", "r.json", "r.md"))
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                report = ev.main(["--onnx-cli", model_dir, "--copy-baseline", "--test", corpus, "--tasks-file",
                                  tasks_file, "--per-cell", "2", "--tasks", "12", "--steps", "8", "--strategies",
                                  "confidence", "--focus", "confidence:8", "--bucket", "default", "--nll-batches",
                                  "0", "--cli", os.path.relpath(fake, str(paths.REPO_DIR)), "--out",
                                  out, "--markdown", md])
            with open(tasks_file) as f:
                tasks = [json.loads(line) for line in f]
            self.assertEqual({t["kind"] for t in tasks}, set(tasks_mod.KINDS))
            self.assertEqual([(r["model"], r.get("context")) for r in report["runs"]],
                             [("onnx", None), ("copy", "file"), ("copy", "task")])
            onnx = report["runs"][0]
            # --bucket default: the CLI got no max_tokens, so the fake answered with a repetition loop.
            self.assertEqual(onnx["degenerate"], 1.0)
            self.assertEqual(onnx["exact_match"], 0.0)
            self.assertEqual(len(onnx["by_cell"]), 6)
            for cell in onnx["by_cell"].values():
                self.assertEqual(set(cell) >= {"exact_match", "first_line_exact", "edit_similarity", "syntax_valid",
                                               "empty", "degenerate"}, True)
            self.assertIsNone(report["mdm"])
            with open(md) as f:
                text = f.read()
            self.assertIn("| ts/js/rest-of-line | copy (whole file) |", text)
            self.assertIn("| python/single-line | onnx confidence 8 steps |", text)
            self.assertIn("**Targets (issue 11), onnx confidence 8 steps:** single-line first-line exact 0.0% (missed",
                          text)
            self.assertIn("lookup on exact match", text)

    def test_nothing_to_score_is_refused(self):
        with self.assertRaises(SystemExit):
            ev.main(["--nll-batches", "0"])


def sample_records() -> list[dict]:
    """A few small Python, TypeScript and JavaScript files."""
    python = "\n".join(
        f"def function_{i}(value, other):\n    total = value + other * {i}\n    if total > {i}:\n"
        f"        return total - {i}\n    return [total, value, other]\n" for i in range(6))
    typescript = "\n".join(
        f"export function handler{i}(input: string, count: number): string {{\n  const parts = input.split(',');\n"
        f"  if (parts.length > count) {{\n    return parts.slice(0, {i}).join(';');\n  }}\n  return input;\n}}\n"
        for i in range(6))
    javascript = "\n".join(
        f"function helper{i}(list) {{\n  let sum = 0;\n  for (const item of list) {{\n    sum += item * {i};\n  }}\n"
        f"  return sum;\n}}\n" for i in range(6))
    records = []
    for n in range(4):
        records.append({"package": "py", "version": "1", "path": f"m{n}.py", "language": "python",
                        "text": python.replace("function_", f"f{n}_")})
        records.append({"package": "ts", "version": "1", "path": f"m{n}.ts", "language": "typescript",
                        "text": typescript.replace("handler", f"h{n}_")})
        records.append({"package": "js", "version": "1", "path": f"m{n}.js", "language": "javascript",
                        "text": javascript.replace("helper", f"k{n}_")})
    return records


def make_tokenizer(folder: str) -> str:
    """A small byte-level BPE with the recipe's special tokens (ids 0..10), trained on the sample records."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from unmask import common

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(common.SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([r["text"] for r in sample_records()], trainer)
    path = os.path.join(folder, "tokenizer.json")
    tok.save(path)
    return path


if __name__ == "__main__":
    unittest.main()
