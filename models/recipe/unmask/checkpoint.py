"""One checkpoint schema for every training stage (pretrain, distill, rl), its loader, and the float16 packing of
committed weights. Runs nothing on its own.

A checkpoint is one torch file (`runs/<name>/ckpt.pt`, distill's `student.pt` and `disc.pt`, rl's `ckpt.pt`) holding
a dict; `meta.json`-style facts are also written beside it as `<file stem>.meta.json` (everything but the tensors), so
a run folder says what it holds without torch:

    model             state dict (float32, or float16 when packed by `pack`)
    model_fp16z       packed weights only: the state dict's float16 tensors, losslessly compressed (see `pack`);
                      read() turns them back into `model`
    optimizer         optional: the optimizer's state dict (resuming keeps AdamW's moments); never in packed weights
    config            the model's build_model config (kind "mdm" | "ar" | the discriminator's)
    special           {short name: id} of the special tokens, read from the tokenizer by string
    tokenizer         the run's copy of tokenizer.json; tokenizer_sha256 its sha256 (export refuses another tokenizer)
    stage             "pretrain" | "distill" | "rl"
    lineage           the stages this checkpoint continues, oldest first (training_stage of each), so a model card
                      reports the whole training and every command
    step, train_tokens, train_seconds, cpu_seconds, metrics, args, torch, device, world: this stage's own run
    schema            2 (absent in checkpoints written before this module: read() fills the defaults)

Checkpoints written before this module (pretrain's `ckpt.pt`, rl's and distill's own dicts, the float16 files in
weights/) load unchanged: read() adds `stage` (from rl's and distill's markers, else "pretrain"), `lineage` ([]) and
`schema` (1).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import zlib
from pathlib import Path
from typing import Optional

import torch

from unmask import common

SCHEMA = 2
STAGES = ("pretrain", "distill", "rl", "reward")
# The keys of one lineage entry: what a stage's own run did.
STAGE_KEYS = ("stage", "args", "step", "train_tokens", "train_seconds", "cpu_seconds", "metrics", "device", "world",
              "torch")


def torch_load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """torch.load of a checkpoint this recipe wrote (a dict of tensors and plain values) on torch 1.13 and 2.x."""
    if "weights_only" in inspect.signature(torch.load).parameters:
        return torch.load(path, map_location=device, weights_only=False)
    return torch.load(path, map_location=device)


def meta_path(path: str | Path) -> Path:
    """Where the facts of checkpoint `path` are written as JSON: runs/x/ckpt.pt -> runs/x/ckpt.meta.json."""
    p = Path(path)
    return p.with_name(p.stem + ".meta.json")


def read(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The checkpoint dict, in today's schema whatever wrote it (see the module docstring). The run's copy of the
    tokenizer next to the file is preferred over the recorded path, so a moved run folder still works."""
    ckpt = torch_load(path, device)
    if "model_fp16z" in ckpt:
        ckpt["model"] = {**decompress_fp16(ckpt.pop("model_fp16z")), **ckpt.get("model", {})}
        ckpt["model"] = {k: v.to(device) for k, v in ckpt["model"].items()}
    if "stage" not in ckpt:
        ckpt["stage"] = "rl" if "rl_rollouts" in ckpt else "distill" if "teacher" in ckpt else "pretrain"
    ckpt.setdefault("lineage", [])
    ckpt.setdefault("schema", 1)
    beside = Path(path).with_name("tokenizer.json")
    if beside.exists():
        ckpt["tokenizer"] = str(beside)
    return ckpt


def training_stage(ckpt: dict) -> dict:
    """What a checkpoint's own run did (its stage, flags, steps, tokens, time, last metrics): one lineage entry."""
    entry = {k: ckpt.get(k) for k in STAGE_KEYS}
    entry["stage"] = entry["stage"] or "pretrain"
    return entry


def lineage_after(parent: Optional[dict]) -> list[dict]:
    """The lineage of a checkpoint that continues `parent` (None: a run from scratch): the parent's, then the
    parent's own run."""
    return [] if parent is None else [*parent.get("lineage", []), training_stage(parent)]


