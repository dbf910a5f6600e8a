"""The one checkpoint schema (unmask/checkpoint.py): what every stage writes, that checkpoints written before it
(pretrain's, rl's and distill's own dicts, the float16 files in weights/) still load, packing, and the card's
reproduce line of each stage.

Run from models/recipe/: python -m unittest tests.test_checkpoint
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import unittest

import torch

from unmask import card, checkpoint
from unmask.model import build_model

CONFIG = {"kind": "mdm", "n_layer": 1, "d_model": 16, "n_head": 2, "d_ff": 32, "vocab_size": 40, "max_seq_len": 32,
          "attention": "context_only"}
SPECIAL = {"pad": 0, "mask": 1, "eos": 2}


class Schema(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        torch.manual_seed(0)
        self.model = build_model(CONFIG)

    def tearDown(self):
        self.tmp.cleanup()

    def old_pretrain_ckpt(self, **extra) -> str:
        """A ckpt.pt as pretrain.py wrote it before checkpoint.py: no stage, no schema."""
        path = os.path.join(self.dir, "old.pt")
        torch.save({"model": self.model.state_dict(), "config": dict(self.model.config), "special": SPECIAL,
                    "tokenizer": "/elsewhere/tokenizer.json", "tokenizer_sha256": "ab" * 32, "step": 5,
                    "train_tokens": 500, "train_seconds": 9.0, "metrics": {"valid_elbo_bits": 7.0},
                    "args": {"objective": "mdm", "run_name": "old"}, "lineage": [], **extra}, path)
        return path

    def test_a_checkpoint_from_before_the_schema_loads_as_pretrain(self):
        model, ckpt = checkpoint.load_model(self.old_pretrain_ckpt())
        self.assertEqual((ckpt["stage"], ckpt["schema"], ckpt["lineage"]), ("pretrain", 1, []))
        for a, b in zip(model.state_dict().values(), self.model.state_dict().values()):
            self.assertTrue(torch.equal(a, b))

    def test_old_rl_and_distill_dicts_get_their_stage(self):
        rl = checkpoint.read(self.old_pretrain_ckpt(stage="rl", rl_rollouts=4))
        self.assertEqual(rl["stage"], "rl")
        student = checkpoint.read(self.old_pretrain_ckpt(teacher={"path": "t.pt"}))
        self.assertEqual(student["stage"], "distill")

    def test_save_writes_the_facts_beside_and_the_optimizer_only_when_asked(self):
        parent = checkpoint.read(self.old_pretrain_ckpt())
        opt = torch.optim.AdamW(self.model.parameters())
        ids, span = torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.bool)
        span[0, 4:] = True
        self.model(ids, torch.tensor([[4, 5]]), span_mask=span).sum().backward()
        opt.step()
        path = os.path.join(self.dir, "ckpt.pt")
        args = argparse.Namespace(objective="mdm", run_name="new", init_from="old.pt")
        checkpoint.save(path, self.model.state_dict(), stage="pretrain", config=CONFIG, special=SPECIAL,
                        tokenizer="tok.json", tokenizer_sha256="cd" * 32, lineage=checkpoint.lineage_after(parent),
                        args=args, step=7, train_tokens=700, train_seconds=3.0, metrics={}, device="cpu", world=1,
                        optimizer=opt.state_dict())
        ckpt = checkpoint.read(path)
        self.assertEqual((ckpt["schema"], ckpt["stage"], ckpt["args"]["run_name"]), (checkpoint.SCHEMA, "pretrain", "new"))
        self.assertEqual([(s["stage"], s["step"]) for s in ckpt["lineage"]], [("pretrain", 5)])
        self.assertIn("state", ckpt["optimizer"])
        with open(os.path.join(self.dir, "ckpt.meta.json")) as f:
            meta = json.load(f)
        self.assertNotIn("model", meta)
        self.assertNotIn("optimizer", meta)
        self.assertEqual(meta["tokenizer_sha256"], "cd" * 32)
        self.assertFalse(os.path.exists(path + ".tmp"))

        packed = checkpoint.pack(ckpt)
        self.assertNotIn("optimizer", packed)
        self.assertEqual(packed["model_fp16z"]["codec"], checkpoint.FP16Z_CODEC)
        self.assertFalse(any(v.is_floating_point() for v in packed["model"].values()))
        torch.save(packed, os.path.join(self.dir, "packed.pt"))
        again = checkpoint.read(os.path.join(self.dir, "packed.pt"))
        self.assertNotIn("model_fp16z", again)
        self.assertEqual(set(again["model"]), set(ckpt["model"]))
        for name, tensor in ckpt["model"].items():  # lossless against float16
            expected = tensor.half() if tensor.is_floating_point() else tensor
            self.assertTrue(torch.equal(again["model"][name], expected), name)
        model, again = checkpoint.load_model(os.path.join(self.dir, "packed.pt"))  # float16 into the float32 model
        self.assertEqual((again["stage"], again["step"]), ("pretrain", 7))
        self.assertEqual(next(model.parameters()).dtype, torch.float32)

    def test_packed_weights_refuse_an_unknown_codec_or_truncated_planes(self):
        state = {"w": torch.randn(3, 5).half(), "b": torch.randn(5).half()}
        record = checkpoint.compress_fp16(state)
        back = checkpoint.decompress_fp16(record)
        self.assertEqual(list(back), ["w", "b"])
        self.assertTrue(all(torch.equal(back[k], state[k]) for k in state))
        with self.assertRaisesRegex(ValueError, "unknown codec"):
            checkpoint.decompress_fp16({**record, "codec": "float16-raw"})
        with self.assertRaisesRegex(ValueError, "planes of"):
            checkpoint.decompress_fp16({**record, "shapes": [[3, 5], [6]]})

    def test_the_card_gives_each_stage_its_own_command(self):
        pretrain = {"stage": "pretrain", "args": {"objective": "ar", "run_name": "a", "fim_rate": 0.5}}
        distill = {"stage": "distill", "args": {"teacher": "runs/m/ckpt.pt", "run_name": "d"}}
        rl = {"stage": "rl", "args": {"init_from": "runs/d/student.pt", "run_name": "r"}}
        self.assertEqual(card.stage_command(pretrain),
                         "python -m scripts.train_pretrain --objective ar --run-name a --fim-rate 0.5")
        self.assertEqual(card.stage_command(distill),
                         "python -m scripts.train_distill --teacher runs/m/ckpt.pt --run-name d")
        self.assertEqual(card.stage_command(rl), "python -m scripts.train_rl --init-from runs/d/student.pt --run-name r")


if __name__ == "__main__":
    unittest.main()
