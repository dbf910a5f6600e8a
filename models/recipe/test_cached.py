"""Tests of the cached-context form of a context_only denoiser (cached.py) and of its two-graph ONNX export
(export.py): the two modules compute the model's own forward, the context cache does not depend on the span, and the
exported graphs have the contract's inputs and outputs (models/README.md, "Cached-context denoiser"). The numerics
of the exported graphs are checked by onnxruntime when it is installed here, and always by test/unit/parity.test.ts
on the smoke run's export.

Run: python -m unittest models/recipe/test_cached.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import export  # noqa: E402
from cached import ContextEncoder, cached_logits, span_layout  # noqa: E402
from model import build_model  # noqa: E402

V, T = 300, 80
HOLES = [(10, 16), (40, 8)]


def tiny_model(attention="context_only"):
    torch.manual_seed(0)
    model = build_model({"n_layer": 3, "d_model": 64, "n_head": 4, "d_ff": 128, "vocab_size": V,
                         "attention": attention}).eval()
    with torch.no_grad():  # larger weights than the init, so attention is far from uniform and errors would show
        for p in model.parameters():
            p.mul_(3)
    return model


def rel_l2(a, b) -> float:
    return float((a - b).norm() / b.norm())


class CachedModulesTest(unittest.TestCase):
    def setUp(self):
        self.model = tiny_model()
        self.pos, self.mask = span_layout(HOLES, T)
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(5, V, (3, T), generator=g)
        ids[1:] = ids[0]
        ids[:, self.pos] = 1
        ids[1, self.pos[::3]] = 77  # rows that committed different span tokens, as candidates do
        ids[2, self.pos[::5]] = 66
        self.ids = ids

    def forward(self, ids, positions):
        with torch.no_grad():
            ref = self.model(ids, positions, span_mask=self.mask.expand(ids.shape[0], T))
            got = cached_logits(self.model, ids, positions, HOLES)
        return got, ref

    def test_matches_the_models_forward_when_rows_share_the_context(self):
        positions = self.pos[:20].expand(3, -1)
        got, ref = self.forward(self.ids, positions)
        self.assertLess(rel_l2(got, ref), 1e-5)

    def test_matches_the_models_forward_when_rows_have_their_own_context(self):
        ids = self.ids.clone()
        ids[2, 3] = 9
        got, ref = self.forward(ids, self.pos[-6:].expand(3, -1))
        self.assertLess(rel_l2(got, ref), 1e-5)

    def test_the_cache_does_not_depend_on_the_span(self):
        encoder = ContextEncoder(self.model)
        with torch.no_grad():
            k0, v0 = encoder(self.ids[:1], self.mask[None])
            k1, v1 = encoder(self.ids[1:2], self.mask[None])  # same context, other span tokens
        context = ~self.mask
        self.assertEqual(float((k0 - k1)[..., context, :].abs().max()), 0.0)
        self.assertEqual(float((v0 - v1)[..., context, :].abs().max()), 0.0)
        self.assertEqual(tuple(k0.shape), (3, 1, 4, T, 16))

    def test_refuses_a_full_attention_model_and_positions_outside_the_holes(self):
        with self.assertRaises(ValueError):
            ContextEncoder(tiny_model("full"))
        with self.assertRaises(ValueError):
            cached_logits(self.model, self.ids, torch.tensor([[0], [0], [0]]), HOLES)


class CachedExportTest(unittest.TestCase):
    def test_the_two_graphs_have_the_contracts_inputs_and_outputs(self):
        model = tiny_model()
        cfg = model.config
        with tempfile.TemporaryDirectory() as tmp:
            context_path, step_path = Path(tmp, "context.onnx"), Path(tmp, "step.onnx")
            export.export_cached_fp32(model, context_path, step_path, 17)
            context, step = onnx.load(str(context_path)), onnx.load(str(step_path))
        export.name_cache_dims(context.graph, cfg)
        export.untie_transposed_embedding(step.graph, "model.embed.weight")
        for proto in (context, step, export.quantize_int8(context, "model.embed.weight"),
                      export.quantize_int8(step, "model.embed.weight")):
            onnx.checker.check_model(proto)

        def io(values):
            return {v.name: (v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
                    for v in values}
        i64, f32, b = onnx.TensorProto.INT64, onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL
        self.assertEqual(io(context.graph.input), {"input_ids": (i64, ["B", "T"]), "span_mask": (b, ["B", "T"])})
        self.assertEqual(io(context.graph.output), {"past_key": (f32, [3, "B", 4, "T", 16]),
                                                    "past_value": (f32, [3, "B", 4, "T", 16])})
        step_inputs = io(step.graph.input)
        self.assertEqual(list(step_inputs), ["span_ids", "span_pos", "past_key", "past_value", "context_mask", "out_idx"])
        self.assertEqual(step_inputs["context_mask"], (b, ["Bc", "T"]))
        self.assertEqual(step_inputs["past_key"][1][1], "Bc")
        self.assertEqual(io(step.graph.output), {"logits": (f32, ["B", "P", V])})
        self.check_numerics(model, context, step)

    def check_numerics(self, model, context, step):
        try:
            import onnxruntime as ort
        except ImportError:
            return  # test/unit/parity.test.ts checks the numerics through onnxruntime-node
        pos, mask = span_layout(HOLES, T)
        ids = torch.randint(5, V, (2, T))
        ids[1] = ids[0]
        ids[:, pos] = 1
        ids[1, pos[::2]] = 50
        positions = pos[pos % 3 == 0].expand(2, -1)
        with torch.no_grad():
            ref = model(ids, positions, span_mask=mask.expand(2, T)).numpy()
        case = {"input_ids": ids.tolist(), "positions": positions.tolist(), "holes": [list(h) for h in HOLES]}
        sessions = [ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"]) for p in (context, step)]
        got = export.run_cached(case, *sessions)
        self.assertLess(float(np.linalg.norm(got - ref) / np.linalg.norm(ref)), 1e-4)


if __name__ == "__main__":
    unittest.main()