def tokenizer_sha256(path: str | Path, parent: Optional[dict] = None) -> Optional[str]:
    """The sha256 a stage records for its tokenizer: the file's, else (no such file) the one its parent recorded."""
    if path and os.path.exists(path):
        return common.file_sha256(path)
    return (parent or {}).get("tokenizer_sha256")


def save(path: str | Path, model_state: dict, *, stage: str, config: dict, special: dict, tokenizer: str | Path,
         tokenizer_sha256: Optional[str], lineage: list[dict], args, step: int, train_tokens: int, train_seconds: float,
         metrics: dict, device: str, world: int, cpu_seconds: Optional[float] = None,
         optimizer: Optional[dict] = None, **extra) -> dict:
    """Writes the checkpoint (atomically: a killed run never leaves half a file) and its .meta.json; returns the
    dict. `extra` keys (distill's teacher, rl's base and rollouts, pretrain's tokenizer_source) are kept as given."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    meta = {"schema": SCHEMA, "stage": stage, "config": config, "special": special, "tokenizer": str(tokenizer),
            "tokenizer_sha256": tokenizer_sha256, "step": step, "train_tokens": train_tokens,
            "train_seconds": train_seconds, "cpu_seconds": cpu_seconds, "metrics": metrics,
            "args": vars(args) if not isinstance(args, dict) else args, "torch": str(torch.__version__),
            "device": str(device), "world": world, "lineage": lineage, **extra}
    ckpt = {"model": model_state, **meta}
    if optimizer is not None:
        ckpt["optimizer"] = optimizer
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    meta_path(path).write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Returns (model in eval mode, checkpoint dict) for a denoiser or AR checkpoint of any stage."""
    from unmask.model import build_model

    ckpt = read(path, device)
    model = build_model(ckpt["config"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, ckpt


# The codec of packed weights: every float16 tensor's bytes, concatenated in state-dict order, split into the plane
# of high bytes (sign, exponent, top mantissa bits: few distinct values) and the plane of low bytes (close to random),
# each zlib-compressed. Lossless; about 15% smaller than plain float16 (a 13.8M-parameter model: 27.5 -> 23.5 MB), which
# keeps the committed resume weights under the model issue's 25 MB.
FP16Z_CODEC = "float16-byteplanes-zlib"


def compress_fp16(state: dict) -> dict:
    """{name: float16 tensor} -> the `model_fp16z` record (codec, names, shapes, the two compressed planes)."""
    names = list(state)
    raw = b"".join(state[n].contiguous().numpy().tobytes() for n in names)
    planes = memoryview(raw)  # little-endian float16: byte 0 low, byte 1 high
    # The planes are kept as uint8 tensors: torch.save's pickle protocol 2 stores a bytes object as latin-1 text,
    # which UTF-8 then grows by half.
    return {"codec": FP16Z_CODEC, "names": names, "shapes": [list(state[n].shape) for n in names],
            "lo": _bytes_tensor(zlib.compress(bytes(planes[0::2]), 9)),
            "hi": _bytes_tensor(zlib.compress(bytes(planes[1::2]), 9))}


def _bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decompress_fp16(record: dict) -> dict:
    """The `model_fp16z` record -> {name: float16 tensor}; refuses an unknown codec or planes of the wrong size."""
    if record.get("codec") != FP16Z_CODEC:
        raise ValueError(f"packed weights: unknown codec {record.get('codec')!r} (this recipe reads {FP16Z_CODEC!r})")
    lo, hi = (zlib.decompress(record[k].cpu().numpy().tobytes()) for k in ("lo", "hi"))
    counts = [math.prod(shape) for shape in record["shapes"]]
    if len(lo) != len(hi) or len(lo) != sum(counts):
        raise ValueError(f"packed weights: planes of {len(lo)} and {len(hi)} bytes for {sum(counts)} parameters")
    raw = bytearray(2 * len(lo))
    raw[0::2], raw[1::2] = lo, hi
    flat = torch.frombuffer(raw, dtype=torch.float16)
    out, at = {}, 0
    for name, shape, n in zip(record["names"], record["shapes"], counts):
        out[name] = flat[at:at + n].reshape(shape).clone()
        at += n
    return out


def pack(ckpt: dict) -> dict:
    """The checkpoint with its floating-point tensors in float16, losslessly compressed into `model_fp16z` (integer
    buffers stay in `model` as they are), and no optimizer state: what weights/ keeps. read() restores `model`;
    load_state_dict copies float16 into a float32 model."""
    floats = {k: v.half() for k, v in ckpt["model"].items() if v.is_floating_point()}
    others = {k: v for k, v in ckpt["model"].items() if not v.is_floating_point()}
    return {**{k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}, "model": others,
            "model_fp16z": compress_fp16(floats), "packed_from": "float32"}


def special_id(special: dict, name: str) -> int:
    """Special ids by short name ("mask") or by token string ("<|mask|>"): checkpoints store the short names."""
    if name in special:
        return int(special[name])
    return int(special[f"<|{name}|>"])


class Loaded:
    """load(): a checkpoint with what decoding needs (the eval, rl and the canvas helpers use it): the model, its kind, special ids, buckets, max length, tokenizer."""

    def __init__(self, path: str, device: torch.device, tokenizer_path: Optional[str] = None):
        self.path = path
        self.model, self.ckpt = load_model(path, device)
        self.device = device
        self.config = self.ckpt["config"]
        self.kind = self.config["kind"]
        self.special = self.ckpt["special"]
        self.mask_id = special_id(self.special, "mask")
        self.eos_id = special_id(self.special, "eos")
        self.pad_id = special_id(self.special, "pad")
        self.max_seq_len = int(self.config["max_seq_len"])
        self.buckets = tuple(self.config.get("span_buckets", common.SPAN_BUCKETS))
        self.context_only = self.config.get("attention", "full") == "context_only"
        # The engine's banned ids, those the exported head leaves out: every special token but end-of-span never
        # reaches a completion.
        self.banned_ids = tuple(common.banned_ids(self.special))
        # The tokenizer: the one asked for, else the checkpoint's (its path may come from another machine), else the
        # recipe's default.
        candidates = [tokenizer_path] if tokenizer_path else [self.ckpt.get("tokenizer"), str(common.TOKENIZER_PATH)]
        tok_path = next((p for p in candidates if p and os.path.exists(p)), None)
        if tok_path is None:
            raise SystemExit(f"checkpoint: no tokenizer found for {path} (tried {candidates}); pass --tokenizer")
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(tok_path)
        self.tokenizer_path = tok_path
        self.special_ids = frozenset(int(v) for v in self.special.values())

    def lang_id(self, language: str) -> int:
        key = f"lang:{language}"
        if key in self.special or f"<|{key}|>" in self.special:
            return special_id(self.special, key)
        return special_id(self.special, "lang:other")

    def encode(self, text: str) -> list[int]:
        """Text to ids without special tokens: a file that contains "<|mask|>" must not put a real mask into the
        canvas (the engine's canvas.ts drops them the same way)."""
        return [i for i in self.tokenizer.encode(text, add_special_tokens=False).ids if i not in self.special_ids]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def summary(self) -> dict:
        c = self.ckpt
        return {"path": os.path.relpath(self.path, common.REPO_DIR), "kind": self.kind, "step": c.get("step"),
                "train_tokens": c.get("train_tokens"), "train_seconds": c.get("train_seconds"),
                "params": sum(p.numel() for p in self.model.parameters()), "metrics": c.get("metrics"),
                "config": {k: self.config[k] for k in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size",
                                                       "max_seq_len", "attention") if k in self.config}}

    @torch.no_grad()
    def denoiser_fn(self, ids: torch.Tensor, positions: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        # ids: [B, T]; positions: [B, P]; span: [B, T] bool -> logits [B, P, V]
        return self.model(ids, positions, span_mask=span if self.context_only else None)

    @torch.no_grad()
    def causal_next_fn(self, ids: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """ids [B, T], last [B] -> logits of the token after position last[b], [B, V]: only those positions go
        through the vocabulary projection (the whole [B, T, V] would dominate the cost of a small model)."""
        h = self.model.hidden(ids)  # [B, T, D]
        return self.model.project(h[torch.arange(ids.shape[0], device=ids.device), last])


def load(path: str | Path, device: str | torch.device = "cpu", tokenizer_path: Optional[str] = None) -> Loaded:
    """The checkpoint at `path` with its model, tokenizer and special ids (Loaded)."""
    return Loaded(str(path), torch.device(device) if isinstance(device, str) else device, tokenizer_path)
