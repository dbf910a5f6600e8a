"""Shared helpers for the recipe stages: paths, special-token ids, the pre-tokenised corpus, seeding, device and DDP
setup (checkpoints: checkpoint.py).

Every stage imports this module; nothing here runs on its own. The special-token ids are always read from
tokenizer.json by their strings (never assumed), stored in each checkpoint and copied into the ONNX metadata, so the
runtime can check that the model and the tokenizer agree.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# The paths, re-exported: every stage reads them as common.X.
from unmask.paths import (CORPUS_DIR, DATA_DIR, NODE_DIR, RECIPE_DIR, REPO_DIR, RUNS_DIR,  # noqa: F401
                          TOKENIZER_PATH, command_line)

# The special tokens, by the short name used in checkpoints and metadata, and their strings in tokenizer.json.
SPECIAL_TOKENS = {
    "pad": "<|pad|>",
    "mask": "<|mask|>",
    "eos": "<|eos|>",
    "file": "<|file|>",
    "fim_prefix": "<|fim_prefix|>",
    "fim_middle": "<|fim_middle|>",
    "fim_suffix": "<|fim_suffix|>",
    "lang:python": "<|lang:python|>",
    "lang:typescript": "<|lang:typescript|>",
    "lang:javascript": "<|lang:javascript|>",
    "lang:other": "<|lang:other|>",
}
LANGUAGES = ("python", "typescript", "javascript", "other")

# A span is padded with end-of-span tokens up to the smallest bucket that holds it, so the model learns its length.
SPAN_BUCKETS = (8, 16, 32, 64, 128)

# K of the K-best head (models/README.md): the entries per position that a denoiser graph hands the sampler, and the
# sampler's top-k. A few dozen hold nearly all of a trained model's mass at a position, and the engine reads B*P*K
# values per step instead of B*P*V.
DEFAULT_TOP_K = 64


def read_special_ids(tokenizer_path: str | Path) -> dict[str, int]:
    """Returns {short name: id} for every special token, read from the tokenizer's added tokens by string."""
    with open(tokenizer_path, encoding="utf-8") as f:
        tok = json.load(f)
    by_content = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    missing = [s for s in SPECIAL_TOKENS.values() if s not in by_content]
    if missing:
        raise ValueError(f"{tokenizer_path}: special tokens missing from added_tokens: {missing}")
    return {name: int(by_content[s]) for name, s in SPECIAL_TOKENS.items()}


def banned_ids(special: dict) -> list[int]:
    """The ids the sampler never commits, ascending: every special id but end-of-span (models/README.md, "K-best
    head"). Keys may be short names ("eos") or token strings ("<|eos|>")."""
    return sorted({int(v) for k, v in special.items() if k.strip("<|>") != "eos"})


def lang_ids(special: dict[str, int]) -> dict[str, int]:
    """Returns {language: tag id} from the special ids."""
    return {lang: special[f"lang:{lang}"] for lang in LANGUAGES}


def lang_id(special: dict[str, int], language: str) -> int:
    """The tag id for a corpus language; unknown languages get the `other` tag."""
    return special.get(f"lang:{language}", special["lang:other"])


def load_tokenizer(tokenizer_path: str | Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_path))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_corpus(path: str | Path):
    """Yields the records {"package","version","path","language","text"} of one corpus split (.jsonl.gz)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


# ---------------------------------------------------------------------------------------------------------------
# Pre-tokenised corpus: one uint16 token stream per split, cached next to the corpus.
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class TokenStream:
    """A split as one token stream. Each file is `<|file|>` followed by its tokens; `starts[i]` is the index of file
    i's `<|file|>` token, `lengths[i]` its length including that token, and `langs[i]` its language tag id."""

    tokens: np.ndarray  # [N] uint16 (memmap)
    starts: np.ndarray  # [F] int64
    lengths: np.ndarray  # [F] int64
    langs: np.ndarray  # [F] int64
    packages: np.ndarray | None = None  # [F] int64: the package each file comes from (an index), for related files

    def file_of(self, offset: int) -> int:
        """The index of the file that holds stream position `offset`."""
        return int(np.searchsorted(self.starts, offset, side="right") - 1)


