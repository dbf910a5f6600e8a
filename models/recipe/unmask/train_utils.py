"""What the training loops of pretrain, distill and rl share: the learning-rate schedule, AdamW with weight decay on
matrices only, and the stop flag every DDP rank agrees on. Runs nothing on its own."""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn as nn


def progress(args, step: int, elapsed: float) -> float:
    """How far through the run (0..1) after warmup: the larger of the step and time fractions, so a time-limited run
    still anneals."""
    fr = []
    if args.max_steps:
        fr.append((step - args.warmup_steps) / max(1, args.max_steps - args.warmup_steps))
    if args.max_minutes:
        fr.append(elapsed / (args.max_minutes * 60))
    return min(1.0, max(fr)) if fr else 0.0


def decaying(args, step: int, elapsed: float) -> bool:
    """Whether a warmup-stable-decay run has entered its decay (the stable phase's model is the one to resume from)."""
    return (getattr(args, "schedule", "cosine") == "wsd" and step >= args.warmup_steps
            and progress(args, step, elapsed) >= 1.0 - args.decay_fraction)


def lr_at(args, step: int, elapsed: float) -> float:
    """Linear warmup, then either cosine to lr*min_lr_ratio over the run, or (schedule "wsd": warmup-stable-decay)
    the peak lr until the last --decay-fraction of the run and a linear decay to lr*min_lr_ratio over it.

    Why wsd: a run continued in a later session restarts at the peak lr; from a cosine run's annealed end that costs
    ~0.5 bits/token that the next run must win back (measured on the causal stage, sessions 6 and 7), while the
    stable-phase model of a wsd run (stable.pt) was already trained at the peak lr and continues without a bump."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    p = progress(args, step, elapsed)
    floor = args.min_lr_ratio
    if getattr(args, "schedule", "cosine") == "wsd":
        start = 1.0 - args.decay_fraction
        if p < start:
            return args.lr
        return args.lr * (1.0 - (1.0 - floor) * (p - start) / max(args.decay_fraction, 1e-9))
    return args.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def adamw(model: nn.Module, lr: float, weight_decay: float, beta2: float, fused: bool = False) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices (dim >= 2) and none on gains and biases. `fused`: the one-kernel CUDA
    update (torch 2.x on CUDA; ignored elsewhere)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    on_cuda = next(model.parameters()).is_cuda
    extra = {"fused": True} if fused and on_cuda and "fused" in inspect.signature(torch.optim.AdamW).parameters else {}
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, beta2), eps=1e-8, **extra)


def stop_everywhere(stop: bool, world: int, device: torch.device) -> bool:
    """True when any rank wants to stop (a time limit read on one clock), so every DDP rank leaves the loop at the
    same step; `stop` itself without torchrun."""
    if world <= 1:
        return bool(stop)
    flag = torch.tensor([1.0 if stop else 0.0], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())
