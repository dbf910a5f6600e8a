"""Tests of the reward stage: data_reward.py's labelled canvases, train_reward.py's losses and its run on a tiny
random-weight teacher, and export_disc.py --disc (seconds on one CPU thread, no corpus, no tokenizer).

Run: python -m unittest tests.test_reward   (from models/recipe/)
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import tempfile
import unittest
from pathlib import Path

import onnx
import torch

from scripts import data_reward, export_disc, train_reward
from tests.test_distill import EOS, SPECIAL, V, tiny_teacher
from unmask.discriminator import load_discriminator

torch.set_num_threads(1)


class Canvases(unittest.TestCase):
    def test_rows_are_scored_as_inserted(self):
        canvas = [5, 6, 20, EOS, 21, 22, 7]
        self.assertEqual(data_reward.eos_after_first(canvas, [2, 3, 4, 5], EOS), [5, 6, 20, EOS, EOS, EOS, 7])
        self.assertEqual(data_reward.eos_after_first([5, 20, 21, 7], [1, 2], EOS), [5, 20, 21, 7], "no end: unchanged")

    def test_the_target_fills_the_span_then_end_of_span(self):
        self.assertEqual(data_reward.target_canvas([5, 30, 31, 32, 33, 7], [1, 2, 3, 4], [40, 41], EOS),
                         [5, 40, 41, EOS, EOS, 7])
        self.assertIsNone(data_reward.target_canvas([5, 30, 31, 7], [1, 2], [40, 41], EOS),
                          "a target with no room for its end-of-span is left out")

    def test_examples_label_rows_by_their_first_line_and_put_the_healed_text_before_the_target(self):
        task = {"id": "t", "language": "python", "kind": "rest-of-line", "target": "ar(x)\n"}
        answer = {"span": [2, 3, 4, 5], "healed": "b",
                  "rows": [{"text": "ar(x)", "canvas": [5, 6, 50, 51, EOS, 52, 7]},
                           {"text": "az", "canvas": [5, 6, 53, EOS, EOS, EOS, 7]}],
                  "candidates": [{"text": "ar(x)", "score": -0.5, "log_prob": -2.0, "mean_confidence": 0.5}]}
        encoded = []

        def encode(text):
            encoded.append(text)
            return [60, 61]

        ex = data_reward.examples(task, answer, encode, EOS)
        self.assertEqual(encoded, ["bar(x)\n"])
        self.assertEqual([(it["source"], it["label"]) for it in ex["items"]], [("target", 1), ("model", 1), ("model", 0)])
        self.assertEqual(ex["items"][0]["canvas"], [5, 6, 60, 61, EOS, EOS, 7])
        self.assertEqual(ex["items"][1]["canvas"], [5, 6, 50, 51, EOS, EOS, 7], "the token after end-of-span is gone")
        self.assertEqual(ex["items"][1]["score"], -0.5)
        self.assertEqual([it.get("similarity") for it in ex["items"]], [None, 1.0, 0.2], "first lines ar(x) and az: 4 edits in 5")
        self.assertIsNone(ex["items"][2]["score"], "a row the CLI merged away has no ranking score")
        self.assertIsNone(data_reward.examples(task, {"error": "boom"}, encode, EOS))


def synthetic_task(i: int, right: list[int], T: int = 40) -> dict:
    """A task whose items are the target and rows whose span starts with a token that says whether it is right."""
    g = torch.Generator().manual_seed(i)
    context = torch.randint(11, V, (T,), generator=g).tolist()
    context[0] = SPECIAL["lang:python"]
    span = list(range(10, 18))

    def canvas(first: int) -> list[int]:
        c = list(context)
        c[10:18] = [first, 30, 31, EOS, EOS, EOS, EOS, EOS]
        return c

    items = [{"source": "target", "label": 1, "canvas": canvas(20)}]
    items += [{"source": "model", "label": r, "canvas": canvas(20 if r else 21), "text": "x", "score": -1.0 + 0.1 * k}
              for k, r in enumerate(right)]
    return {"id": f"task-{i}", "language": "python", "kind": "single-line", "span": span, "items": items}


class Losses(unittest.TestCase):
    def setUp(self):
        self.args = train_reward.parse_args(["--teacher", "x"])

    def test_the_ranking_term_is_there_only_for_a_task_with_right_and_wrong_rows(self):
        for right, has_rank in (([1, 0, 0], True), ([0, 0], False), ([1, 1], False)):
            x = train_reward.task_tensors(synthetic_task(0, right))
            r = torch.zeros(len(right) + 1, requires_grad=True)
            loss, m = train_reward.task_loss(r, x, self.args)
            self.assertEqual("rank" in m, has_rank, right)
            loss.backward()
            self.assertTrue(torch.isfinite(r.grad).all())

    def test_descending_the_loss_raises_the_right_rows_reward(self):
        x = train_reward.task_tensors(synthetic_task(0, [0, 1, 0]))
        r = torch.zeros(4, requires_grad=True)
        train_reward.task_loss(r, x, self.args)[0].backward()
        self.assertLess(r.grad[2].item(), 0, "the right row's reward goes up")
        self.assertGreater(r.grad[1].item(), 0, "a wrong row's goes down")
        self.assertLess(r.grad[0].item(), 0, "the real code's goes up")

    def test_the_graded_term_ranks_closer_rows_higher_when_no_row_is_right(self):
        task = synthetic_task(0, [0, 0, 0])
        for it, sim in zip(task["items"][1:], (0.2, 0.9, 0.5)):
            it["similarity"] = sim
        x = train_reward.task_tensors(task)
        r = torch.zeros(4, requires_grad=True)
        _, m = train_reward.task_loss(r, x, self.args)
        self.assertNotIn("graded", m, "off by default")
        args = train_reward.parse_args(["--teacher", "x", "--graded-weight", "0.5"])
        loss, m = train_reward.task_loss(r, x, args)
        self.assertIn("graded", m)
        loss.backward()
        self.assertLess(r.grad[2].item(), 0, "the closest row's reward goes up")
        self.assertGreater(r.grad[1].item(), 0, "the farthest row's goes down")
        self.assertTrue(train_reward.graded(task))
        self.assertFalse(train_reward.graded(synthetic_task(0, [1, 0])), "a mixed task ranks by its labels")

    def test_the_split_is_stable_and_near_the_share(self):
        ids = [f"rw-py-line-{i:04d}" for i in range(2000)]
        share = sum(train_reward.is_valid(i, 0.15) for i in ids) / len(ids)
        self.assertAlmostEqual(share, 0.15, delta=0.03)
        self.assertEqual([train_reward.is_valid(i, 0.15) for i in ids[:50]],
                         [train_reward.is_valid(i, 0.15) for i in ids[:50]])

    def test_the_stream_draws_mixed_tasks_at_the_share_asked(self):
        tasks = [synthetic_task(i, [1, 0] if i < 10 else [0, 0]) for i in range(100)]
        stream = train_reward.task_stream(tasks, 0.5, random.Random(0))
        draws = [next(stream) for _ in range(1000)]
        self.assertAlmostEqual(sum(train_reward.mixed(t) for t in draws) / 1000, 0.5, delta=0.06)
        stream = train_reward.task_stream(tasks, 0.0, random.Random(0))
        self.assertEqual(sorted(t["id"] for t in (next(stream) for _ in range(100))), sorted(t["id"] for t in tasks),
                         "share 0: one pass is every task once")

    def test_only_mixed_tasks_validate(self):
        self.assertTrue(train_reward.mixed(synthetic_task(0, [1, 0])))
        self.assertFalse(train_reward.mixed(synthetic_task(0, [0, 0])))


class Run(unittest.TestCase):
    def test_a_short_run_learns_the_cue_and_exports_with_the_reward_contract(self):
        tmp = tempfile.mkdtemp()
        teacher, ckpt = tiny_teacher()
        torch.save({**ckpt, "stage": "pretrain"}, os.path.join(tmp, "tiny.pt"))
        data = os.path.join(tmp, "examples.jsonl.gz")
        with gzip.open(data, "wt") as f:
            for i in range(48):
                f.write(json.dumps(synthetic_task(i, [i % 2, 1 - i % 2, 0])) + "\n")
        with contextlib.redirect_stdout(io.StringIO()):
            best = train_reward.main(["--teacher", os.path.join(tmp, "tiny.pt"), "--data", data, "--runs-dir", tmp,
                                      "--run-name", "rw", "--max-steps", "30", "--tasks-per-step", "4",
                                      "--eval-every", "10", "--lr", "3e-3", "--warmup", "1", "--valid-share", "0.3",
                                      "--threads", "1"])
        self.assertGreater(best["top1_score_reward"], best["top1_score"],
                           "the right rows carry a token the reward can see; the scores prefer the wrong ones")
        disc, dckpt = load_discriminator(os.path.join(tmp, "rw", "disc.pt"))
        self.assertEqual(dckpt["stage"], "reward")
        out = Path(tmp, "model")
        out.mkdir()
        (out / "manifest.json").write_text(json.dumps({"files": []}))
        (out / "MODEL_CARD.md").write_text("# tiny\n\n## Evaluation\n\nkept\n")
        with contextlib.redirect_stdout(io.StringIO()):
            export_disc.main(["--disc", os.path.join(tmp, "rw", "disc.pt"), "--out", str(out), "--corpus-dir", tmp,
                              "--sources", os.path.join(tmp, "no-sources.json")])
        meta = {p.key: p.value for p in onnx.load(str(out / "disc.int8.onnx")).metadata_props}
        facts = json.loads(meta["unmask.disc"])
        self.assertEqual(facts["t_clean"], 0.0)
        self.assertIn("right first line", facts["real"])
        manifest = json.loads((out / "manifest.json").read_text())
        self.assertEqual(manifest["discriminator"]["default_file"], "disc.int8.onnx")
        card = (out / "MODEL_CARD.md").read_text()
        self.assertIn("## Reward model", card)
        self.assertIn("kept", card)


if __name__ == "__main__":
    unittest.main()
