"""Tests of the gate's calibration (scripts/eval_calibrate.py): its mirror of server/protocol/gate.ts, the logistic
fit, the threshold rule and the tables it prints from eval_heldout --per-task rows.

Run: python -m unittest tests.test_calibrate   (from models/recipe/)
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import unittest

import numpy as np

from scripts import eval_calibrate as cal


def gate(source="model", run=0, agrees=False, mid=False, agreement=0.0, first_line_min=0.5, score=None):
    out = {"source": source, "copy_run": run, "copy_agrees": agrees, "mid_line": mid, "agreement": agreement,
           "first_line_min": first_line_min, "first_line_mean": 0.5}
    if score is not None:
        out["score"] = score
    return out


class Mirror(unittest.TestCase):
    def test_the_score_is_gate_ts_formula(self):
        # The same features and weights as test/unit/protocol-gate.test.ts, the same number.
        weights = {"bias": -1, "copy": 0.5, "copyRunLog2": 0.25, "copyAgrees": 0.75, "midLine": 1, "agreement": 2,
                   "firstLineMin": -0.5}
        example = gate("copy", 12, False, True, 0.5, 0.25)
        self.assertAlmostEqual(cal.score(weights, example), 0.9064670266732868, places=12)

    def test_a_model_row_has_no_copy_features(self):
        self.assertEqual(cal.features(gate("model", run=40, agrees=False)), [0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
        self.assertEqual(cal.features(gate("copy", run=8, agrees=True, mid=True, agreement=1.0)),
                         [1.0, 3.0, 1.0, 1.0, 1.0, 0.5])

    def test_it_reads_the_weights_gate_ts_ships(self):
        shipped = cal.shipped_weights()
        self.assertIsNotNone(shipped, "gate.ts has a GATE_WEIGHTS block with every feature")
        self.assertEqual(set(shipped), {"bias", *cal.FEATURES})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "gate.ts")
            with open(path, "w") as f:
                f.write("export const GATE_WEIGHTS = Object.freeze({ bias: -1.5, copy: 2 });\n")
            self.assertIsNone(cal.shipped_weights(path), "a block that lacks features is not taken")


class Fit(unittest.TestCase):
    def test_the_fit_recovers_the_direction_of_each_feature(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4000, 2))
        y = (rng.random(4000) < 1 / (1 + np.exp(-(-1 + 2 * x[:, 0] - 1 * x[:, 1])))).astype(float)
        w = cal.fit(x, y, l2=0.0)
        self.assertAlmostEqual(w[0], -1, delta=0.2)
        self.assertAlmostEqual(w[1], 2, delta=0.25)
        self.assertAlmostEqual(w[2], -1, delta=0.2)
        shrunk = cal.fit(x, y, l2=1000.0)
        self.assertLess(abs(shrunk[1]), abs(w[1]), "the ridge pulls the weights in")

    def test_auc_and_the_wilson_bound(self):
        self.assertEqual(cal.auc([0.1, 0.2, 0.9], [False, False, True]), 1.0)
        self.assertEqual(cal.auc([0.5, 0.5], [False, True]), 0.5)
        self.assertTrue(math.isnan(cal.auc([1.0], [True])))
        self.assertLess(cal.wilson_lower(8, 10), 0.8)
        self.assertGreater(cal.wilson_lower(800, 1000), 0.75)
        self.assertEqual(cal.wilson_lower(0, 0), 0.0)


def report_with(per_task: list[dict], tasks_file: str = "models/recipe/data/eval/none.jsonl") -> dict:
    return {"tasks": {"file": tasks_file},
            "runs": [{"model": "onnx", "candidates": 2, "pick": "ranked", "copy_min_match": 4, "per_task": per_task}]}


class Curve(unittest.TestCase):
    def rows(self):
        # 10 suggestions: the 3 sure copies are right, 1 of the 7 model rows is; one task shows nothing.
        per_task = [{"id": f"c{i}", "completion": "x", "first_line_exact": True, "gate": gate("copy", 64, True, True, 1.0)}
                    for i in range(3)]
        per_task += [{"id": f"m{i}", "completion": "y", "first_line_exact": i == 0, "gate": gate("model")}
                     for i in range(7)]
        per_task.append({"id": "e", "completion": "", "first_line_exact": False, "gate": None})
        return cal.suggestions(report_with(per_task), 2, 4)

    def test_the_curve_counts_shown_requests_against_the_ungated_rate(self):
        rows = self.rows()
        scores = [0.9 if r["id"].startswith("c") else 0.1 for r in rows]
        ungated, gated = cal.curve(rows, scores, [0, 0.5])
        self.assertEqual((ungated["shown"], ungated["hits"]), (10, 4))
        self.assertAlmostEqual(ungated["x"], 1.0)
        self.assertEqual((gated["shown"], gated["hits"]), (3, 3))
        self.assertAlmostEqual(gated["share"], 3 / 11)
        self.assertAlmostEqual(gated["x"], 2.5)
        self.assertLess(gated["x_lower"], gated["x"])

    def test_the_default_is_the_smallest_threshold_whose_lower_bound_reaches_the_target(self):
        points = [{"threshold": 0.0, "shown": 10, "x_lower": 1.0}, {"threshold": 0.1, "shown": 5, "x_lower": 2.0},
                  {"threshold": 0.2, "shown": 4, "x_lower": 3.1}, {"threshold": 0.3, "shown": 2, "x_lower": 3.5}]
        self.assertEqual(cal.recommend(points, 3.0), 0.2)
        self.assertIsNone(cal.recommend(points, 4.0))

    def test_main_fits_prints_the_weights_and_the_default_and_checks_the_cli_scores(self):
        rng = np.random.default_rng(1)
        per_task = []
        for i in range(400):
            copy = i % 2 == 0
            run = int(rng.integers(4, 100)) if copy else 0
            agrees = bool(copy and rng.random() < 0.4)
            p = 0.6 if agrees else (0.3 if copy and run > 40 else 0.03)
            g = gate("copy" if copy else "model", run, agrees, bool(rng.random() < 0.4), float(rng.random() < 0.2),
                     float(rng.random()))
            g["score"] = cal.score(cal.shipped_weights(), g)
            per_task.append({"id": f"t{i}", "completion": "z", "first_line_exact": bool(rng.random() < p), "gate": g})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cal.json")
            with open(path, "w") as f:
                json.dump(report_with(per_task), f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                result = cal.main(["--calibration", path])
        text = out.getvalue()
        self.assertIn("export const GATE_WEIGHTS: GateWeights = Object.freeze({", text)
        self.assertIn("| copyRunLog2 |", text)
        self.assertGreater(result["weights"]["copyAgrees"], 0, "agreeing copies are right more often")
        self.assertIsNotNone(result["default"])
        self.assertIn(f"Recommended default: unmask.minConfidence {result['default']:.2f}", text)

    def test_rows_without_the_gate_numbers_are_refused(self):
        old = [{"id": "a", "completion": "x", "first_line_exact": True, "gate": {"source": "model"}}]
        with self.assertRaises(SystemExit):
            cal.suggestions(report_with(old), 2, 4)


if __name__ == "__main__":
    unittest.main()
