"""CPU training precision (--cpu-precision, unmask/common.py): which steps run under bf16 autocast, and that a bf16
training step computes the same loss and gradient direction as fp32 on the real model shape.

Run from models/recipe/: python -m unittest tests.test_precision
"""
from __future__ import annotations

import unittest
from unittest import mock

import torch
import torch.nn.functional as F

from unmask import common
from unmask.loss_eval import MDMObjective
from unmask.model import build_model


CPU = torch.device("cpu")


class Choice(unittest.TestCase):
    def tearDown(self):
        common.setup_runtime("cpu", 0, "fp32")  # leave the process as every other test expects it

    def test_fp32_is_a_no_op_context(self):
        common.setup_runtime("cpu", 0, "fp32")
        with common.autocast(CPU):
            self.assertEqual((torch.ones(4, 4) @ torch.ones(4, 4)).dtype, torch.float32)

    def test_bf16_runs_training_matmuls_in_bf16_and_evaluations_in_fp32(self):
        common.setup_runtime("cpu", 0, "bf16")
        with common.autocast(CPU):
            self.assertEqual((torch.ones(4, 4) @ torch.ones(4, 4)).dtype, torch.bfloat16)
        with common.autocast(CPU, evaluating=True):
            self.assertEqual((torch.ones(4, 4) @ torch.ones(4, 4)).dtype, torch.float32)

    def test_auto_follows_the_cpu_flags(self):
        for flags, expected in (("fpu sse avx2 avx512f", torch.float32), ("fpu avx512f avx512_bf16", torch.bfloat16),
                                ("fpu amx_tile amx_bf16", torch.bfloat16)):
            cpuinfo = f"processor\t: 0\nflags\t\t: {flags}\n"
            with mock.patch("builtins.open", mock.mock_open(read_data=cpuinfo)):
                common.setup_runtime("cpu", 0, "auto")
            with common.autocast(CPU):
                self.assertEqual((torch.ones(2, 2) @ torch.ones(2, 2)).dtype, expected, flags)

    def test_no_cpuinfo_means_fp32(self):
        with mock.patch("builtins.open", side_effect=OSError("no /proc")):
            self.assertFalse(common.cpu_has_bf16())


class SameStep(unittest.TestCase):
    """bf16 autocast keeps fp32 weights and loss: the loss and gradient of one MDM step match fp32 closely."""

    def test_loss_and_gradient_match_fp32(self):
        torch.manual_seed(0)
        cfg = {"kind": "mdm", "n_layer": 2, "d_model": 64, "n_head": 2, "d_ff": 128, "vocab_size": 128,
               "max_seq_len": 32, "attention": "context_only", "dropout": 0.0, "span_buckets": [8]}
        model = build_model(cfg)
        obj = MDMObjective(model)
        B, T = 4, 32
        x0 = torch.randint(0, 120, (B, T))
        span = torch.zeros(B, T, dtype=torch.bool)
        span[:, 10:18] = True
        masked = span & (torch.rand(B, T) < 0.6)
        masked[:, 10] = True
        xt = torch.where(masked, torch.full_like(x0, 127), x0)
        keypad = torch.zeros(B, T, dtype=torch.bool)
        inv_t = torch.full((B,), 2.0)

        def step(precision):
            common.setup_runtime("cpu", 0, precision)
            model.zero_grad()
            with common.autocast(CPU):
                loss = obj(xt, x0, masked, span, keypad, inv_t).sum() / span.sum()
            loss.backward()
            grad = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
            return loss.item(), grad, [p.dtype for p in model.parameters()]

        try:
            loss32, grad32, _ = step("fp32")
            loss16, grad16, dtypes = step("bf16")
        finally:
            common.setup_runtime("cpu", 0, "fp32")
        self.assertTrue(all(d == torch.float32 for d in dtypes))  # master weights stay fp32
        self.assertAlmostEqual(loss16, loss32, delta=0.02 * loss32)
        self.assertGreater(F.cosine_similarity(grad16, grad32, dim=0).item(), 0.99)


if __name__ == "__main__":
    unittest.main()
