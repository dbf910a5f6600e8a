"""Tests of the GPU-window driver's parts that need no training: parallel tokenisation into common's cache format,
the carry's round trip, the pack against the device tool's return limits, and the output check.

    cd models/recipe && ../../.venv/bin/python -m unittest -q test_gpu_window
"""

from __future__ import annotations

import filecmp
import gzip
import json
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from unmask import common
from scripts import data_tokens as fast_tokens
from scripts import gpu_window

TOKENIZER = Path(__file__).resolve().parents[2] / "unmask-coder-base" / "tokenizer.json"


def write_corpus(folder: Path, n: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    langs = ("python", "typescript", "javascript")
    for split, count in (("train", n), ("valid", 3), ("test", 3)):
        with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            for i in range(count):
                text = f"def f_{split}_{i}(x):\n    return x * {i} + len('{split}')\n" * (1 + i % 4)
                f.write(json.dumps({"package": "p", "version": "1", "path": f"m{i}.py", "language": langs[i % 3],
                                    "text": text}) + "\n")


class FastTokensTest(unittest.TestCase):
    def test_same_bytes_as_common_and_found_by_token_stream(self):
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            write_corpus(corpus)
            c, b1, i1 = fast_tokens.cache_paths("train", corpus, TOKENIZER, Path(tmp) / "serial")
            b1.parent.mkdir(parents=True)
            common._tokenise_split(c, TOKENIZER, b1, i1)
            _, b2, i2 = fast_tokens.cache_paths("train", corpus, TOKENIZER, Path(tmp) / "fast")
            fast_tokens.tokenise_split(c, TOKENIZER, b2, i2, workers=2, chunk_files=7)
            self.assertEqual((b1.name, i1.name), (b2.name, i2.name))
            self.assertTrue(filecmp.cmp(b1, b2, shallow=False))
            self.assertTrue(filecmp.cmp(i1, i2, shallow=False))
            # common.token_stream loads the fast cache as it is: it must not tokenise again.
            with mock.patch.object(common, "_tokenise_split", side_effect=AssertionError("re-tokenised")):
                s = common.token_stream("train", corpus, TOKENIZER, Path(tmp) / "fast")
            self.assertEqual(len(s.starts), 40)


class CarryAndPackTest(unittest.TestCase):
    def test_carry_round_trip_keeps_every_record(self):
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            write_corpus(corpus)
            info = gpu_window.prepare_carry(corpus, TOKENIZER, Path(tmp) / "carry")
            self.assertGreater(info["corpus_tar_xz_bytes"], 0)
            gpu_window.unpack_carry(Path(tmp) / "carry", Path(tmp) / "back")
            for split in gpu_window.SPLITS:
                with gzip.open(corpus / f"{split}.jsonl.gz") as a, gzip.open(Path(tmp) / "back" / f"{split}.jsonl.gz") as b:
                    self.assertEqual(a.read(), b.read())
            self.assertTrue((Path(tmp) / "carry" / "tokenizer.json").exists())

    def test_pack_keeps_to_the_limits_in_priority_order(self):
        with tempfile.TemporaryDirectory() as tmp:
            out, src = Path(tmp) / "out", Path(tmp) / "src"
            src.mkdir()
            (src / "model").mkdir()
            big = src / "big.bin"
            big.write_bytes(b"\x01" * (2 * 2**20))
            (src / "model" / "a.onnx").write_bytes(b"\x02" * (2 * 2**20))
            (src / "model" / "b.json").write_text("{}")
            huge = src / "huge.bin"
            huge.write_bytes(b"\x03" * (6 * 2**20))
            packer = gpu_window.Packer(out, part_mib=1.0, return_mib=6.0)  # parts of 1 MiB, 5 parts at most
            got = packer.write([("weights/mdm.pt", big), ("model/", src / "model"), ("weights/ar.pt", huge)], {})
            self.assertEqual(got["files"], ["weights/mdm.pt", "model/a.onnx", "model/b.json"])
            self.assertEqual([x["name"] for x in got["left_out"]], ["weights/ar.pt"])
            parts = sorted((out / "pack").glob("window.tar.*"))
            self.assertEqual(len(parts), got["parts"])
            self.assertTrue(all(p.stat().st_size <= 2**20 for p in parts))
            root = gpu_window.unpack(out, Path(tmp) / "dest")
            self.assertEqual((root / "weights" / "mdm.pt").read_bytes(), big.read_bytes())
            # A second, smaller pack leaves no stale parts behind.
            got = packer.write([("model/", src / "model")], {})
            self.assertEqual(len(list((out / "pack").glob("window.tar.*"))), got["parts"])

    def test_check_names_what_breaks_the_return_limits(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "a" / "b" / "c").mkdir(parents=True)
            (out / "a" / "b" / "c" / "deep.txt").write_text("x")
            (out / "too big.bin").write_bytes(b"\0" * (17 * 2**20))
            bad = "\n".join(gpu_window.check_out(out))
            self.assertIn("folders down", bad)
            self.assertIn("at most 16", bad)
            self.assertIn("a name outside", bad)
            self.assertIn("summary.json missing", bad)
            self.assertIn("pack does not unpack", bad)


class DefaultsTest(unittest.TestCase):
    def test_the_window_and_the_dry_run_defaults(self):
        a = gpu_window.parse_args(["--device", "cuda", "--out", "/tmp/x"])
        self.assertEqual((a.budget_minutes, a.size, a.batch_size, a.max_seq_len, a.save_minutes),
                         (9.0, "window", 256, 256, 1.0))
        self.assertEqual(gpu_window.model_config(a), {"n_layer": 6, "d_model": 384, "n_head": 6, "d_ff": 1536})
        d = gpu_window.parse_args(["--device", "cpu", "--dry-run"])
        self.assertEqual((d.budget_minutes, d.size, d.max_seq_len, d.loader_workers), (2.0, "tiny", 128, 0))
        self.assertTrue(d.out.endswith("out"))  # never $OUT: the dry run clears its own folder


if __name__ == "__main__":
    unittest.main()
