"""Unit tests for attention annealing (model.Transformer.anneal, train_pretrain --attention-anneal-steps).
Run: python -m unittest tests.test_anneal"""

import unittest

import torch

from unmask.model import build_model

CONFIG = {"kind": "mdm", "n_layer": 2, "d_model": 32, "n_head": 2, "d_ff": 64, "vocab_size": 50, "max_seq_len": 16,
          "attention": "context_only"}


class AttentionAnnealing(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.model = build_model(CONFIG)
        self.ids = torch.randint(5, 50, (1, 12))
        self.span = torch.zeros(1, 12, dtype=torch.bool)
        self.span[0, 6:9] = True

    def test_at_zero_no_position_sees_a_later_one(self):
        self.model.train()
        self.model.anneal = 0.0
        h = self.model.hidden(self.ids, self.span)
        later = self.ids.clone()
        later[0, 10] = 7 if int(later[0, 10]) != 7 else 8  # change a token after position 9
        h2 = self.model.hidden(later, self.span)
        self.assertTrue(torch.allclose(h[0, :10], h2[0, :10], atol=1e-6), "causal: the earlier states are unchanged")

    def test_at_one_and_in_eval_it_is_the_plain_pattern(self):
        self.model.train()
        self.model.anneal = 1.0
        plain = self.model.hidden(self.ids, self.span)
        self.model.anneal = 0.0
        self.model.eval()
        self.assertTrue(torch.allclose(self.model.hidden(self.ids, self.span), plain, atol=1e-6),
                        "validation and export never anneal")


if __name__ == "__main__":
    unittest.main()
