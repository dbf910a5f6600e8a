"""Tests of the cached-context form of a context_only denoiser (cached.py), of its two-graph ONNX export (onnx_export.py)
and of the K-best head every denoiser graph ends in (kbest_head.py, scripts/export_head.py): the two modules compute
the model's own forward, the context cache does not depend on the span, the exported graphs have the contract's
inputs and outputs (models/README.md, "Cached-context denoiser", "K-best head"), and the head lists what the sampler's
own `sample.kbest` lists. The numerics of the exported graphs are checked by onnxruntime (the Python package, else
onnxruntime-node through ort_session.py; skipped without either), and always by test/unit/parity.test.ts on the
smoke run's export.

Run from models/recipe/: python -m unittest tests.test_cached
"""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import onnx
import torch


from unmask import common
from scripts import export_head
from unmask import card, checkpoint
from unmask import onnx_export as export
from unmask import kbest_head
from unmask import ort_session
from unmask import sample
from unmask.cached import ContextEncoder, SharedContext, cached_logits, span_layout
from unmask.model import build_model

V, T = 300, 80
HOLES = [(10, 16), (40, 8)]
SPECIAL = {"pad": 0, "mask": 1, "eos": 2, "file": 3, "fim_prefix": 4, "fim_middle": 5, "fim_suffix": 6,
           "lang:python": 7, "lang:typescript": 8, "lang:javascript": 9, "lang:other": 10}
BANNED = [i for i in range(11) if i != SPECIAL["eos"]]
HEAD = ["logits", *kbest_head.OUTPUTS]


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


class SharedContextTest(unittest.TestCase):
    """RL's rollouts and scored passes (scripts/train_rl.py) run rows grouped by context through SharedContext: the
    full forward's logits and gradients, for rows of several prompts of different lengths, right-padded."""

    def batch(self):
        g = torch.Generator().manual_seed(2)
        rows, spans = [], []
        for length, start, size in ((T, 10, 16), (T - 20, 30, 8)):  # two prompts, the second shorter
            base = torch.randint(5, V, (length,), generator=g)
            for r in range(3):  # three rollouts of each, different span tokens
                row = base.clone()
                row[start:start + size] = torch.randint(5, V, (size,), generator=g)
                row[start + r] = 1  # some still masked
                rows.append(row)
                spans.append((length, start, size))
        ids = torch.zeros(len(rows), T, dtype=torch.long)
        span = torch.zeros(len(rows), T, dtype=torch.bool)
        keypad = torch.ones(len(rows), T, dtype=torch.bool)
        positions = torch.zeros(len(rows), 16, dtype=torch.long)
        for i, (row, (length, start, size)) in enumerate(zip(rows, spans)):
            ids[i, :length] = row
            keypad[i, :length] = False
            span[i, start:start + size] = True
            positions[i, :size] = torch.arange(start, start + size)
        order = torch.tensor([3, 0, 4, 1, 5, 2])  # prompts interleaved: groups need not be contiguous
        return ids[order], span[order], keypad[order], positions[order]

    def test_matches_the_full_forward_with_padding_and_several_prompts(self):
        model = tiny_model()
        ids, span, keypad, positions = self.batch()
        with torch.no_grad():
            ref = model(ids, positions, span_mask=span, key_padding_mask=keypad)
            shared = SharedContext(model, ids, span, keypad)
            got = shared.logits(ids, positions)
            self.assertEqual(len(shared.groups), 2)
            valid = positions > 0
            self.assertLess(rel_l2(got[valid], ref[valid]), 1e-5)
            other = ids.clone()  # the sampler's next step: other span tokens, the same cache
            other[span] = 1
            ref2 = model(other, positions, span_mask=span, key_padding_mask=keypad)
            self.assertLess(rel_l2(shared.logits(other, positions)[valid], ref2[valid]), 1e-5)

    def test_gradients_match_the_full_forward(self):
        ids, span, keypad, positions = self.batch()
        valid = positions > 0
        grads = []
        for use_shared in (False, True):
            model = tiny_model()
            if use_shared:
                logits = SharedContext(model, ids, span, keypad).logits(ids, positions)
            else:
                logits = model(ids, positions, span_mask=span, key_padding_mask=keypad)
            targets = ids.gather(1, positions)
            loss = -(logits.log_softmax(-1).gather(2, targets[..., None]).squeeze(-1) * valid).sum()
            loss.backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        self.assertLess(rel_l2(grads[1], grads[0]), 1e-4)


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
        if ort_session.runtime_name() is None:
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
        sessions = [ort_session.open_session(p.SerializeToString()) for p in (context, step)]
        got, = export.run_cached(case, *sessions)
        self.assertLess(float(np.linalg.norm(got - ref) / np.linalg.norm(ref)), 1e-4)


