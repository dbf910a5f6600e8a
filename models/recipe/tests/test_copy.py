"""The copy-from-file baseline (metrics.py) against the fixture the TypeScript engine's copy candidate is tested on
(test/fixtures/copy-cases.json), so the eval's copy row and the extension's copy candidate stay the same text.

    cd models/recipe && ../../.venv/bin/python -m unittest test_copy
"""

import json
import unittest
from pathlib import Path

from unmask.metrics import copy_from_file, longest_repeated_tail

FIXTURE = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "copy-cases.json"


class CopyFixture(unittest.TestCase):
    def test_cases(self):
        for case in json.loads(FIXTURE.read_text())["cases"]:
            pre, suf = case["prefix"], case["suffix"]
            with self.subTest(prefix=pre[-24:]):
                self.assertEqual(longest_repeated_tail(pre, pre + suf), (case["matchLength"], case["start"]))
                copy = copy_from_file(pre, suf).removesuffix("\n")
                self.assertEqual(copy if copy.strip() else None, case["copy"])


if __name__ == "__main__":
    unittest.main()
