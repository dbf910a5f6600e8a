"""coupled-GRPO (DiffuCoder, methods.md section 3): reinforcement learning of the masked-diffusion model on infill tasks
cut from the training split, with verifiable code rewards (rewards.py). Writes runs/<run-name>/{ckpt.pt, last.pt,
log.jsonl, pool.jsonl}.

CPU smoke (run_cpu.sh, after its tiny teacher; about 4 s of one thread):
    python -m scripts.train_rl --init-from runs/smoke/mdm/ckpt.pt --run-name rl \\
        --runs-dir runs/smoke --train data/corpus-smoke/train.jsonl.gz \\
        --valid data/corpus-smoke/valid.jsonl.gz --pool-per-cell 4 --eval-per-cell 1 --max-tested 0 \\
        --max-span-tokens 16 --prompts-per-step 2 --group-size 4 --max-steps 2 --eval-every 2 --threads 1 \\
        --test-workers 1 --device cpu
The real run on a GPU (defaults: G=10 rollouts at temperature 1.2, 8 sampler steps, 8 prompts per step, 2 updates per
rollout batch, eps 0.5, beta 0.01; run_gpu.sh), its de-coupled ablation, and many GPUs:
    python -m scripts.train_rl --init-from runs/gpu-distill-base/student.pt --run-name gpu-rl-base \\
        --device cuda --max-minutes 20
    python -m scripts.train_rl --init-from runs/gpu-distill-base/student.pt --run-name gpu-rl-base-dec \\
        --decoupled --pool runs/gpu-rl-base/pool.jsonl --device cuda --max-minutes 20
    python -m scripts.train_rl ... --pool-only      # build the pool first, then:
    torchrun --nproc_per_node 8 -m scripts.train_rl --init-from ... --run-name gpu-rl-base --pool <that pool>

One RL step:
1. Each process draws --prompts-per-step tasks from the pool (--p-tested of them, when the pool has any, from tasks
   whose doctests check the hole) and fills each G times with the few-step sampler of sample.py (the eval harness's,
   the engine's semantics) at --temperature: canvas [lang] prefix [MASK]*bucket suffix, bucket = the smallest training
   bucket that holds the original (as the eval harness does by default).
2. rewards.py scores every completion; the advantage is leave-one-out within the task's group,
   A_i = r_i - mean_{j != i} r_j, no std scaling.
3. Per rollout, t ~ U(0.2, 0.8) and a mask M1 at rate t over the span (the completion), its complement M2 = 1 - M1,
   and a fully masked span: three forward passes, context never masked. The per-token log-probability proxy
   (apple/ml-diffucoder's selective_log_softmax; "p" are log-probabilities of the rollout's token):
       proxy = (logp_full + (M1 ? logp_M1 / t : logp_M2 / (1 - t))) / 2
   so every completion token is scored exactly once with real context, plus once fully masked. With a context_only model
   the G rollouts of a prompt and their 3G scored canvases share one context pass (cached.SharedContext; exact, ~4x
   cheaper a step on the CPU; --no-shared-context runs every canvas whole). --decoupled draws M2
   independently at rate 1 - t instead (same three passes; same formula, proxy = (logp_full + M1 logp_M1 / t +
   M2 logp_M2 / (1 - t)) / 2, equal in expectation): the paper's de-coupled baseline.
4. --inner-steps optimizer updates on the batch (a fresh mask pair per update, drawn before the first; the ratio is
   taken against the proxy of the policy that made the rollouts, under the same masks): PPO-clip with --clip-eps,
   plus --beta times the k3 estimate of KL to the frozen reference (the initial model, or re-synced every
   --ref-sync-every steps), k3 = exp(ref - proxy) - (ref - proxy) - 1. Token-level mean over the scored tokens: the
   span up to and including its first end-of-span token (the rest is end-of-span fill).
Every --eval-every steps the policy decodes fixed tasks from the valid split at temperature 0; ckpt.pt is written when
their mean reward improves (step 0 is the initial model), last.pt at the end; both in the one checkpoint format (unmask/checkpoint.py).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from unmask import checkpoint, common, rewards, sample
from unmask import tasks as tasks_lib
from unmask.cached import SharedContext
from unmask.canvas import bucket_for, denoiser_canvas
from unmask.checkpoint import Loaded
from unmask.train_utils import adamw, lr_at, stop_everywhere

RESERVED_TOKENS = 8  # Canvas tokens kept free for special tokens, as tasks.py does.


# ---------------------------------------------------------------------------------------------------------------
# Task pool (training split only)
# ---------------------------------------------------------------------------------------------------------------


def read_split(path: str, max_file_chars: int) -> list[dict]:
    """Python, TypeScript and JavaScript records of a corpus split, files longer than max_file_chars left out (every
    rollout re-parses the whole filled file)."""
    if os.path.basename(path).startswith("test"):
        raise SystemExit(f"rl: refusing {path}: RL never reads the held-out test split")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r.get("language") in rewards.PYTHON + rewards.TS_JS and len(r["text"]) <= max_file_chars]


def parsing_tasks(found: list[dict], scorer: rewards.RewardScorer) -> list[dict]:
    """The tasks whose original file parses and compiles (otherwise the syntax reward says nothing)."""
    rows = scorer.score(found, [t["target"] for t in found])
    return [t for t, r in zip(found, rows) if r.parses and r.compiles is not False]


def build_pool(args, counter, scorer: rewards.RewardScorer, log) -> list[dict]:
    """Training tasks: --pool-per-cell per (language group, kind) cut as tasks.py cuts the eval tasks, plus up to
    --max-tested holes in doctested functions (rewards.find_tested_tasks); validation tasks from the valid split."""
    context = args.max_seq_len - args.max_span_tokens - RESERVED_TOKENS
    train = read_split(args.train, args.max_file_chars)
    general = tasks_lib.build_tasks(train, counter, args.pool_per_cell, args.seed, args.max_span_tokens, context)
    general = parsing_tasks(general, scorer)
    tested = []
    if args.max_tested > 0:
        tested = rewards.find_tested_tasks(train, counter, random.Random(args.seed), args.max_tested, context,
                                           args.max_span_tokens, args.test_timeout, args.test_workers, log=log)
    valid = read_split(args.valid, args.max_file_chars)
    held = parsing_tasks(tasks_lib.build_tasks(valid, counter, args.eval_per_cell, args.seed + 1,
                                               args.max_span_tokens, context), scorer)
    pool = []
    for split, group in (("train", general + tested), ("valid", held)):
        for i, task in enumerate(group):
            task["id"] = f"{split}-{i:05d}"
            task["split"] = split
            pool.append(task)
    log(f"rl: pool of {len(general)} syntax tasks and {len(tested)} tested tasks from {len(train)} training files; "
        f"{len(held)} validation tasks")
    return pool


def load_or_build_pool(args, env, counter, scorer, log) -> tuple[list[dict], list[dict], list[dict]]:
    """(syntax-only training tasks, tested training tasks, validation tasks). The main process builds the pool file
    once (it is reused when the run is restarted, and can be shared with --pool); the others wait and read it."""
    path = Path(args.pool)
    if env.main and not path.exists():
        pool = build_pool(args, counter, scorer, log)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for task in pool:
                f.write(json.dumps(task, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    if env.world > 1:
        torch.distributed.barrier()
    with open(path, encoding="utf-8") as f:
        pool = [json.loads(line) for line in f if line.strip()]
    train = [t for t in pool if t.get("split", "train") == "train"]
    syntax_only = [t for t in train if not t.get("tests")]
    tested = [t for t in train if t.get("tests")]
    valid = [t for t in pool if t.get("split") == "valid"]
    if not train:
        raise SystemExit(f"rl: no training tasks in {path}")
    return syntax_only, tested, valid


# ---------------------------------------------------------------------------------------------------------------
# Canvases and rollouts
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Rollouts:
    """N filled canvases (N = tasks x G), right-padded to a common length T; S = the largest span."""

    ids: torch.Tensor  # [N, T] long: the filled canvases
    span: torch.Tensor  # [N, T] bool: the span (generated region) of each row
    keypad: torch.Tensor  # [N, T] bool: right padding no token attends to
    positions: torch.Tensor  # [N, S] long: canvas index of each span position (0 where not valid)
    valid: torch.Tensor  # [N, S] bool: a real span position
    scored: torch.Tensor  # [N, S] bool: span positions up to and including the first end-of-span token
    targets: torch.Tensor  # [N, S] long: the rollout's token at each span position
    completions: list[str]  # N decoded completions (span tokens before the first end-of-span)


def canvases(m: Loaded, task_list: list[dict], repeat: int, pad_id: int, bucket: int | None):
    """Each task's canvas (canvas.denoiser_canvas) `repeat` times. Returns (ids [N, T], span [N, T], keypad [N, T],
    span starts [N], buckets [N]); rows are right-padded with pad_id."""
    rows, starts, sizes = [], [], []
    for task in task_list:
        size = bucket_for(task["target_tokens"], m.buckets, bucket)
        ids, start = denoiser_canvas(m, task, size)
        rows += [ids] * repeat
        starts += [start] * repeat
        sizes += [size] * repeat
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    keypad = torch.ones(len(rows), T, dtype=torch.bool)
    span = torch.zeros(len(rows), T, dtype=torch.bool)
    for i, (row, start, size) in enumerate(zip(rows, starts, sizes)):
        ids[i, :len(row)] = torch.tensor(row)
        keypad[i, :len(row)] = False
        span[i, start:start + size] = True
    return ids, span, keypad, torch.tensor(starts), torch.tensor(sizes)


def model_fn_for(model: nn.Module, ids: torch.Tensor, span: torch.Tensor, keypad: torch.Tensor, context_only: bool,
                 device: torch.device, shared_context: bool = False):
    """The sampler's model function over the padded batch `ids` [B, T] (span, keypad [B, T]): (ids, positions [B, P],
    span) -> logits [B, P, V] (bf16 autocast on CUDA). With shared_context (a context_only model) the contexts are
    encoded once, here, and every step runs only span tokens (cached.SharedContext): the context does not change
    while the sampler fills the span."""
    if shared_context and context_only:
        with common.autocast(device):
            shared = SharedContext(model, ids, span, keypad)

    def fn(ids, positions, span):
        with common.autocast(device):
            if shared_context and context_only:
                return shared.logits(ids, positions)
            return model(ids, positions, span_mask=span if context_only else None, key_padding_mask=keypad)

    return fn


@torch.no_grad()
def rollout(m: Loaded, model: nn.Module, task_list: list[dict], repeat: int, options: sample.SamplerOptions,
            generator: torch.Generator, device: torch.device, bucket: int | None,
            shared_context: bool = False) -> Rollouts:
    ids, span, keypad, starts, sizes = canvases(m, task_list, repeat, m.pad_id, bucket)
    ids, span, keypad = ids.to(device), span.to(device), keypad.to(device)
    fn = model_fn_for(model, ids, span, keypad, m.context_only, device, shared_context)
    # The sampler draws row r's random numbers from its own stream; the streams are seeded from `generator`.
    seeds = torch.randint(0, 2**62, (ids.shape[0],), generator=generator).tolist()
    streams = [torch.Generator().manual_seed(s) for s in seeds]
    result = sample.denoise(fn, ids, m.mask_id, m.eos_id, options, streams, m.banned_ids, span=span)
    N, S = ids.shape[0], int(sizes.max())
    offsets = torch.arange(S)
    valid = offsets[None, :] < sizes[:, None]  # [N, S]
    positions = torch.where(valid, starts[:, None] + offsets[None, :], torch.zeros_like(valid, dtype=torch.long))
    positions, valid = positions.to(device), valid.to(device)
    targets = result.canvas.gather(1, positions)  # [N, S]
    is_eos = (targets == m.eos_id) & valid
    # A position is scored when no end-of-span token lies strictly before it: the span up to its first eos.
    eos_before = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    scored = valid & ~eos_before
    completions = []
    for i in range(N):
        tokens = targets[i, :int(sizes[i])].tolist()
        completions.append(m.decode(sample.trim_at_eos(tokens, m.eos_id)))
    return Rollouts(result.canvas, span, keypad, positions, valid, scored, targets, completions)


def concat_rollouts(parts: list[Rollouts], pad_id: int) -> Rollouts:
    """Joins sampler batches: canvases right-padded to the longest T, span positions to the longest S."""
    if len(parts) == 1:
        return parts[0]
    T = max(p.ids.shape[1] for p in parts)
    S = max(p.positions.shape[1] for p in parts)

    def pad(x, width, value):  # [n, w] -> [n, width], filled with value (torch.cat: F.pad has no bool kernel in 1.13)
        return torch.cat([x, torch.full((x.shape[0], width - x.shape[1]), value, dtype=x.dtype, device=x.device)], 1)

    return Rollouts(
        ids=torch.cat([pad(p.ids, T, pad_id) for p in parts]),
        span=torch.cat([pad(p.span, T, False) for p in parts]),
        keypad=torch.cat([pad(p.keypad, T, True) for p in parts]),
        positions=torch.cat([pad(p.positions, S, 0) for p in parts]),
        valid=torch.cat([pad(p.valid, S, False) for p in parts]),
        scored=torch.cat([pad(p.scored, S, False) for p in parts]),
        targets=torch.cat([pad(p.targets, S, pad_id) for p in parts]),
        completions=[c for p in parts for c in p.completions],
    )


# ---------------------------------------------------------------------------------------------------------------
# coupled-GRPO
# ---------------------------------------------------------------------------------------------------------------


def leave_one_out(rewards_: torch.Tensor, group: int) -> torch.Tensor:
    """rewards [N] (N = tasks x group, a task's rollouts adjacent) -> A_i = r_i - mean of the group's other rewards."""
    r = rewards_.view(-1, group)  # [tasks, G]
    baseline = (r.sum(1, keepdim=True) - r) / (group - 1)
    return (r - baseline).reshape(-1)


def draw_masks(valid: torch.Tensor, t_min: float, t_max: float, decoupled: bool, generator: torch.Generator):
    """valid [N, S] bool -> (t [N], M1 [N, S] bool, M2 [N, S] bool). M1 masks each span position with probability t;
    M2 is its complement on the span (coupled) or an independent draw at rate 1 - t (de-coupled). Context positions
    are not in the span, so they are never masked."""
    N, S = valid.shape
    t = t_min + (t_max - t_min) * torch.rand(N, generator=generator)  # [N]
    u = torch.rand(N, S, generator=generator)
    m1 = (u < t[:, None]).to(valid.device) & valid
    if decoupled:
        m2 = (torch.rand(N, S, generator=generator) < (1 - t)[:, None]).to(valid.device) & valid
    else:
        m2 = valid & ~m1
    return t.to(valid.device), m1, m2


class SpanLogProbs(nn.Module):
    """log p(target | canvas) at the given span positions. A module so DDP wraps the whole scored forward pass. With
    shared_context (a context_only model) rows that share a context (a prompt's rollouts and their masked copies)
    share one context pass (cached.SharedContext): the same log-probabilities and gradients, ~1/6 of the tokens."""

    def __init__(self, model: nn.Module, shared_context: bool = False):
        super().__init__()
        self.model = model
        self.context_only = model.config.get("attention", "full") == "context_only"
        self.shared_context = shared_context and self.context_only

    def forward(self, ids, positions, targets, span, keypad):
        # ids, span, keypad: [R, T]; positions, targets: [R, S] -> log-probs [R, S] (float32)
        if self.shared_context:
            logits = SharedContext(self.model, ids, span, keypad).logits(ids, positions)
        else:
            logits = self.model(ids, positions, span_mask=span if self.context_only else None, key_padding_mask=keypad)
        logp = -F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        return logp.view(targets.shape)


def proxy_logps(scorer: nn.Module, r: Rollouts, rows: slice, t: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor,
                mask_id: int, device: torch.device) -> torch.Tensor:
    """The per-token log-prob proxy [n, S] of rows `rows`: one forward pass over 3n canvases (fully masked span,
    M1 masked, M2 masked), proxy = (logp_full + M1 logp_M1 / t + M2 logp_M2 / (1 - t)) / 2."""
    ids, span, keypad = r.ids[rows], r.span[rows], r.keypad[rows]  # [n, T]
    pos, tgt, valid = r.positions[rows], r.targets[rows], r.valid[rows]  # [n, S]
    a, b = m1[rows], m2[rows]  # [n, S]
    tt = t[rows][:, None]  # [n, 1]

    def masked(which: torch.Tensor) -> torch.Tensor:  # which: [n, S] bool over span positions -> canvases [n, T]
        x = ids.clone()
        rows_i, cols = which.nonzero(as_tuple=True)
        x[rows_i, pos[rows_i, cols]] = mask_id
        return x

    stacked = torch.cat([masked(valid), masked(a), masked(b)])  # [3n, T]
    with common.autocast(device):
        logp = scorer(stacked, pos.repeat(3, 1), tgt.repeat(3, 1), span.repeat(3, 1), keypad.repeat(3, 1))  # [3n, S]
    full, lp1, lp2 = logp.chunk(3)  # each [n, S]
    return (full + a.float() * lp1 / tt + b.float() * lp2 / (1 - tt)) / 2


def grpo_token_loss(proxy, old, ref, adv, eps: float, beta: float):
    """Per-token loss [n, S]: PPO-clip on exp(proxy - old) with advantages adv [n], plus beta * k3(ref || proxy).
    Returns (loss, k3, clipped) all [n, S]."""
    log_ratio = (proxy - old).clamp(-20, 20)
    ratio = log_ratio.exp()
    A = adv[:, None]
    surrogate = torch.min(ratio * A, ratio.clamp(1 - eps, 1 + eps) * A)
    d = (ref - proxy).clamp(-20, 20)
    k3 = d.exp() - d - 1
    clipped = ((ratio < 1 - eps) & (A < 0)) | ((ratio > 1 + eps) & (A > 0))
    return -surrogate + beta * k3, k3, clipped


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


def reward_metrics(rows: list[rewards.Reward], prefix: str = "") -> dict:
    """Sums and counts (so they can be added across processes), turned into means by finish_metrics."""
    tested = [r for r in rows if r.tests_total]
    return {
        f"{prefix}reward": (sum(r.reward for r in rows), len(rows)),
        f"{prefix}syntax_valid": (sum(r.parses for r in rows), len(rows)),
        f"{prefix}compiles": (sum(r.parses and r.compiles is not False for r in rows), len(rows)),
        f"{prefix}edit_similarity": (sum(r.similarity or 0.0 for r in rows), len(rows)),
        f"{prefix}exact_match": (sum(r.exact for r in rows), len(rows)),
        f"{prefix}gaming": (sum(r.gaming is not None for r in rows), len(rows)),
        f"{prefix}tested_share": (len(tested), len(rows)),
        f"{prefix}test_pass_rate": (sum(r.tests_passed for r in tested), sum(r.tests_total for r in tested)),
        f"{prefix}checker_errors": (sum(r.checker_error for r in rows), len(rows)),
    }


def finish_metrics(sums: dict, env: common.Dist) -> dict:
    keys = sorted(sums)
    values = torch.tensor([[float(sums[k][0]), float(sums[k][1])] for k in keys], dtype=torch.float64)
    if env.world > 1:
        values = values.to(env.device)
        torch.distributed.all_reduce(values)
        values = values.cpu()
    return {k: (float(f"{v[0].item() / v[1].item():.5g}") if v[1] > 0 else None) for k, v in zip(keys, values)}


@torch.no_grad()
def evaluate(m: Loaded, model, valid: list[dict], scorer, args, device) -> dict:
    """The policy at temperature 0 on the fixed validation tasks: mean reward, syntax validity, exact match."""
    if not valid:
        return {}
    options = sample.SamplerOptions(steps=args.steps[0], strategy=args.strategy, temperature=0.0)
    rows = []
    for i in range(0, len(valid), args.rollout_batch):
        chunk = valid[i:i + args.rollout_batch]
        r = rollout(m, model, chunk, 1, options, torch.Generator().manual_seed(args.seed), device, args.bucket,
                    args.shared_context)
        rows += scorer.score(chunk, r.completions)
    return {k: round(s / n, 5) for k, (s, n) in reward_metrics(rows, "valid_").items() if n > 0}


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def step_counts(text: str) -> list[int]:
    """--steps: "8" or "8,4" -> [8] or [8, 4], each at least 1."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected step counts like 8 or 8,4, got {text!r}")
    return counts


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--init-from", required=True, help="masked-diffusion checkpoint to improve (train_pretrain or train_distill output)")
    common.add_run_args(a)
    a("--train", default=str(common.CORPUS_DIR / "train.jsonl.gz"), help="training split the tasks are cut from")
    a("--valid", default=str(common.CORPUS_DIR / "valid.jsonl.gz"), help="split the validation tasks are cut from")
    a("--tokenizer", default=None, help="tokenizer.json (default: the checkpoint's)")
    a("--pool", default=None, help="task pool JSONL, built there if missing (default: runs/<run-name>/pool.jsonl)")
    a("--pool-per-cell", type=int, default=250, help="syntax tasks per (language group, kind) in a new pool")
    a("--max-tested", type=int, default=150, help="tasks with doctests in a new pool (0: none)")
    a("--pool-only", action="store_true", help="build the pool file and stop (e.g. before a torchrun run)")
    a("--p-tested", type=float, default=0.5, help="share of each step's tasks drawn from the tested ones, if any")
    a("--eval-per-cell", type=int, default=6, help="validation tasks per (language group, kind) in a new pool")
    a("--max-span-tokens", type=int, default=64, help="largest original span of a task, in tokens")
    a("--max-file-chars", type=int, default=200_000, help="leave out longer files (each rollout parses its file)")
    a("--bucket", type=int, default=None, help="masks per span (default: the smallest bucket that holds the original)")
    a("--prompts-per-step", type=int, default=8, help="tasks per RL step per process")
    a("--group-size", type=int, default=10, help="G: rollouts per task (leave-one-out baseline over the group)")
    a("--temperature", type=float, default=1.2, help="rollout sampling temperature")
    a("--top-p", type=float, default=1.0, help="rollout nucleus mass")
    a("--steps", type=step_counts, default=[8],
      help="sampler steps per rollout: one count, or a comma list the RL steps cycle through (e.g. 8,4, so the "
           "policy also learns to fill in fewer steps); the validation decode uses the first")
    a("--strategy", choices=sample.STRATEGIES, default="confidence", help="sampler unmasking order")
    a("--rollout-batch", type=int, default=160, help="canvases per sampler batch")
    a("--inner-steps", type=int, default=2, help="optimizer updates per rollout batch (GRPO iterations, mu)")
    a("--shared-context", action=argparse.BooleanOptionalAction, default=True,
      help="context_only models: encode each prompt's context once for its rollouts and scored passes "
           "(cached.SharedContext; exact, ~1/6 of the tokens at T = 256); --no-shared-context runs every canvas whole")
    a("--micro-batch", type=int, default=32, help="rollouts per scored forward pass (each is 3 canvases)")
    a("--t-min", type=float, default=0.2, help="smallest mask rate t of the coupled masks")
    a("--t-max", type=float, default=0.8, help="largest mask rate t of the coupled masks")
    a("--decoupled", action="store_true", help="ablation: the second mask is drawn independently (rate 1-t)")
    a("--clip-eps", type=float, default=0.5, help="PPO clip range")
    a("--beta", type=float, default=0.01, help="weight of the k3 KL estimate to the reference")
    a("--ref-sync-every", type=int, default=0, help="copy the policy into the reference every N steps (0: frozen)")
    a("--lr", type=float, default=1e-5, help="peak AdamW learning rate (the paper's 1e-6 is for 7B)")
    a("--min-lr-ratio", type=float, default=0.1, help="final lr as a fraction of --lr (cosine)")
    a("--warmup-steps", type=int, default=10, help="linear warmup, in RL steps")
    a("--weight-decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    a("--beta2", type=float, default=0.99, help="AdamW beta2")
    a("--grad-clip", type=float, default=0.2, help="gradient norm clip")
    a("--max-steps", type=int, default=0, help="stop after this many RL steps (0: no step limit)")
    a("--max-minutes", type=float, default=0.0, help="stop after this many minutes of wall time (0: no limit)")
    a("--save-every", type=int, default=0,
      help="also write step<N>.pt every N RL steps (0: never), so the held-out eval can follow the run")
    a("--eval-every", type=int, default=20, help="validate (and maybe save ckpt.pt) every N RL steps")
    a("--reference-reward", choices=rewards.REFERENCES, default="edit",
      help="correctness of tasks without tests: edit similarity to the original code, exact match, their mix with "
           "the first line's exact match (edit+line), that plus whole-span exact match (edit+line+exact), or none")
    a("--gaming-penalty", type=float, default=1.0, help="reward of empty / copied / repetitive completions: minus this")
    a("--test-timeout", type=float, default=5.0, help="seconds per doctest run")
    a("--test-workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 1)), help="doctest processes at a time")
    a("--ts-typecheck", action="store_true", help="also type-check TypeScript completions (slow)")
    a("--node", default="node", help="Node.js binary for the TypeScript checks")
    args = p.parse_args(argv)
    if args.group_size < 2:
        p.error("--group-size must be at least 2 (the leave-one-out baseline needs another rollout)")
    if not 0 < args.t_min <= args.t_max < 1:
        p.error("need 0 < --t-min <= --t-max < 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = common.setup_runtime(args.device, args.threads, args.cpu_precision)
    dev = env.device
    common.seed_everything(args.seed + env.rank)
    out_dir = Path(args.runs_dir) / args.run_name
    args.pool = args.pool or str(out_dir / "pool.jsonl")
    if env.main:
        out_dir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        if env.main:
            print(message, flush=True)

    # The policy, with the eval harness's view of the checkpoint (special ids, buckets, tokenizer, banned ids).
    m = checkpoint.load(args.init_from, dev, args.tokenizer)
    if m.kind != "mdm":
        raise SystemExit(f"rl: {args.init_from} is a {m.kind!r} checkpoint; RL needs the masked-diffusion model")
    args.max_seq_len = int(m.config["max_seq_len"])

    config = rewards.RewardConfig(reference=args.reference_reward, gaming_penalty=args.gaming_penalty,
                                  test_timeout=args.test_timeout, test_workers=args.test_workers,
                                  ts_typecheck=args.ts_typecheck, node=args.node)
    scorer = rewards.RewardScorer(config)
    try:
        return train(args, env, m, scorer, out_dir, log)
    finally:
        scorer.close()  # The Node processes and doctest threads end with the run, also on an error.
        if env.world > 1:
            torch.distributed.destroy_process_group()


def train(args, env: common.Dist, m: Loaded, scorer: rewards.RewardScorer, out_dir: Path, log) -> dict:
    dev = env.device
    policy = m.model
    policy.eval()  # Dropout off: rollouts and scored passes see the same network. Gradients still flow.
    for p_ in policy.parameters():
        p_.requires_grad_(True)
    reference = copy.deepcopy(policy).requires_grad_(False)
    base = m.ckpt
    counter = tasks_lib.TokenCounter(m.tokenizer_path)
    syntax_only, tested, valid = load_or_build_pool(args, env, counter, scorer, log)
    if args.pool_only:
        return {"step": 0, "pool": args.pool}
    log(f"rl: {len(syntax_only)} syntax tasks, {len(tested)} tested tasks, {len(valid)} validation tasks; "
        f"{'de-coupled' if args.decoupled else 'coupled'} masks, G={args.group_size}, T={args.temperature}, "
        f"{'/'.join(map(str, args.steps))} sampler steps, device {dev}, world {env.world}")

    span_scorer = SpanLogProbs(policy, args.shared_context)
    train_scorer = span_scorer
    if env.world > 1:
        train_scorer = nn.parallel.DistributedDataParallel(span_scorer,
                                                           device_ids=[env.local_rank] if dev.type == "cuda" else None)
    ref_scorer = SpanLogProbs(reference, args.shared_context)
    opt = adamw(policy, args.lr, args.weight_decay, args.beta2)

    rng = random.Random(args.seed + 1000 * env.rank)
    gen = torch.Generator().manual_seed(args.seed + 1000 * env.rank)  # sampler and masks (CPU generator)
    # One sampler setting per step count; the counts take turns, one RL step each.
    rollout_options = [sample.SamplerOptions(steps=k, strategy=args.strategy, temperature=args.temperature,
                                             top_p=args.top_p) for k in args.steps]
    log_file = open(out_dir / "log.jsonl", "a") if env.main else None
    best = -math.inf
    t0 = time.time()
    rollouts_done = 0

    tokenizer_sha = checkpoint.tokenizer_sha256(m.tokenizer_path, base)
    lineage = checkpoint.lineage_after(base)

    def save(name: str, step: int, metrics: dict) -> None:
        checkpoint.save(out_dir / name, policy.state_dict(), stage="rl", config=m.config, special=m.special,
                        tokenizer=m.tokenizer_path, tokenizer_sha256=tokenizer_sha, lineage=lineage, args=args,
                        step=step, train_tokens=0, train_seconds=round(time.time() - t0, 1), metrics=metrics,
                        device=dev, world=env.world, init_from=args.init_from,
                        base={"step": base.get("step"), "stage": base.get("stage", "pretrain"),
                              "train_seconds": base.get("train_seconds"), "metrics": base.get("metrics")},
                        rl_rollouts=rollouts_done * env.world)

    def write(line: dict) -> None:
        if env.main:
            log_file.write(json.dumps(line) + "\n")
            log_file.flush()
            print(json.dumps(line), flush=True)

    def validate(step: int) -> None:
        nonlocal best
        if not env.main:
            return
        metrics = evaluate(m, policy, valid, scorer, args, dev)
        score = metrics.get("valid_reward", -math.inf)
        improved = score > best
        if improved:
            best = score
            save("ckpt.pt", step, metrics)
        write({"step": step, "elapsed_s": round(time.time() - t0, 1), **metrics, "saved": improved})

    validate(0)
    step = 0
    while True:
        elapsed = time.time() - t0
        stop = bool(args.max_steps and step >= args.max_steps) or bool(args.max_minutes and elapsed >= args.max_minutes * 60)
        if stop_everywhere(stop, env.world, dev):
            break
        lr = lr_at(args, step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr

        # 1. Rollouts: G fills of each task, in sampler batches of whole groups.
        s0 = time.time()
        n_tested = sum(rng.random() < args.p_tested for _ in range(args.prompts_per_step)) if tested else 0
        if not syntax_only:
            n_tested = args.prompts_per_step
        chosen = [rng.choice(tested) for _ in range(n_tested)] + \
                 [rng.choice(syntax_only) for _ in range(args.prompts_per_step - n_tested)]
        per_batch = max(1, args.rollout_batch // args.group_size)
        options = rollout_options[step % len(rollout_options)]
        parts = [rollout(m, policy, chosen[i:i + per_batch], args.group_size, options, gen, dev, args.bucket,
                         args.shared_context)
                 for i in range(0, len(chosen), per_batch)]
        r = concat_rollouts(parts, m.pad_id)
        row_tasks = [task for task in chosen for _ in range(args.group_size)]
        rollouts_done += len(row_tasks)
        s1 = time.time()

        # 2. Rewards and leave-one-out advantages.
        rows = scorer.score(row_tasks, r.completions)
        reward = torch.tensor([x.reward for x in rows], dtype=torch.float32)
        adv = leave_one_out(reward, args.group_size).to(dev)  # [N]
        group_std = reward.view(-1, args.group_size).std(1)
        s2 = time.time()

        # 3. Masks for every update, then the old-policy and reference proxies under them (no grad).
        N = r.ids.shape[0]
        masks = [draw_masks(r.valid.cpu(), args.t_min, args.t_max, args.decoupled, gen) for _ in range(args.inner_steps)]
        masks = [(t.to(dev), a.to(dev), b.to(dev)) for t, a, b in masks]
        chunks = [slice(i, min(i + args.micro_batch, N)) for i in range(0, N, args.micro_batch)]
        n_scored = r.scored.sum().clamp(min=1).float()
        with torch.no_grad():
            ref_proxy = [torch.cat([proxy_logps(ref_scorer, r, c, *mk, m.mask_id, dev) for c in chunks]) for mk in masks]
            old_proxy = [torch.cat([proxy_logps(span_scorer, r, c, *mk, m.mask_id, dev) for c in chunks]) for mk in masks] \
                if args.inner_steps > 1 else None

        # 4. Inner updates.
        sums = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
        for k, mk in enumerate(masks):
            for ci, c in enumerate(chunks):
                sync = ci == len(chunks) - 1
                ctx = train_scorer.no_sync() if (env.world > 1 and not sync) else contextlib.nullcontext()
                with ctx:
                    proxy = proxy_logps(train_scorer, r, c, *mk, m.mask_id, dev)  # [n, S]
                    old = old_proxy[k][c] if old_proxy is not None else proxy.detach()
                    tok_loss, k3, clipped = grpo_token_loss(proxy, old, ref_proxy[k][c], adv[c], args.clip_eps,
                                                            args.beta)
                    scored = r.scored[c].float()
                    loss = (tok_loss * scored).sum() / n_scored
                    loss.backward()
                sums["loss"] += loss.item() / len(masks)
                sums["kl"] += ((k3 * scored).sum() / n_scored).item() / len(masks)
                sums["clip_frac"] += ((clipped.float() * scored).sum() / n_scored).item() / len(masks)
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), args.grad_clip) if args.grad_clip > 0 else None
            opt.step()
            opt.zero_grad(set_to_none=True)
        step += 1
        if args.ref_sync_every and step % args.ref_sync_every == 0:
            reference.load_state_dict(policy.state_dict())
        s3 = time.time()

        metrics = reward_metrics(rows)
        metrics.update({
            "reward_std_in_group": (group_std.sum().item(), len(group_std)),
            "zero_std_groups": ((group_std < 1e-6).sum().item(), len(group_std)),
            "completion_tokens": (r.scored.sum().item(), N),
            "kl": (sums["kl"], 1), "clip_frac": (sums["clip_frac"], 1), "loss": (sums["loss"], 1),
            "t_mean": (sum(mk[0].sum().item() for mk in masks), N * len(masks)),
            "grad_norm": (float(grad_norm) if grad_norm is not None else 0.0, 1),
        })
        line = {"step": step, "elapsed_s": round(time.time() - t0, 1), "lr": lr, "sampler_steps": options.steps,
                **finish_metrics(metrics, env),
                "rollout_s": round(s1 - s0, 2), "reward_s": round(s2 - s1, 2), "update_s": round(s3 - s2, 2)}
        write(line)
        if step % args.eval_every == 0:
            validate(step)
        if args.save_every and step % args.save_every == 0 and env.main:
            save(f"step{step}.pt", step, {"best_valid_reward": best})  # the held-out eval's learning curve
    if env.main:
        if step % args.eval_every:
            validate(step)
        save("last.pt", step, {"best_valid_reward": best})
        write({"done": True, "step": step, "wall_seconds": round(time.time() - t0, 1), "best_valid_reward": best,
               "rollouts": rollouts_done * env.world})
        log_file.close()
    return {"step": step, "best_valid_reward": best}


if __name__ == "__main__":
    main()
