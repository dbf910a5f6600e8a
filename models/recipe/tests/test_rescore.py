"""Unit tests for the rows' rescoring (unmask/rescore.py) with a stand-in denoiser. Run:
python -m unittest tests.test_rescore"""

import argparse
import math
import os
import tempfile
import unittest

import torch

from scripts import eval_rank
from unmask import checkpoint, common, rescore
from unmask.model import build_model

MASK, EOS, V = 1, 2, 16
FAVOURED = 5  # the stand-in's likeliest token everywhere


class StandIn:
    """Logits [B, P, V] favouring FAVOURED; records every call and checks each scored position is masked (a model must
    never see the token it scores)."""

    def __init__(self):
        self.calls = []

    def __call__(self, ids, positions, span):
        self.calls.append((ids.clone(), positions.clone(), span.clone()))
        assert ids.shape[0] == positions.shape[0] == span.shape[0]
        for b in range(ids.shape[0]):
            for p in positions[b].tolist():
                assert span[b, p], "a scored position lies in the span"
        logits = torch.zeros(ids.shape[0], positions.shape[1], V)
        logits[..., FAVOURED] = 3.0
        return logits


def canvas_with(span_tokens):
    context = [7, 8, 9]
    return context + span_tokens + [10, 11], list(range(3, 3 + len(span_tokens)))


class Rescoring(unittest.TestCase):
    def test_scored_length_stops_after_the_first_end_of_span(self):
        self.assertEqual(rescore.scored_length([5, 6, EOS, EOS], EOS), 3)
        self.assertEqual(rescore.scored_length([5, 6, 7], EOS), 3, "no end-of-span: every token")

    def test_pll_masks_each_group_and_prefers_the_likelier_row(self):
        model = StandIn()
        canvas, span = canvas_with([5, 5, 5, 5, 5, EOS, EOS, EOS])
        good = rescore.pseudo_log_likelihood(model, canvas, span, MASK, EOS, groups=4)
        self.assertEqual(len(good), 6, "five tokens and the first end-of-span")
        ids = model.calls[0][0]
        self.assertEqual(ids.shape[0], 4, "one canvas per group")
        for g in range(4):
            masked = [k for k in range(len(span)) if ids[g, span[k]] == MASK]
            self.assertEqual(masked, [k for k in range(g, 6, 4)], "group g masks scored tokens g, g+4, ...")
            self.assertEqual(ids[g, :3].tolist(), [7, 8, 9], "context untouched")
        canvas_bad, _ = canvas_with([6, 6, 6, 6, 6, EOS, EOS, EOS])
        bad = rescore.pseudo_log_likelihood(model, canvas_bad, span, MASK, EOS, groups=4)
        self.assertGreater(rescore.mean(good[:5]), rescore.mean(bad[:5]))
        self.assertTrue(all(v <= 0 and math.isfinite(v) for v in good + bad))

    def test_left_to_right_masks_the_token_and_everything_after_it(self):
        model = StandIn()
        canvas, span = canvas_with([5, 6, 5, EOS, EOS])
        scores = rescore.left_to_right(model, canvas, span, MASK, EOS, max_tokens=24)
        self.assertEqual(len(scores), 4)
        ids, positions, _ = model.calls[0]
        for k in range(4):
            self.assertEqual(positions[k].tolist(), [span[k]])
            self.assertEqual(ids[k, span[:k]].tolist(), canvas[3:3 + k], "the tokens before it are kept")
            self.assertTrue(bool((ids[k, span[k:]] == MASK).all()), "it and every later span token are masked")
        self.assertGreater(scores[0], scores[1], "the favoured token is likelier than another")
        capped = rescore.left_to_right(StandIn(), canvas, span, MASK, EOS, max_tokens=2)
        self.assertEqual(capped, scores[:2])


class EvalRankRescore(unittest.TestCase):
    """eval_rank.rescore on a tiny context_only checkpoint: the real model call, shapes and the row check."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        torch.manual_seed(0)
        config = {"kind": "mdm", "n_layer": 1, "d_model": 16, "n_head": 2, "d_ff": 32, "vocab_size": V,
                  "max_seq_len": 32, "attention": "context_only"}
        self.path = os.path.join(self.tmp.name, "ckpt.pt")
        checkpoint.save(self.path, build_model(config).state_dict(), stage="pretrain", config=config,
                        special={"pad": 0, "mask": MASK, "eos": EOS},
                        tokenizer=common.REPO_DIR / "models" / "unmask-coder-base" / "tokenizer.json",
                        tokenizer_sha256=None, lineage=[], args={}, step=0, train_tokens=0, train_seconds=0.0,
                        metrics={}, device="cpu", world=1)
        self.args = argparse.Namespace(rescore=self.path, rescore_groups=2, ltr_tokens=24, torch_threads=1)

    def tearDown(self):
        self.tmp.cleanup()

    def test_every_candidate_gets_both_scores(self):
        canvas, span = canvas_with([5, 6, EOS, EOS])
        other, _ = canvas_with([7, EOS, EOS, EOS])
        answers = [{"span": span, "candidates": [{"text": "a"}, {"text": "b"}],
                    "rows": [{"text": "a", "canvas": canvas}, {"text": "b", "canvas": other}]}, {"error": "boom"}]
        eval_rank.rescore(self.args, answers)
        for c in answers[0]["candidates"]:
            self.assertTrue(math.isfinite(c["pll"]) and c["pll"] < 0, c)
            self.assertTrue(math.isfinite(c["ltr"]) and c["ltr"] < 0, c)

    def test_rows_out_of_step_with_the_candidates_stop_it(self):
        canvas, span = canvas_with([5, EOS])
        answers = [{"span": span, "candidates": [{"text": "a"}], "rows": [{"text": "b", "canvas": canvas}]}]
        with self.assertRaises(SystemExit):
            eval_rank.rescore(self.args, answers)


if __name__ == "__main__":
    unittest.main()
