"""Tokenises corpus splits with every core, into the same uint16 token cache that common.token_stream reads.

    python -m scripts.data_tokens --corpus-dir data/corpus-grown \
        --tokenizer data/tokenizer/tokenizer.json --workers 16

common.token_stream tokenises a split once, in one Python process (gzip, JSON and the writes on one core; the
tokenizer's own batch threads help only inside each 256-file batch). This module cuts the split into chunks of files,
encodes the chunks in a pool of processes (each with TOKENIZERS_PARALLELISM off, so N processes use N cores and not
N x N threads) and writes the results in corpus order. The files it writes are byte for byte the ones
common._tokenise_split writes (`<|file|>` then the file's ids, uint16; the index [F, 3] int64 of start, length,
language tag id), under the same names (`{split}-{key}.u16`, `{split}-{key}.idx.npy`, key from the sha256 of the
corpus file and the tokenizer), so common.token_stream then finds the cache and loads it without tokenising again.
test_gpu_window.py checks both.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

from unmask import common

_TOK = None  # the worker's tokenizer
_SPECIAL = None


def cache_paths(split: str, corpus_dir, tokenizer_path, cache_dir=None) -> tuple[Path, Path, Path]:
    """(corpus file, token file, index file) of a split: the names common.token_stream uses."""
    corpus_path = Path(corpus_dir) / f"{split}.jsonl.gz"
    key = hashlib.sha256((common.file_sha256(corpus_path) + common.file_sha256(tokenizer_path)).encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir else Path(corpus_dir).parent / "tokens"
    return corpus_path, cache / f"{split}-{key}.u16", cache / f"{split}-{key}.idx.npy"


def _init(tokenizer_path: str) -> None:
    global _TOK, _SPECIAL
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _TOK = common.load_tokenizer(tokenizer_path)
    _SPECIAL = common.read_special_ids(tokenizer_path)


def _encode(chunk: list[tuple[str, str]]) -> tuple[bytes, list[tuple[int, int]]]:
    """[(text, language)] -> (the chunk's uint16 bytes, [(length, lang id)] per file)."""
    encs = _TOK.encode_batch([t for t, _ in chunk], add_special_tokens=False)
    parts, index = [], []
    for (_, lang), enc in zip(chunk, encs):
        ids = np.asarray([_SPECIAL["file"]] + enc.ids, dtype=np.uint16)
        parts.append(ids.tobytes())
        index.append((len(ids), common.lang_id(_SPECIAL, lang)))
    return b"".join(parts), index


def _chunks(corpus_path: Path, size: int):
    chunk = []
    with gzip.open(corpus_path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                chunk.append((r["text"], r.get("language", "other")))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def tokenise_split(corpus_path: Path, tokenizer_path, bin_path: Path, idx_path: Path, workers: int,
                   chunk_files: int = 64) -> int:
    """Writes bin_path and idx_path for one split with `workers` processes; returns the number of tokens."""
    tok = common.load_tokenizer(tokenizer_path)
    if tok.get_vocab_size() > 65535:
        raise ValueError("the uint16 token cache needs a vocabulary of at most 65535 tokens")
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_bin = bin_path.with_suffix(".tmp")
    index, offset = [], 0
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with open(tmp_bin, "wb") as out, ctx.Pool(workers, initializer=_init, initargs=(str(tokenizer_path),)) as pool:
        for data, idx in pool.imap(_encode, _chunks(corpus_path, chunk_files), chunksize=1):
            out.write(data)
            for length, lang in idx:
                index.append((offset, length, lang))
                offset += length
    os.replace(tmp_bin, bin_path)
    np.save(idx_path, np.asarray(index, dtype=np.int64).reshape(-1, 3))
    return offset


def token_stream(split: str, corpus_dir, tokenizer_path, cache_dir=None, workers: int = 0) -> common.TokenStream:
    """common.token_stream, tokenising with `workers` processes (0: every core) when the cache is missing."""
    corpus_path, bin_path, idx_path = cache_paths(split, corpus_dir, tokenizer_path, cache_dir)
    if not corpus_path.exists():
        raise FileNotFoundError(f"corpus split not found: {corpus_path}")
    if not (bin_path.exists() and idx_path.exists()):
        tokenise_split(corpus_path, tokenizer_path, bin_path, idx_path, workers or os.cpu_count() or 1)
    return common.token_stream(split, corpus_dir, tokenizer_path, cache_dir)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", default=str(common.CORPUS_DIR), help="folder with {split}.jsonl.gz")
    p.add_argument("--tokenizer", default=str(common.TOKENIZER_PATH), help="tokenizer.json")
    p.add_argument("--token-cache", default=None, help="cache folder (default: tokens/ beside the corpus folder)")
    p.add_argument("--splits", default="train,valid,test", help="comma-separated splits to tokenise")
    p.add_argument("--workers", type=int, default=0, help="tokenising processes (0: every core)")
    args = p.parse_args(argv)
    out = {}
    for split in args.splits.split(","):
        t0 = time.time()
        s = token_stream(split, args.corpus_dir, args.tokenizer, args.token_cache, args.workers)
        out[split] = {"tokens": int(len(s.tokens)), "files": int(len(s.starts)), "seconds": round(time.time() - t0, 1)}
        print(f"fast_tokens: {split}: {out[split]['tokens']:,} tokens, {out[split]['files']} files, "
              f"{out[split]['seconds']} s", flush=True)
    return out


if __name__ == "__main__":
    main()