def exported_step(model):
    """The fp32 context and step graphs of a context_only model, as onnx_export makes them before the head."""
    with tempfile.TemporaryDirectory() as tmp:
        context_path, step_path = Path(tmp, "context.onnx"), Path(tmp, "step.onnx")
        export.export_cached_fp32(model, context_path, step_path, 17)
        context, step = onnx.load(str(context_path)), onnx.load(str(step_path))
    export.name_cache_dims(context.graph, model.config)
    export.untie_transposed_embedding(step.graph, "model.embed.weight")
    return context, step


def logits_graph(opset: int):
    """A graph whose `logits` [B, P, V] output is its input: the head's arithmetic on logits the test chooses."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["B", "P", V])
    y = onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["B", "P", V])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["logits"])], "logits", [x], [y])
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def needs_runtime(test):
    return unittest.skipIf(ort_session.runtime_name() is None, "neither onnxruntime nor onnxruntime-node here")(test)


class KBestHeadTest(unittest.TestCase):
    def assert_head_matches_the_sampler(self, logits, top_logits, top_ids, log_z, k):
        want_logits, want_ids, want_log_z = sample.kbest(torch.from_numpy(logits), k, BANNED)
        self.assertEqual(top_ids.dtype, np.int32)
        self.assertEqual(top_ids.tolist(), want_ids.tolist())
        self.assertEqual(top_logits.tolist(), want_logits.tolist())
        np.testing.assert_allclose(log_z, want_log_z.numpy(), rtol=1e-5)

    def test_the_head_adds_outputs_metadata_and_keeps_the_logits(self):
        _, step = exported_step(tiny_model())
        kbest_head.append_kbest_head(step, 16, BANNED)
        onnx.checker.check_model(step)
        outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
                   for o in step.graph.output}
        self.assertEqual(outputs, {"logits": ["B", "P", V], "top_logits": ["B", "P", 16], "top_ids": ["B", "P", 16],
                                   "log_z": ["B", "P"]})
        meta = {p.key: p.value for p in step.metadata_props}
        self.assertEqual((meta["unmask.top_k"], json.loads(meta["unmask.banned_ids"])), ("16", BANNED))
        with self.assertRaises(ValueError):
            kbest_head.append_kbest_head(step, 16, BANNED)  # a second head

    def test_stripping_the_head_gives_back_the_graph_it_was_added_to(self):
        _, step = exported_step(tiny_model())
        before = step.SerializeToString()
        self.assertFalse(kbest_head.strip_kbest_head(step))
        kbest_head.append_kbest_head(step, 16, BANNED)
        self.assertTrue(kbest_head.strip_kbest_head(step))
        self.assertEqual(step.SerializeToString(), before)

    def test_k_is_clamped_to_the_ids_the_sampler_may_commit(self):
        self.assertEqual(kbest_head.clamp_top_k(64, 300, 10), 64)
        self.assertEqual(kbest_head.clamp_top_k(64, 40, 10), 30)
        with self.assertRaises(ValueError):
            kbest_head.append_kbest_head(logits_graph(17), V - len(BANNED) + 1, BANNED)

    @needs_runtime
    def test_the_step_graphs_head_lists_what_the_sampler_lists_fp32_and_int8(self):
        model = tiny_model()
        context, step = exported_step(model)
        int8_context = export.quantize_int8(context, "model.embed.weight")
        int8_step = export.quantize_int8(step, "model.embed.weight")
        pos, _ = span_layout(HOLES, T)
        ids = torch.randint(11, V, (2, T), generator=torch.Generator().manual_seed(3))
        ids[1] = ids[0]
        ids[:, pos] = SPECIAL["mask"]
        case = {"input_ids": ids.tolist(), "positions": pos[::2].expand(2, -1).tolist(),
                "holes": [list(h) for h in HOLES]}
        for c, s in ((context, step), (int8_context, int8_step)):
            kbest_head.append_kbest_head(s, 32, BANNED)
            sessions = [ort_session.open_session(p.SerializeToString()) for p in (c, s)]
            logits, top_logits, top_ids, log_z = export.run_cached(case, *sessions, HEAD)
            self.assert_head_matches_the_sampler(logits, top_logits, top_ids, log_z, 32)
            kbest_head.check_head(logits, top_logits, top_ids, log_z, BANNED, "test")

    @needs_runtime
    def test_the_single_graphs_head_lists_what_the_sampler_lists(self):
        model = tiny_model("full")
        with tempfile.TemporaryDirectory() as tmp:
            export.export_fp32(model, Path(tmp, "model.onnx"), 17)
            proto = onnx.load(str(Path(tmp, "model.onnx")))
        export.untie_transposed_embedding(proto.graph, "model.embed.weight")
        kbest_head.append_kbest_head(proto, 8, BANNED)
        ids = torch.randint(11, V, (2, T), generator=torch.Generator().manual_seed(4))
        feeds = {"input_ids": ids.numpy(), "positions": np.array([[1, 5, 9], [0, 40, 79]], np.int64)}
        out = ort_session.open_session(proto.SerializeToString()).run(HEAD, feeds)
        self.assert_head_matches_the_sampler(*out, 8)

    @needs_runtime
    def test_ties_go_to_the_lower_id_and_log_z_skips_banned_ids_in_both_opsets(self):
        logits = np.random.default_rng(0).normal(size=(2, 3, V)).astype(np.float32)
        logits[0, 0, [50, 20, 30]] = 9.0  # a three-way tie at the top
        logits[1, 2, BANNED] = 20.0  # banned ids that would otherwise lead the list and dominate log_z
        for opset in (17, 18):
            proto = logits_graph(opset)
            kbest_head.append_kbest_head(proto, 5, BANNED)
            if opset <= onnx.defs.onnx_opset_version():  # an older onnx package does not know opset 18 yet
                onnx.checker.check_model(proto)
            out = ort_session.open_session(proto.SerializeToString()).run(HEAD, {"x": logits})
            self.assertEqual(out[2][0, 0, :3].tolist(), [20, 30, 50], f"opset {opset}")
            self.assert_head_matches_the_sampler(*out, 5)

    @needs_runtime
    def test_log_z_stays_finite_and_exact_where_exp_of_the_logits_overflows(self):
        logits = np.random.default_rng(2).normal(size=(1, 2, V)).astype(np.float32)
        logits[0, 0] += 300.0  # exp(300) overflows float32: only a max-shifted sum survives
        logits[0, 1, 40] = 500.0  # one token holds all the mass
        proto = logits_graph(17)
        kbest_head.append_kbest_head(proto, 4, BANNED)
        out = ort_session.open_session(proto.SerializeToString()).run(HEAD, {"x": logits})
        self.assertTrue(np.isfinite(out[3]).all())
        self.assertAlmostEqual(float(out[3][0, 1]), 500.0, places=4)
        self.assert_head_matches_the_sampler(*out, 4)
        kbest_head.check_head(*out, BANNED, "overflow")

    def test_the_check_catches_a_head_that_differs_from_the_logits(self):
        logits = np.random.default_rng(1).normal(size=(1, 2, V)).astype(np.float32)
        values, ids, log_z = kbest_head.reference(logits, 4, BANNED)
        good = (values.astype(np.float32), ids.astype(np.int32), log_z.astype(np.float32))
        kbest_head.check_head(logits, *good, BANNED, "good")
        swapped = good[1].copy()
        swapped[..., [0, 1]] = swapped[..., [1, 0]]
        shifted = good[2] + np.float32(0.01)
        banned_listed = good[1].copy()
        banned_listed[0, 0, 3] = BANNED[0]
        for bad in ((good[0], swapped, good[2]), (good[0], good[1], shifted), (good[0], banned_listed, good[2]),
                    (good[0] + np.float32(1e-3), good[1], good[2])):
            with self.assertRaises(RuntimeError):
                kbest_head.check_head(logits, *bad, BANNED, "bad")


class AddHeadTest(unittest.TestCase):
    """`scripts.export_head DIR` on a cached-context model folder made here without the head."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.folder = Path(self.tmp.name)
        model = tiny_model()
        context, step = exported_step(model)
        files = {}
        for graph, fp32 in (("context", context), ("step", step)):
            meta = {"unmask.format": "1", "unmask.kind": "mdm", "unmask.vocab_size": str(V), "unmask.eos_id": "2",
                    "unmask.special_ids": json.dumps(SPECIAL), **export.cache_metadata(model.config, graph)}
            for name, proto in ((f"{graph}.onnx", fp32), (f"{graph}.int8.onnx",
                                                          export.quantize_int8(fp32, "model.embed.weight"))):
                export.set_metadata(proto, meta)
                onnx.save(proto, str(self.folder / name))
                files[name] = export.ROLES[name]
        ckpt = {"special": SPECIAL, "config": {"vocab_size": V}}
        cases = export.parity_cases(model, ckpt, None, str(self.folder / "no-corpus"), 2)[1:3]  # two small ones
        (self.folder / "parity.json").write_text(json.dumps({"cases": cases}))
        pairs = {"int8": {"context": "context.int8.onnx", "step": "step.int8.onnx"},
                 "fp32": {"context": "context.onnx", "step": "step.onnx"}}
        self.manifest = {"id": "tiny", "cached_context": pairs,
                         "files": [{"name": n, "sha256": common.file_sha256(self.folder / n),
                                    "bytes": (self.folder / n).stat().st_size, "role": r} for n, r in files.items()],
                         "facts": {"unmask.vocab_size": str(V)}, "exported": {"opset": 17}}
        (self.folder / "manifest.json").write_text(json.dumps(self.manifest, indent=2) + "\n")

    def tearDown(self):
        self.tmp.cleanup()

    def add_head(self):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            export_head.main([str(self.folder), "--top-k", "16"])
        return json.loads(out.getvalue())

    def test_the_step_graphs_get_the_head_and_the_manifest_only_their_hashes_and_the_head_facts(self):
        report = self.add_head()
        manifest = json.loads((self.folder / "manifest.json").read_text())
        for f in manifest["files"]:
            self.assertEqual(f["sha256"], common.file_sha256(self.folder / f["name"]))
            self.assertEqual(f["bytes"], (self.folder / f["name"]).stat().st_size)
            proto = onnx.load(str(self.folder / f["name"]))
            outputs = [o.name for o in proto.graph.output]
            if f["role"].startswith("step"):
                self.assertEqual(outputs, HEAD)
                meta = {p.key: p.value for p in proto.metadata_props}
                self.assertEqual(json.loads(meta["unmask.banned_ids"]), BANNED)
            else:
                self.assertEqual(outputs, ["past_key", "past_value"])
        before = {f["name"]: f for f in self.manifest["files"]}
        changed = {f["name"] for f in manifest["files"] if f != before[f["name"]]}
        self.assertEqual(changed, {"step.onnx", "step.int8.onnx"})
        self.assertEqual(manifest["facts"], {**self.manifest["facts"], "unmask.top_k": "16",
                                             "unmask.banned_ids": json.dumps(BANNED)})
        self.assertEqual({k: v for k, v in manifest.items() if k not in ("files", "facts")},
                         {k: v for k, v in self.manifest.items() if k not in ("files", "facts")})
        if ort_session.runtime_name() is not None:  # the head was checked on the folder's parity cases
            for pair in ("context.int8.onnx + step.int8.onnx", "context.onnx + step.onnx"):
                self.assertEqual(report["ort_check"][pair]["head"]["top_logits_max_abs_diff"], 0.0)

    def test_adding_the_head_again_replaces_it_and_writes_the_same_bytes(self):
        first = self.add_head()
        manifest = (self.folder / "manifest.json").read_text()
        files = {f: common.file_sha256(self.folder / f) for f in ("step.onnx", "step.int8.onnx")}
        second = self.add_head()
        self.assertEqual((first["replaced"], sorted(second["replaced"])), ([], sorted(files)))
        self.assertEqual((self.folder / "manifest.json").read_text(), manifest)
        self.assertEqual({f: common.file_sha256(self.folder / f) for f in files}, files)


