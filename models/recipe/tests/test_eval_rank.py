"""Unit tests for the ranking measurement (scripts/eval_rank.py) on hand-made rows. Run:
python -m unittest tests.test_eval_rank"""

import unittest

from scripts.eval_rank import score


def row(text, log_prob=-1.0, conf=0.5, **extra):
    return {"text": text, "log_prob": log_prob, "mean_confidence": conf, **extra}


class Rankings(unittest.TestCase):
    def setUp(self):
        # Task 1: the CLI ranks a wrong row first; two of three rows share the right first line.
        # Task 2: the CLI's first row is right. Task 3: no row is right. Task 4: the CLI failed (no candidates).
        self.tasks = [{"target": "x = 1\n"}, {"target": "return y\n"}, {"target": "pass\n"}, {"target": "z\n"}]
        self.answers = [
            {"candidates": [row("x = 2", -0.5, 0.9), row("x = 1", -3.0, 0.4), row("x = 1\nfoo", -2.0, 0.3)]},
            {"candidates": [row("return y", -1.0, 0.2), row("return", -0.1, 0.8)]},
            {"candidates": [row("raise", -1.0), row("continue", -2.0)]},
            {"error": "boom"},
        ]

    def table(self):
        return {r["ranking"]: r for r in score(self.tasks, self.answers)}

    def test_each_ranking_scores_its_first_row(self):
        t = self.table()
        self.assertEqual(t["cli"]["tasks"], 3, "a task the CLI did not answer is left out")
        self.assertAlmostEqual(t["cli"]["first_line_exact"], 1 / 3)
        self.assertAlmostEqual(t["vote"]["first_line_exact"], 2 / 3, msg="the shared first line wins task 1")
        self.assertAlmostEqual(t["confidence"]["first_line_exact"], 0.0)
        self.assertAlmostEqual(t["log-prob sum"]["first_line_exact"], 0.0)
        self.assertAlmostEqual(t["best"]["first_line_exact"], 2 / 3, msg="the upper bound: right where any row is")
        self.assertNotIn("reward", t, "no discriminator: no reward ranking")
        self.assertNotIn("pll", t, "no --rescore: no rescored rankings")

    def test_rescored_rankings_when_every_row_has_them(self):
        # pll puts task 1's right second row first and keeps the others' order; ltr prefers the last rows.
        pll = [[-2.0, -0.5, -1.0], [-0.1, -0.2], [-1.0, -1.0]]
        for a, scores in zip(self.answers[:3], pll):
            for i, (r, s) in enumerate(zip(a["candidates"], scores)):
                r["pll"] = s
                r["ltr"] = float(i)
        t = self.table()
        self.assertAlmostEqual(t["pll"]["first_line_exact"], 2 / 3, msg="tasks 1 and 2 right")
        self.assertAlmostEqual(t["ltr"]["first_line_exact"], 1 / 3, msg="task 1's last row only")
        del self.answers[0]["candidates"][1]["ltr"]
        self.assertNotIn("ltr", self.table(), "a row without the score drops its ranking")

    def test_reward_ranking_when_every_row_has_one(self):
        for a in self.answers[:3]:
            for i, r in enumerate(a["candidates"]):
                r["reward"] = float(i)  # the last row is the most rewarded
        t = self.table()
        self.assertAlmostEqual(t["reward"]["first_line_exact"], 1 / 3)


if __name__ == "__main__":
    unittest.main()
