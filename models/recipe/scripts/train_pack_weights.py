"""Packs a run's checkpoint into the half-precision weights the repository keeps, so a new machine can resume training.

    .venv/bin/python models/recipe/weights.py --ckpt models/recipe/runs/cpu-arfirst-mdm/ckpt.pt \
        --out models/recipe/weights/unmask-coder-base-mdm.pt

The packed file is a checkpoint like pretrain.py's (config, special ids, tokenizer sha256, lineage, step, tokens,
metrics, args) with the model's tensors in float16 and no optimizer state: 2 bytes a parameter (a 5.25M model is
10.5 MB). `pretrain.py --init-from <packed file>` loads it (load_state_dict copies float16 into the float32 model), and
its lineage carries every earlier run, so the model card still reports the whole training. Resuming restarts AdamW's
moments and the learning-rate schedule; with a short warmup that costs a few dozen steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import common


def pack(ckpt: dict) -> dict:
    """The checkpoint with its floating-point tensors in float16 (integer buffers kept as they are)."""
    model = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    return {**{k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}, "model": model,
            "packed_from": "float32"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint written by pretrain.py (runs/<name>/ckpt.pt)")
    p.add_argument("--out", required=True, help="where the float16 weights go (e.g. models/recipe/weights/NAME.pt)")
    p.add_argument("--max-mb", type=float, default=25.0, help="refuse to write a file larger than this (MB)")
    args = p.parse_args(argv)
    packed = pack(common.torch_load(args.ckpt))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(packed, out)
    mb = out.stat().st_size / 1e6
    if mb > args.max_mb:
        out.unlink()
        raise SystemExit(f"{out}: {mb:.1f} MB is over --max-mb {args.max_mb}; not written")
    print(f"wrote {out} ({mb:.1f} MB, step {packed.get('step')}, {packed.get('train_tokens')} tokens)")


if __name__ == "__main__":
    main()
