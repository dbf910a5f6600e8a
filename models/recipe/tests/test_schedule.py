"""The learning-rate schedules of unmask/train_utils.py: cosine, and warmup-stable-decay, whose stable phase is the
model a later session continues from.

Run from models/recipe/: python -m unittest tests.test_schedule
"""
from __future__ import annotations

import unittest
from types import SimpleNamespace

from unmask.train_utils import decaying, lr_at


def args(**kw):
    base = dict(lr=1e-3, min_lr_ratio=0.1, warmup_steps=10, max_steps=110, max_minutes=0.0, schedule="cosine",
                decay_fraction=0.25)
    base.update(kw)
    return SimpleNamespace(**base)


class Schedules(unittest.TestCase):
    def test_warmup_is_linear_for_both(self):
        for schedule in ("cosine", "wsd"):
            a = args(schedule=schedule)
            self.assertAlmostEqual(lr_at(a, 0, 0.0), 1e-4)
            self.assertAlmostEqual(lr_at(a, 9, 0.0), 1e-3)

    def test_cosine_anneals_to_the_floor(self):
        a = args()
        self.assertAlmostEqual(lr_at(a, 10, 0.0), 1e-3)
        self.assertAlmostEqual(lr_at(a, 60, 0.0), 0.55e-3)
        self.assertAlmostEqual(lr_at(a, 110, 0.0), 1e-4)
        self.assertFalse(any(decaying(a, s, 0.0) for s in range(120)))

    def test_wsd_holds_the_peak_then_decays_linearly(self):
        a = args(schedule="wsd")
        # 100 post-warmup steps: stable until progress 0.75 (step 85), then linear to the floor at step 110.
        self.assertAlmostEqual(lr_at(a, 84, 0.0), 1e-3)
        self.assertAlmostEqual(lr_at(a, 85, 0.0), 1e-3)
        self.assertAlmostEqual(lr_at(a, 97.5, 0.0), 0.55e-3)
        self.assertAlmostEqual(lr_at(a, 110, 0.0), 1e-4)
        self.assertEqual([s for s in range(120) if decaying(a, s, 0.0)][0], 85)

    def test_wsd_on_a_time_limit_decays_in_the_last_minutes(self):
        a = args(schedule="wsd", max_steps=0, max_minutes=40.0)
        self.assertAlmostEqual(lr_at(a, 500, 29 * 60), 1e-3)
        self.assertFalse(decaying(a, 500, 29 * 60))
        self.assertTrue(decaying(a, 500, 30 * 60))
        self.assertAlmostEqual(lr_at(a, 500, 40 * 60), 1e-4)


if __name__ == "__main__":
    unittest.main()