if __name__ == "__main__":
    unittest.main()


class ContinuedTrainingCardTest(unittest.TestCase):
    """A run continued with --init-from records the runs before it; the card reports the whole training."""

    def test_the_card_sums_every_run_and_gives_each_runs_command(self):
        args1 = {"objective": "mdm", "run_name": "first", "lr": 0.002, "threads": 1, "init_from": None}
        first = {"args": args1, "step": 10, "train_tokens": 1000, "train_seconds": 60.0, "cpu_seconds": 60.0,
                 "metrics": {"valid_elbo_bits": 9.0}, "device": "cpu", "world": 1, "torch": "x"}
        args2 = {**args1, "run_name": "second", "lr": 0.001, "init_from": "runs/first/ckpt.pt"}
        cfg = {"n_layer": 2, "d_model": 64, "n_head": 2, "d_ff": 128, "vocab_size": 300, "max_seq_len": 128,
               "attention": "full", "rope_base": 10000.0}
        second = {**first, "args": args2, "train_tokens": 3000, "train_seconds": 120.0, "config": cfg,
                  "metrics": {"valid_elbo_bits": 8.0}, "lineage": [checkpoint.training_stage(first)]}
        meta = {"unmask.span_buckets": "[8]", "unmask.quantization": "none", "unmask.top_k": "64"}
        text = card.model_card("m", second, meta, [], [], {}, {}, 0, None)
        self.assertIn("trained for 3 minutes on 1 CPU thread(s) of a shared 2-core machine in 2 runs", text)
        self.assertIn("has seen only 0.0M tokens", text)
        self.assertIn("`first`: 10 steps, 1,000 tokens, 60 s, peak lr 0.002, valid ELBO 9.000; in all 4,000 tokens", text)
        self.assertIn("python -m scripts.train_pretrain --objective mdm --run-name first --lr 0.002 --threads 1\n", text)
        self.assertIn("python -m scripts.train_pretrain --objective mdm --run-name second --init-from runs/first/ckpt.pt --lr 0.001", text)


if __name__ == "__main__":
    unittest.main()
