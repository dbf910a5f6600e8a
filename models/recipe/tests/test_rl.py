"""Tests of the RL stage: the verifiable rewards (weights, parsers, compile checks, doctests, anti-gaming), the
coupled-GRPO pieces (leave-one-out advantages, complementary masks, the log-prob proxy, PPO-clip and k3) and a
one-step end-to-end run on a random-weight model.

Run: python -m unittest tests.test_rl   (from models/recipe/)
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import random
import tempfile
import unittest

import torch
import torch.nn as nn


from unmask import checkpoint, common
from unmask import rewards, syntax
from scripts import train_rl as rl
from unmask import tasks as tasks_mod
from tests import test_eval  # its tiny tokenizer and sample files

torch.set_num_threads(1)

DOCTESTED = '''"""A module with one doctested function."""
print("import-time noise must not reach the test result")


def add(a, b):
    """Adds two numbers.

    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    >>> 1 + 1
    2
    """
    total = a + b
    return total


VALUE = 3
'''
TOTAL_LINE = "    total = a + b\n"


def task_for(text: str, target: str, language: str = "python", path: str = "pkg/mod.py", **extra) -> dict:
    """A task whose hole is the first occurrence of `target` in `text`."""
    start = text.index(target)
    end = start + len(target)
    return {"id": f"t-{language}-{start}", "language": language, "kind": "single-line", "path": path, "file": text,
            "start": start, "end": end, "target": target, "prefix": text[:start], "suffix": text[end:],
            "target_tokens": 4, **extra}


def doctest_task(examples=(0, 1)) -> dict:
    tests = {"kind": "doctest", "module": "unmask_fixture_add", "filename": "unmask_fixture_add.py",
             "qualname": "add", "docstring": rewards.doctested_functions(DOCTESTED)[0]["docstring"],
             "examples": list(examples)}
    return task_for(DOCTESTED, TOTAL_LINE, path="usr/lib/python3.11/unmask_fixture_add.py", tests=tests)


class Gaming(unittest.TestCase):
    TEXT = "def f(x):\n    y = compute_something(x)\n    return y + offset_value\n"
    TASK = task_for(TEXT, "    y = compute_something(x)\n")

    def test_the_original_code_is_never_gaming(self):
        self.assertIsNone(rewards.gaming_reason("    y = compute_something(x)\n", self.TASK))

    def test_an_empty_completion_is_gaming_unless_the_original_is_empty(self):
        self.assertEqual(rewards.gaming_reason("  \n", self.TASK), "empty")
        self.assertIsNone(rewards.gaming_reason("", dict(self.TASK, target="")))

    def test_copying_the_start_of_the_suffix_or_the_end_of_the_prefix_is_gaming(self):
        self.assertEqual(rewards.gaming_reason("    return y + offset_value\n", self.TASK), "copies-suffix")
        self.assertEqual(rewards.gaming_reason("def f(x):\n", self.TASK), "copies-prefix")

    def test_a_short_repeat_of_the_context_is_not_called_a_copy(self):
        self.assertIsNone(rewards.gaming_reason("    return", self.TASK))

    def test_degenerate_repetition_is_gaming_but_repetitive_code_shapes_are_not(self):
        self.assertEqual(rewards.gaming_reason("x = x\nx = x\nx = x\n", self.TASK), "repetition")
        self.assertEqual(rewards.gaming_reason("foo foo foo foo foo foo", self.TASK), "repetition")
        self.assertEqual(rewards.gaming_reason("a.b(a.b(a.b(a.b(", self.TASK), "repetition")
        for shape in ("}\n}\n}\n", "    z = [0, 0, 0]\n", "a = 1\nb = 2\nc = 3\n"):
            self.assertIsNone(rewards.gaming_reason(shape, self.TASK), shape)

    def test_repetition_is_allowed_when_the_original_repeats_the_same_way(self):
        task = dict(self.TASK, target="pad pad pad pad pad pad")
        self.assertIsNone(rewards.gaming_reason("pad pad pad pad pad pad pad", task))


class Parsers(unittest.TestCase):
    def test_python_tells_a_syntax_error_from_code_that_parses_but_does_not_compile(self):
        self.assertEqual(syntax.python_check("x = 1\n"), (True, True))
        self.assertEqual(syntax.python_check("return 1\n"), (True, False))
        self.assertEqual(syntax.python_check("def f(:\n"), (False, False))

    def test_module_names_follow_the_installed_layout(self):
        cases = {"usr/lib/python3/dist-packages/sympy/core/add.py": "sympy.core.add",
                 "usr/lib/python3.11/fractions.py": "fractions",
                 "usr/lib/python3.11/importlib/metadata/__init__.py": "importlib.metadata",
                 "src/tool.py": "tool"}
        for path, name in cases.items():
            self.assertEqual(rewards.module_name(path), name)

    def test_one_node_process_answers_typescript_syntax_checks_in_order(self):
        text = "export function f(a: number): number {\n  return a + 1;\n}\n"
        task = task_for(text, "  return a + 1;\n", language="typescript", path="src/f.ts")
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=1)) as scorer:
            rows = scorer.score([task] * 3, ["  return a + 2;\n", "  return a +;\n", "  return (a as number) * 2;\n"])
            pid = scorer.syntax.proc.pid
            scorer.score([task], ["  return a;\n"])
            self.assertEqual(scorer.syntax.proc.pid, pid)
        self.assertEqual([r.parses for r in rows], [True, False, True])

    def test_the_type_check_counts_only_diagnostics_the_completion_adds(self):
        text = "import { g } from './missing';\nexport function f(a: number): number {\n  return a + g;\n}\n"
        task = task_for(text, "  return a + g;\n", language="typescript", path="src/f.ts")
        with rewards.RewardScorer(rewards.RewardConfig(ts_typecheck=True, test_workers=1)) as scorer:
            rows = scorer.score([task] * 3, ["  return a + g;\n", "  return a + undefinedName;\n",
                                             "  return 'text';\n"])
        self.assertEqual([r.compiles for r in rows], [True, False, False])
        self.assertEqual([r.format for r in rows], [1.0, 0.5, 0.5])


class Doctests(unittest.TestCase):
    def test_tested_tasks_keep_only_examples_that_pass_on_the_original_and_fail_on_the_probe(self):
        record = {"package": "fixture", "version": "1", "path": "usr/lib/python3.11/unmask_fixture_add.py",
                  "language": "python", "text": DOCTESTED}
        with tempfile.TemporaryDirectory() as tmp:
            counter = tasks_mod.TokenCounter(test_eval.make_tokenizer(tmp))
            found = rewards.find_tested_tasks([record], counter, random.Random(0), max_tasks=1, context_tokens=200,
                                              max_span_tokens=32, timeout=20.0, workers=1, log=lambda _: None)
        self.assertEqual(len(found), 1)
        task = found[0]
        self.assertEqual(task["tests"]["qualname"], "add")
        self.assertEqual(task["tests"]["examples"], [0, 1])  # `1 + 1` does not run the hole's code
        self.assertIn(task["target"], (TOTAL_LINE, "    return total\n", TOTAL_LINE + "    return total\n"))

    def test_the_pass_rate_is_the_correctness_and_tests_run_only_on_code_that_parses(self):
        task = doctest_task()
        completions = [TOTAL_LINE, "    total = b + a + 0\n", "    total = a - b\n", "    total = a +\n"]
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=2, test_timeout=20.0)) as scorer:
            rows = scorer.score([task] * 4, completions)
        self.assertEqual([(r.tests_passed, r.tests_total) for r in rows], [(2, 2), (2, 2), (0, 2), (0, 2)])
        # 2.0 * pass rate + 0.5 * format (1 when it parses, 0.5 on a syntax error).
        self.assertEqual([r.reward for r in rows], [2.5, 2.5, 0.5, 0.25])
        self.assertFalse(rows[3].parses)

    def test_a_group_that_writes_the_same_completion_runs_its_tests_once(self):
        task = doctest_task()
        completions = [TOTAL_LINE, "    total = a - b\n", TOTAL_LINE, TOTAL_LINE, "    total = a - b\n"]
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=1, test_timeout=20.0)) as scorer:
            submitted = []
            submit = scorer.pool.submit
            scorer.pool.submit = lambda *a, **k: submitted.append(a) or submit(*a, **k)
            rows = scorer.score([task] * 5, completions)
        self.assertEqual(len(submitted), 2)
        self.assertEqual([r.tests_passed for r in rows], [2, 0, 2, 2, 0])

    def test_tasks_that_fill_the_same_file_but_test_other_examples_run_their_own_tests(self):
        task = doctest_task()
        other = dict(task, tests=dict(task["tests"], docstring=">>> add(1, 1)\n2\n"))  # one example, not three
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=1, test_timeout=20.0)) as scorer:
            submitted = []
            submit = scorer.pool.submit
            scorer.pool.submit = lambda *a, **k: submitted.append(a) or submit(*a, **k)
            rows = scorer.score([task, other], [TOTAL_LINE, TOTAL_LINE])
        self.assertEqual(len(submitted), 2)
        self.assertEqual([r.tests_passed for r in rows], [2, 1])

    def test_a_completion_that_hangs_is_killed_at_the_timeout_and_fails(self):
        task = doctest_task()
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=1, test_timeout=1.5)) as scorer:
            row = scorer.score([task], ["    while True: pass\n"])[0]
        self.assertEqual((row.tests_passed, row.reward), (0, 0.5))


class RewardWeights(unittest.TestCase):
    TEXT = "def f(x):\n    y = compute_something(x)\n    return y + offset_value\n"
    TASK = task_for(TEXT, "    y = compute_something(x)\n")

    def score(self, completions, **config):
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=1, **config)) as scorer:
            return scorer.score([self.TASK] * len(completions), completions)

    def test_untested_tasks_use_similarity_to_the_original_as_correctness(self):
        exact, near, broken, gamed = self.score(["    y = compute_something(x)\n", "    y = compute_other(x)\n",
                                                 "    y = compute_something(x\n", ""])
        self.assertEqual(exact.reward, 2.5)
        self.assertTrue(0.5 < near.reward < 2.5)
        self.assertAlmostEqual(near.reward, 2.0 * near.similarity + 0.5)
        self.assertEqual(broken.reward, 0.25)  # no correctness without parsing
        self.assertEqual(gamed.reward, -1.0)

    def test_exact_and_none_reference_modes(self):
        near = "    y = compute_other(x)\n"
        self.assertEqual(self.score([near], reference="exact")[0].reward, 0.5)
        self.assertEqual(self.score([near], reference="none")[0].reward, 0.5)
        # edit+line: half the similarity, half whether the first line is the original's.
        same_line = "    y = compute_something(x)\n    z = 1\n"
        for completion, line in ((near, 0.0), (same_line, 1.0)):
            row = self.score([completion], reference="edit+line")[0]
            self.assertAlmostEqual(row.reward, 2.0 * (row.similarity + line) / 2 + 0.5)
        # edit+line+exact: a right first line followed by a line too many earns its line but not the exact third.
        exact = "    y = compute_something(x)\n"
        for completion, line, whole in ((near, 0.0, 0.0), (same_line, 1.0, 0.0), (exact, 1.0, 1.0)):
            row = self.score([completion], reference="edit+line+exact")[0]
            self.assertAlmostEqual(row.reward, 2.0 * (row.similarity + line + whole) / 3 + 0.5)
        self.assertEqual(self.score([exact], reference="edit+line+exact")[0].reward, 2.5)
        # line: the first line alone, right or wrong; what follows it does not count.
        self.assertEqual([self.score([c], reference="line")[0].reward for c in (near, same_line, exact)], [0.5, 2.5, 2.5])
        with self.assertRaises(ValueError):
            rewards.RewardConfig(reference="nearly")

    def test_code_that_parses_but_does_not_compile_loses_half_its_format_score(self):
        text = "x = 1\ny = 2\n"
        task = task_for(text, "y = 2\n")
        with rewards.RewardScorer(rewards.RewardConfig(test_workers=1, reference="none")) as scorer:
            row = scorer.score([task], ["return 2\n"])[0]
        self.assertEqual((row.parses, row.compiles, row.reward), (True, False, 0.25))


class CoupledGRPO(unittest.TestCase):
    def test_leave_one_out_advantages_subtract_the_mean_of_the_other_rollouts(self):
        r = torch.tensor([1.0, 2.0, 3.0, 6.0, 5.0, 5.0, 5.0, 5.0])
        adv = rl.leave_one_out(r, 4)
        self.assertTrue(torch.allclose(adv[:4], torch.tensor([1 - 11 / 3, 2 - 10 / 3, 3 - 3.0, 6 - 2.0])))
        self.assertTrue(torch.equal(adv[4:], torch.zeros(4)))

    def test_coupled_masks_are_complements_over_the_span_and_never_touch_the_rest(self):
        valid = torch.zeros(64, 40, dtype=torch.bool)
        for i in range(64):
            valid[i, :8 + i % 32] = True
        t, m1, m2 = rl.draw_masks(valid, 0.2, 0.8, False, torch.Generator().manual_seed(0))
        self.assertTrue(bool(((t >= 0.2) & (t <= 0.8)).all()))
        self.assertFalse(bool((m1 & m2).any()))
        self.assertTrue(torch.equal(m1 | m2, valid))

    def test_decoupled_masks_are_independent_draws_at_rates_t_and_one_minus_t(self):
        valid = torch.ones(400, 64, dtype=torch.bool)
        t, m1, m2 = rl.draw_masks(valid, 0.2, 0.8, True, torch.Generator().manual_seed(0))
        self.assertTrue(bool((m1 & m2).any()))
        self.assertTrue(bool((~m1 & ~m2).any()))
        self.assertAlmostEqual(m1.float().mean().item(), t.mean().item(), delta=0.02)
        self.assertAlmostEqual(m2.float().mean().item(), 1 - t.mean().item(), delta=0.02)
        self.assertFalse(bool((m1 | m2)[~valid].any()))

    def test_the_proxy_averages_the_fully_masked_pass_with_the_pass_that_masked_the_token_over_its_rate(self):
        MASK = 1

        class CountingScorer(nn.Module):
            """log p at a masked position = -(1 + masked tokens in the row); at a visible position +100, which
            must never reach the proxy."""

            def __init__(self):
                super().__init__()
                self.calls = 0

            def forward(self, ids, positions, targets, span, keypad):
                self.calls += 1
                at = ids.gather(1, positions)  # [R, S]
                count = (ids == MASK).sum(1, keepdim=True).float()
                return torch.where(at == MASK, -(1 + count), torch.full_like(count, 100.0).expand_as(at))

        N, T, S, start = 2, 12, 6, 3
        ids = torch.randint(5, 9, (N, T))
        positions = (start + torch.arange(S)).expand(N, S).clone()
        valid = torch.ones(N, S, dtype=torch.bool)
        valid[1, 4:] = False
        positions[1, 4:] = 0
        span = torch.zeros(N, T, dtype=torch.bool)
        span[0, start:start + S] = True
        span[1, start:start + 4] = True
        r = rl.Rollouts(ids, span, torch.zeros(N, T, dtype=torch.bool), positions, valid, valid.clone(),
                        ids.gather(1, positions), ["", ""])
        for decoupled in (False, True):
            t, m1, m2 = rl.draw_masks(valid, 0.2, 0.8, decoupled, torch.Generator().manual_seed(3))
            scorer = CountingScorer()
            proxy = rl.proxy_logps(scorer, r, slice(0, N), t, m1, m2, MASK, torch.device("cpu"))
            self.assertEqual(scorer.calls, 1)  # one forward pass over the 3N stacked canvases, either way
            for i in range(N):
                n_full, n1, n2 = valid[i].sum().item(), m1[i].sum().item(), m2[i].sum().item()
                for s in range(S):
                    if not valid[i, s]:
                        continue
                    want = -(1 + n_full)
                    if m1[i, s]:
                        want += -(1 + n1) / t[i].item()
                    if m2[i, s]:
                        want += -(1 + n2) / (1 - t[i].item())
                    self.assertAlmostEqual(proxy[i, s].item(), want / 2, places=4)

    def test_ppo_clip_and_k3(self):
        proxy = torch.tensor([[0.0, math.log(2.0), math.log(0.25)]])
        old = torch.zeros(1, 3)
        loss, k3, clipped = rl.grpo_token_loss(proxy, old, proxy.clone(), torch.tensor([1.0]), 0.5, 0.01)
        self.assertTrue(torch.allclose(k3, torch.zeros(1, 3)))
        self.assertTrue(torch.allclose(loss, -torch.tensor([[1.0, 1.5, 0.25]])))  # min(r A, clip(r) A), A > 0
        self.assertEqual(clipped.tolist(), [[False, True, False]])
        _, _, clipped_neg = rl.grpo_token_loss(proxy, old, proxy, torch.tensor([-1.0]), 0.5, 0.01)
        self.assertEqual(clipped_neg.tolist(), [[False, False, True]])
        _, k3, _ = rl.grpo_token_loss(torch.zeros(1, 3), old, torch.tensor([[-1.0, 0.5, 2.0]]), torch.ones(1), 0.5, 0.01)
        self.assertTrue(bool((k3 > 0).all()))

    def test_a_positive_advantage_makes_its_rollout_more_likely_and_a_negative_one_less(self):
        from unmask.model import build_model

        torch.manual_seed(0)
        model = build_model({"kind": "mdm", "n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64, "vocab_size": 40,
                             "max_seq_len": 32}).eval()
        N, T, S, start = 2, 16, 5, 6
        ids = torch.randint(11, 40, (N, T))
        positions = (start + torch.arange(S)).expand(N, S).clone()
        span = torch.zeros(N, T, dtype=torch.bool)
        span[:, start:start + S] = True
        valid = torch.ones(N, S, dtype=torch.bool)
        r = rl.Rollouts(ids, span, torch.zeros(N, T, dtype=torch.bool), positions, valid, valid, ids.gather(1, positions),
                        ["", ""])
        masks = rl.draw_masks(valid, 0.2, 0.8, False, torch.Generator().manual_seed(0))
        scorer = rl.SpanLogProbs(model)
        before = rl.proxy_logps(scorer, r, slice(0, N), *masks, 1, torch.device("cpu")).detach()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        proxy = rl.proxy_logps(scorer, r, slice(0, N), *masks, 1, torch.device("cpu"))
        loss, _, _ = rl.grpo_token_loss(proxy, proxy.detach(), before, torch.tensor([1.0, -1.0]), 0.5, 0.0)
        loss.mean().backward()
        opt.step()
        after = rl.proxy_logps(scorer, r, slice(0, N), *masks, 1, torch.device("cpu")).detach()
        self.assertGreater(after[0].sum().item(), before[0].sum().item())
        self.assertLess(after[1].sum().item(), before[1].sum().item())

    def test_the_shared_context_scorer_gives_the_full_scorers_proxy(self):
        from unmask.model import build_model

        torch.manual_seed(0)
        model = build_model({"kind": "mdm", "n_layer": 2, "d_model": 32, "n_head": 2, "d_ff": 64, "vocab_size": 40,
                             "max_seq_len": 32, "attention": "context_only"}).eval()
        N, T, S = 5, 20, 6
        prompt_a, prompt_b = torch.randint(11, 40, (T,)), torch.randint(11, 40, (T,))
        ids = torch.stack([prompt_a, prompt_a, prompt_b, prompt_a, prompt_b])
        starts, sizes, lengths = [4, 4, 9, 4, 9], [6, 6, 4, 6, 4], [20, 20, 16, 20, 16]
        span = torch.zeros(N, T, dtype=torch.bool)
        keypad = torch.zeros(N, T, dtype=torch.bool)
        positions = torch.zeros(N, S, dtype=torch.long)
        valid = torch.zeros(N, S, dtype=torch.bool)
        for i in range(N):
            span[i, starts[i]:starts[i] + sizes[i]] = True
            keypad[i, lengths[i]:] = True
            ids[i, lengths[i]:] = 0
            ids[i, starts[i]:starts[i] + sizes[i]] = torch.randint(11, 40, (sizes[i],))  # each rollout its own fill
            positions[i, :sizes[i]] = torch.arange(starts[i], starts[i] + sizes[i])
            valid[i, :sizes[i]] = True
        r = rl.Rollouts(ids, span, keypad, positions, valid, valid.clone(), ids.gather(1, positions), [""] * N)
        masks = rl.draw_masks(valid, 0.2, 0.8, False, torch.Generator().manual_seed(0))
        with torch.no_grad():
            full = rl.proxy_logps(rl.SpanLogProbs(model), r, slice(0, N), *masks, 1, torch.device("cpu"))
            shared = rl.proxy_logps(rl.SpanLogProbs(model, shared_context=True), r, slice(0, N), *masks, 1,
                                    torch.device("cpu"))
        self.assertTrue(torch.allclose(shared[valid], full[valid], atol=1e-4), (shared - full)[valid].abs().max())


class EndToEnd(unittest.TestCase):
    def test_one_rl_step_on_a_random_model_logs_and_saves_a_loadable_checkpoint(self):
        from unmask.model import build_model

        with tempfile.TemporaryDirectory() as tmp:
            tokenizer_path = test_eval.make_tokenizer(tmp)
            special = common.read_special_ids(tokenizer_path)
            corpus = os.path.join(tmp, "corpus")
            os.makedirs(corpus)
            for split in ("train", "valid"):
                with gzip.open(os.path.join(corpus, f"{split}.jsonl.gz"), "wt") as f:
                    for record in test_eval.sample_records():
                        f.write(json.dumps(record) + "\n")
            with open(tokenizer_path) as f:
                vocab = len(json.load(f)["model"]["vocab"])
            torch.manual_seed(0)
            model = build_model({"kind": "mdm", "n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64,
                                 "vocab_size": vocab, "max_seq_len": 128})
            init = os.path.join(tmp, "init.pt")
            torch.save({"model": model.state_dict(), "config": dict(model.config), "special": special,
                        "tokenizer": tokenizer_path, "step": 7, "train_tokens": 100}, init)
            common_args = ["--init-from", init, "--runs-dir", tmp, "--train", os.path.join(corpus, "train.jsonl.gz"),
                           "--valid", os.path.join(corpus, "valid.jsonl.gz"), "--pool-per-cell", "2",
                           "--eval-per-cell", "1", "--max-tested", "0", "--max-span-tokens", "16",
                           "--prompts-per-step", "2", "--group-size", "3", "--steps", "2", "--max-steps", "1",
                           "--eval-every", "1", "--threads", "1", "--test-workers", "1", "--device", "cpu"]
            rl.main(common_args + ["--run-name", "coupled"])
            # The ablation also cycles two step counts (later flags override common_args).
            rl.main(common_args + ["--run-name", "decoupled", "--decoupled", "--steps", "2,1", "--max-steps", "2",
                                   "--pool", os.path.join(tmp, "coupled", "pool.jsonl")])
            for name in ("coupled", "decoupled"):
                with open(os.path.join(tmp, name, "log.jsonl")) as f:
                    lines = [json.loads(line) for line in f]
                step = next(line for line in lines if "reward" in line)
                for key in ("reward", "syntax_valid", "kl", "clip_frac", "loss", "edit_similarity", "gaming"):
                    self.assertIn(key, step)
                self.assertIn("valid_reward", lines[0])
                self.assertTrue(lines[-1]["done"])
                policy, ckpt = checkpoint.load_model(os.path.join(tmp, name, "last.pt"))
                for key in ("model", "config", "special", "tokenizer", "step", "train_tokens", "metrics", "args"):
                    self.assertIn(key, ckpt)
                rl_steps = [line for line in lines if "reward" in line]
                self.assertEqual([line["sampler_steps"] for line in rl_steps], [2] if name == "coupled" else [2, 1])
                self.assertEqual((ckpt["stage"], ckpt["step"], ckpt["base"]["step"]), ("rl", len(rl_steps), 7))
                # A checkpoint from before checkpoint.py (no stage) reads as pretrain and heads the lineage.
                self.assertEqual([(s["stage"], s["step"]) for s in ckpt["lineage"]], [("pretrain", 7)])
                self.assertEqual(ckpt["tokenizer_sha256"], common.file_sha256(tokenizer_path))
                self.assertTrue(os.path.exists(os.path.join(tmp, name, "ckpt.pt")))
            with open(os.path.join(tmp, "coupled", "pool.jsonl")) as f:
                pool = [json.loads(line) for line in f]
            self.assertEqual({t["split"] for t in pool}, {"train", "valid"})

    def test_step_counts_parse_one_count_or_a_list_and_refuse_the_rest(self):
        self.assertEqual(rl.parse_args(["--init-from", "x", "--run-name", "r"]).steps, [8])
        self.assertEqual(rl.parse_args(["--init-from", "x", "--run-name", "r", "--steps", "8,4"]).steps, [8, 4])
        for bad in ("0", "8,x", ""):
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                rl.parse_args(["--init-from", "x", "--run-name", "r", "--steps", bad])

    def test_the_test_split_is_refused(self):
        with self.assertRaises(SystemExit):
            rl.read_split("/somewhere/test.jsonl.gz", 1000)


if __name__ == "__main__":
    unittest.main()