def token_stream(split: str, corpus_dir: str | Path = CORPUS_DIR, tokenizer_path: str | Path = TOKENIZER_PATH,
                 cache_dir: str | Path | None = None) -> TokenStream:
    """Loads the token stream of `split`, tokenising the corpus once and caching it as a uint16 memmap.

    The cache is keyed by the sha256 of the corpus file and the tokenizer, so a new corpus or tokenizer re-tokenises.
    """
    corpus_path = Path(corpus_dir) / f"{split}.jsonl.gz"
    if not corpus_path.exists():
        raise FileNotFoundError(f"corpus split not found: {corpus_path} (run data_corpus.py first)")
    key = hashlib.sha256((file_sha256(corpus_path) + file_sha256(tokenizer_path)).encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir else Path(corpus_dir).parent / "tokens"
    cache.mkdir(parents=True, exist_ok=True)
    bin_path = cache / f"{split}-{key}.u16"
    idx_path = cache / f"{split}-{key}.idx.npy"
    if not (bin_path.exists() and idx_path.exists()):
        _tokenise_split(corpus_path, tokenizer_path, bin_path, idx_path)
    index = np.load(idx_path)  # [F, 3]: start, length, lang id
    tokens = np.memmap(bin_path, dtype=np.uint16, mode="r")
    pkg_path = cache / f"{split}-{key}.pkg.npy"
    if not pkg_path.exists():  # written beside the token cache (caches from before session 9 lack it)
        names: dict[str, int] = {}
        pkgs = [names.setdefault(r.get("package", ""), len(names)) for r in read_corpus(corpus_path)]
        np.save(pkg_path, np.asarray(pkgs, dtype=np.int64))
    packages = np.load(pkg_path)
    if len(packages) != len(index):
        raise ValueError(f"{pkg_path}: {len(packages)} packages for {len(index)} files (delete it to rebuild)")
    return TokenStream(tokens, index[:, 0].copy(), index[:, 1].copy(), index[:, 2].copy(), packages)


def _tokenise_split(corpus_path: Path, tokenizer_path, bin_path: Path, idx_path: Path, batch: int = 256) -> None:
    tok = load_tokenizer(tokenizer_path)
    special = read_special_ids(tokenizer_path)
    if tok.get_vocab_size() > 65535:
        raise ValueError("the uint16 token cache needs a vocabulary of at most 65535 tokens")
    tmp_bin = bin_path.with_suffix(".tmp")
    index, offset, pending = [], 0, []
    with open(tmp_bin, "wb") as out:

        def flush():
            nonlocal offset
            encs = tok.encode_batch([r["text"] for r in pending], add_special_tokens=False)
            for rec, enc in zip(pending, encs):
                ids = np.asarray([special["file"]] + enc.ids, dtype=np.uint16)
                out.write(ids.tobytes())
                index.append((offset, len(ids), lang_id(special, rec.get("language", "other"))))
                offset += len(ids)
            pending.clear()

        for rec in read_corpus(corpus_path):
            pending.append(rec)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    os.replace(tmp_bin, bin_path)
    np.save(idx_path, np.asarray(index, dtype=np.int64).reshape(-1, 3))


def newline_table(tokenizer_path: str | Path, vocab_size: int) -> np.ndarray:
    """[V] bool: whether a token's text ends a line (contains a newline), for line-aligned spans."""
    tok = load_tokenizer(tokenizer_path)
    table = np.zeros(vocab_size, dtype=bool)
    for i in range(min(vocab_size, tok.get_vocab_size())):
        table[i] = "\n" in tok.decode([i], skip_special_tokens=False)
    return table


# ---------------------------------------------------------------------------------------------------------------
# Runtime setup.
# ---------------------------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class Dist:
    """Where this process runs: its rank among `world` processes (1 without torchrun) and its device."""

    rank: int
    local_rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 dot products natively (AVX512-BF16 or AMX-BF16 in /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# Set once per process by setup_runtime: whether training steps on the CPU run under bf16 autocast (see autocast).
_cpu_bf16 = False


def setup_runtime(device: str = "auto", threads: int = 0, cpu_precision: str = "fp32") -> Dist:
    """Picks the device and, under torchrun (RANK/WORLD_SIZE/LOCAL_RANK set), joins the process group.

    device: "auto" (CUDA if available), "cpu" or "cuda". threads: torch CPU threads (0 keeps torch's default).
    cpu_precision: "fp32", "bf16" (bf16 autocast for the CPU's training steps) or "auto" (bf16 where cpu_has_bf16).
    """
    global _cpu_bf16
    _cpu_bf16 = cpu_precision == "bf16" or (cpu_precision == "auto" and cpu_has_bf16())
    if threads > 0:
        torch.set_num_threads(threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        dev = torch.device("cpu")
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, local_rank, world, dev)


def autocast(device: torch.device, evaluating: bool = False):
    """bf16 autocast on CUDA. On the CPU, bf16 autocast for training when setup_runtime chose it (--cpu-precision):
    on a CPU with native bf16 dot products a training step runs ~3x faster than in fp32 (models/README.md, "Training
    on this machine's CPU"); the weights, the optimizer and the loss stay fp32. Evaluations on the CPU (`evaluating`)
    stay fp32, so validation numbers compare with every earlier CPU run's."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if _cpu_bf16 and not evaluating:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()


def add_run_args(add) -> None:
    """The flags every training stage shares (pretrain, distill, rl), given the parser's add_argument: where its run
    folder goes, its seed and where it runs. Each stage adds its own flags around them."""
    add("--run-name", required=True, help="output folder name under --runs-dir")
    add("--runs-dir", default=str(RUNS_DIR), help="where run folders go")
    add("--seed", type=int, default=0, help="random seed (each DDP rank adds its rank)")
    add("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    add("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train")
    add("--cpu-precision", choices=["auto", "bf16", "fp32"], default="auto",
        help="CPU training steps: bf16 autocast (fp32 weights, optimizer and loss) or fp32; auto: bf16 where the CPU "
             "has native bf16 dot products (avx512_bf16 or amx_bf16), ~3x the fp32 tokens/s on the 2-core Zen 5 "
             "machine; the validation ELBO or bits (loss_eval) stay fp32 either way")

