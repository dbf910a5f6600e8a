"""Packs a run's checkpoint into the half-precision weights the repository keeps, so a new machine can resume training.

Run from models/recipe/:
    python -m scripts.train_pack_weights --ckpt runs/cpu-arfirst-mdm/ckpt.pt --out weights/cpu-arfirst-mdm.pt

The packed file is a checkpoint in the one schema (unmask/checkpoint.py: config, special ids, tokenizer sha256, stage,
lineage, step, tokens, metrics, args) with the model's tensors in float16, losslessly compressed (checkpoint.pack: about
1.7 bytes a parameter; the 13.8M-parameter default model is 23.7 MB), and no optimizer state. `train_pretrain
--init-from <packed file>` and `train_rl --init-from` load it through checkpoint.read (load_state_dict copies float16
into the float32 model), and its lineage carries every earlier run, so the model card still reports the whole training. Resuming restarts AdamW's
moments and the learning-rate schedule; with a short warmup that costs a few dozen steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from unmask import checkpoint


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint of any stage (runs/<name>/ckpt.pt)")
    p.add_argument("--out", required=True, help="where the float16 weights go (e.g. weights/NAME.pt)")
    p.add_argument("--max-mb", type=float, default=25.0, help="refuse to write a file larger than this (MB)")
    args = p.parse_args(argv)
    packed = checkpoint.pack(checkpoint.read(args.ckpt))
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
