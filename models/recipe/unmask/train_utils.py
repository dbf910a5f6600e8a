"""What the training loops of pretrain, distill and rl share: the learning-rate schedule, AdamW with weight decay on
matrices only, and the stop flag every DDP rank agrees on. Runs nothing on its own."""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn as nn


def lr_at(args, step: int, elapsed: float) -> float:
    """Linear warmup, then cosine to lr*min_lr_ratio over the run; progress is the larger of the step and time
    fractions, so a time-limited run still anneals."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    fr = []
    if args.max_steps:
        fr.append((step - args.warmup_steps) / max(1, args.max_steps - args.warmup_steps))
    if args.max_minutes:
        fr.append(elapsed / (args.max_minutes * 60))
    p = min(1.0, max(fr)) if fr else 0.0
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


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
