"""DiDi-Instruct distillation (methods.md section 2): turns the many-step masked-diffusion teacher into a few-step
student, and trains the discriminator that doubles as a reward model for guided sampling. Writes
runs/<run-name>/{student.pt, disc.pt, log.jsonl}.

Real run (one H100, default 4 x 256 teacher, <= 25 minutes end to end; run_gpu.sh):
    python -m scripts.train_distill --teacher runs/gpu-mdm-base/ckpt.pt --run-name gpu-distill-base --device cuda
Many GPUs (each rank draws its own teacher pool and contexts):
    torchrun --nproc_per_node 8 -m scripts.train_distill --teacher runs/gpu-mdm-base/ckpt.pt --run-name gpu-distill-base
CPU smoke (run_cpu.sh, after its tiny teacher; about 10 s of one thread):
    python -m scripts.train_distill --teacher runs/smoke/mdm/ckpt.pt --run-name distill \\
        --runs-dir runs/smoke --corpus-dir data/corpus-smoke --device cpu --threads 1 \\
        --batch-size 4 --pool-size 16 --pool-batch 16 --teacher-steps 8 --disc-warmup 2 --max-steps 6 --log-every 2 \\
        --eval-every 6 --eval-examples 16
Ablations (the paper's table): --no-group-norm, --no-intermediate; guided sampling on/off is guided.py's option.

One iteration (shapes: B = --batch-size contexts, G = --group samples per context, R = B*G, T = --max-seq-len):
1. Contexts: B infill canvases drawn from a pool made once at the start with train_pretrain.py's infill batch
   construction (clean context, a span padded with end-of-span tokens to a length bucket). Each pool entry also holds
   a sample of the teacher for its span ("real"), drawn with --teacher-steps ancestral steps at temperature 1, and
   the true code ("data"). The teacher is the expensive part, so it is sampled once per pool entry, in big batches.
2. Student rollout, G per context, conditional on the context: the span starts all-masked (x_1); one student step
   reveals each span position with probability 1 - tau, giving x_tau; a second step fills the rest, giving x_0
   (intermediate-state matching: the student is trained at the intermediate noise level tau ~ U(tau_min, tau_max)).
   log q(x_0) = sum of the log-probabilities of the tokens revealed at each step. With --no-intermediate one step
   fills the whole span.
3. Discriminator: the teacher sample and the G student samples are re-noised at the same tau (each span position
   masked with probability tau, "coupled time"); it scores every span token. Real = teacher samples: the integral
   KL's target is the teacher's marginals, not the data's. Its accuracy on re-noised data (true code) is measured and
   logged as `disc_data_real` (the share of data tokens it calls "teacher").
   Loss: per-token BCE with label smoothing 0.1 (targets 0.95 / 0.05), teacher and student tokens weighted equally.
4. Reward r = per-token log-odds (logit > 0: "teacher"), clipped to +-8, averaged over the span; grouped
   normalisation A = clip((r - mean_G) / (std_G + 1e-8), +-3) over the G samples of a context (--no-group-norm:
   A = r). Student loss = -sum(w(tau) * A * log q(x_0)) / span tokens, w(tau) = -alpha'/(1 - alpha) = 1/tau for
   alpha_t = 1 - t, clamped to [0.1, 10]; + 0.01 * KL(teacher || student) at x_1 and at x_tau (per masked token)
   - 5e-4 * entropy of the student at both states. The sum of log q over span tokens is divided by the number of span
   tokens in the batch so the KL and entropy coefficients are per token.
5. The discriminator and the student are updated in turn (the reward comes from the discriminator before its own
   update); the first --disc-warmup iterations train only the discriminator. EMA 0.999 of the student is what is
   saved and sampled from; gradients of both are clipped.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unmask import checkpoint, common
from unmask.data import Examples, make_valid, mdm_batch
from unmask.discriminator import Discriminator, default_trainable_blocks
from unmask.loss_eval import validation_bits
from unmask.model import count_params
from unmask.train_utils import stop_everywhere

BANNED_LOGIT = -1e4  # finite, so exp() is exactly 0 and KL/entropy terms stay free of inf - inf


# ---------------------------------------------------------------------------------------------------------------
# Small tensor helpers
# ---------------------------------------------------------------------------------------------------------------


def banned_vocab(special: dict, vocab_size: int, device) -> torch.Tensor:
    """[V] bool: ids never generated (every special token but end-of-span), as the sampler and the engine ban them."""
    banned = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    for name, i in special.items():
        if name != "eos" and int(i) < vocab_size:
            banned[int(i)] = True
    return banned


def per_row(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Sums values [N] into [n_rows] by their row index rows [N]."""
    return torch.zeros(n_rows, device=values.device, dtype=values.dtype).index_add_(0, rows, values)


def span_log_probs(model: nn.Module, x: torch.Tensor, span: torch.Tensor, keypad: torch.Tensor, sel: torch.Tensor,
                   banned: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Log-probabilities [N, V] (float32) of the clean token at the flat canvas indices sel [N] into [B*T].

    x: [B, T] long; span, keypad: [B, T] bool. Context-only attention gets the span as its mask, as in pretraining."""
    context_only = model.config.get("attention") == "context_only"
    with common.autocast(x.device):
        h = model.hidden(x, span if context_only else None, keypad)  # [B, T, D]
        logits = model.project(h.reshape(-1, h.shape[-1])[sel])  # [N, V]
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.masked_fill(banned, BANNED_LOGIT).log_softmax(-1)


def sample_from(log_probs: torch.Tensor, n: int = 1) -> torch.Tensor:
    """log_probs [N, V] -> n independent draws per row [N, n] (long)."""
    return torch.multinomial(log_probs.detach().exp(), n, replacement=True)


def entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """[N, V] -> [N] entropy in nats."""
    return -(log_probs.exp() * log_probs).sum(-1)


def kl(teacher_lp: torch.Tensor, student_lp: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per position: [N, V] x2 -> [N]."""
    return (teacher_lp.exp() * (teacher_lp - student_lp)).sum(-1)


def renoise(x0: torch.Tensor, span: torch.Tensor, t: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Masks each span position of x0 [B, T] with probability t [B] (the forward process at noise level t)."""
    hide = span & (torch.rand(x0.shape, device=x0.device) < t[:, None])
    return torch.where(hide, torch.full_like(x0, mask_id), x0)


def time_weight(tau: torch.Tensor, lo: float = 0.1, hi: float = 10.0) -> torch.Tensor:
    """w(tau) = -alpha'(tau) / (1 - alpha(tau)) = 1 / tau for the linear schedule alpha_t = 1 - t, clamped."""
    return (1.0 / tau).clamp(lo, hi)


def clipped_reward(logits: torch.Tensor, rows: torch.Tensor, n_rows: int, clip: float = 8.0) -> torch.Tensor:
    """Per-token discriminator log-odds logits [N] (row index rows [N]) -> reward [n_rows]: clipped, averaged over
    each row's span tokens."""
    total = per_row(logits.clamp(-clip, clip), rows, n_rows)
    count = per_row(torch.ones_like(logits), rows, n_rows)
    return total / count.clamp(min=1)


def group_advantages(reward: torch.Tensor, group: int, normalise: bool = True, clip: float = 3.0) -> torch.Tensor:
    """reward [B*G] (the G samples of a context are adjacent) -> advantages [B*G].

    Grouped normalisation (GRPO): A = clip((r - mean_group) / (std_group + 1e-8), +-clip). Without it: A = r."""
    if not normalise:
        return reward
    r = reward.view(-1, group)  # [B, G]
    a = (r - r.mean(1, keepdim=True)) / (r.std(1, unbiased=False, keepdim=True) + 1e-8)
    return a.clamp(-clip, clip).reshape(-1)


def policy_loss(logq: torch.Tensor, advantages: torch.Tensor, weights: torch.Tensor, n_tokens) -> torch.Tensor:
    """-sum(w * A * log q) / n_tokens: descending it raises log q of the samples with positive advantage."""
    return -(weights * advantages.detach() * logq).sum() / n_tokens


# ---------------------------------------------------------------------------------------------------------------
# Ancestral sampling on the device (teacher pool) and the student's training rollout
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def ancestral_fill(model: nn.Module, x0: torch.Tensor, span: torch.Tensor, keypad: torch.Tensor, steps: int,
                   mask_id: int, banned: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Samples the span of each canvas from the model: MDLM ancestral sampling over t = 1, 1 - 1/steps, ..., 0, each
    masked position revealed with probability (t - s)/t per step with a token drawn from the model's distribution.

    This, not sample.denoise, draws the teacher pool: the eval sampler commits a fixed count in a chosen order and
    draws tokens on the CPU, while the distillation target is the teacher's own distribution and the pool is drawn in
    large batches on the GPU. x0, span, keypad: [B, T]; returns [B, T] with the span filled."""
    x = torch.where(span, torch.full_like(x0, mask_id), x0)
    for i in range(steps):
        masked = x == mask_id
        masked &= span
        if not bool(masked.any()):
            break
        t, s = 1.0 - i / steps, 1.0 - (i + 1) / steps
        sel = masked.reshape(-1).nonzero().squeeze(1)  # [N]
        lp = span_log_probs(model, x, span, keypad, sel, banned, temperature)  # [N, V]
        tok = sample_from(lp).squeeze(1)  # [N]
        reveal = torch.rand(sel.shape, device=x.device) < (t - s) / t if s > 0 else torch.ones_like(sel, dtype=torch.bool)
        x.view(-1)[sel[reveal]] = tok[reveal]
    return x


class StudentRollout(nn.Module):
    """The student's two-step rollout with everything the loss needs, in one module so DDP sees a single forward.

    The teacher (for the KL terms) is kept out of the module's parameters on purpose."""

    def __init__(self, student: nn.Module, teacher: nn.Module, banned: torch.Tensor, mask_id: int):
        super().__init__()
        self.student = student
        self.__dict__["teacher"] = teacher  # not a submodule: frozen, never synchronised, never saved with the student
        self.banned = banned  # a plain tensor, not a buffer: DDP would broadcast it, and gloo cannot send bools
        self.mask_id = mask_id

    def forward(self, x0: torch.Tensor, span: torch.Tensor, keypad: torch.Tensor, tau: torch.Tensor, group: int,
                intermediate: bool = True) -> dict:
        """x0, span, keypad: [B, T] (contexts; the span's content is ignored); tau: [B].

        Returns x_tau, x_fake [R, T] (R = B*group, the G samples of a context adjacent), logq [R] (with grad), and
        per-token means of entropy and KL(teacher || student) at x_1 and x_tau (with grad)."""
        B, T = x0.shape
        G, R, mask = group, B * group, self.mask_id
        dev = x0.device
        x1 = torch.where(span, torch.full_like(x0, mask), x0)  # [B, T]: the span all-masked
        # Step 1 runs once per context: the G samples share x_1, so they share its logits.
        sel1 = span.reshape(-1).nonzero().squeeze(1)  # [N1] flat indices into [B*T]
        lp1 = span_log_probs(self.student, x1, span, keypad, sel1, self.banned)  # [N1, V]
        tok1 = sample_from(lp1, G)  # [N1, G]
        lp1_tok = lp1.gather(1, tok1)  # [N1, G]
        b1, p1 = sel1 // T, sel1 % T
        g = torch.arange(G, device=dev)
        flat1 = (b1[:, None] * G + g[None, :]) * T + p1[:, None]  # [N1, G] flat indices into [R*T]
        rows1 = flat1 // T
        if intermediate:
            keep = torch.rand(tok1.shape, device=dev) < (1.0 - tau[b1])[:, None]  # revealed at x_tau  [N1, G]
        else:
            keep = torch.ones_like(tok1, dtype=torch.bool)  # one step fills the whole span
        span_r = span.repeat_interleave(G, 0)  # [R, T]
        keypad_r = keypad.repeat_interleave(G, 0)
        x_tau = x1.repeat_interleave(G, 0).clone()  # [R, T]
        x_tau.view(-1)[flat1[keep]] = tok1[keep]
        logq = per_row((lp1_tok * keep).reshape(-1), rows1.reshape(-1), R)  # [R]
        # The KL and entropy terms only matter for a student update (no teacher forwards during the disc warmup).
        terms = torch.is_grad_enabled()
        zero = logq.new_zeros(())
        out = {"ent1": zero, "kl1": zero, "ent2": zero, "kl2": zero}
        if terms:
            with torch.no_grad():
                t_lp1 = span_log_probs(self.teacher, x1, span, keypad, sel1, self.banned)
            out["ent1"], out["kl1"] = entropy(lp1).mean(), kl(t_lp1, lp1).mean()
        x_fake = x_tau
        if intermediate:
            masked2 = (x_tau == mask) & span_r
            sel2 = masked2.reshape(-1).nonzero().squeeze(1)  # [N2] flat indices into [R*T]
            if sel2.numel() > 0:
                lp2 = span_log_probs(self.student, x_tau, span_r, keypad_r, sel2, self.banned)  # [N2, V]
                tok2 = sample_from(lp2).squeeze(1)  # [N2]
                logq = logq + per_row(lp2.gather(1, tok2[:, None]).squeeze(1), sel2 // T, R)
                x_fake = x_tau.clone()
                x_fake.view(-1)[sel2] = tok2
                if terms:
                    with torch.no_grad():
                        t_lp2 = span_log_probs(self.teacher, x_tau, span_r, keypad_r, sel2, self.banned)
                    out["ent2"], out["kl2"] = entropy(lp2).mean(), kl(t_lp2, lp2).mean()
        out.update({"x_tau": x_tau, "x_fake": x_fake, "logq": logq, "span": span_r, "keypad": keypad_r})
        return out


class DiscObjective(nn.Module):
    """Discriminator logits at the span tokens of a batch of canvases, as one module for DDP."""

    def __init__(self, disc: Discriminator):
        super().__init__()
        self.disc = disc

    def forward(self, x: torch.Tensor, t: torch.Tensor, keypad: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
        with common.autocast(x.device):
            return self.disc.flat_logits(x, t, sel, keypad)  # [N] float32


def disc_loss(logits: torch.Tensor, is_real: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per-token BCE with label smoothing (targets 1 - s/2 for teacher tokens, s/2 for student tokens); the two
    classes are averaged separately and weighted equally (there are G student samples per teacher sample)."""
    target = torch.where(is_real, 1.0 - smoothing / 2, smoothing / 2)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    real, fake = bce[is_real], bce[~is_real]
    return 0.5 * (real.mean() + fake.mean())


# ---------------------------------------------------------------------------------------------------------------
# The teacher pool
# ---------------------------------------------------------------------------------------------------------------


class Pool:
    """Contexts with the data span and a teacher sample of it, all [N, T] on the device."""

    def __init__(self, x0, teacher, span, keypad, rng: np.random.Generator):
        self.x0, self.teacher, self.span, self.keypad = x0, teacher, span, keypad
        self.rng = rng
        self.order, self.cursor = rng.permutation(len(x0)), 0

    def __len__(self):
        return len(self.x0)

    def draw(self, n: int) -> dict:
        """n entries without replacement within an epoch over the pool."""
        idx = []
        while len(idx) < n:
            if self.cursor >= len(self.order):
                self.order, self.cursor = self.rng.permutation(len(self.x0)), 0
            take = self.order[self.cursor:self.cursor + n - len(idx)]
            idx.extend(take.tolist())
            self.cursor += len(take)
        i = torch.as_tensor(idx, device=self.x0.device)
        return {"x0": self.x0[i], "teacher": self.teacher[i], "span": self.span[i], "keypad": self.keypad[i]}


def build_pool(teacher, ex: Examples, size: int, batch: int, steps: int, temperature: float, special: dict,
               banned: torch.Tensor, rng: np.random.Generator, dev, eps: float) -> Pool:
    xs, fills, spans, pads = [], [], [], []
    for start in range(0, size, batch):
        n = min(batch, size - start)
        b = mdm_batch(ex, n, eps, rng, special["pad"], special["mask"])
        x0 = torch.from_numpy(b["x0"]).to(dev)
        span = torch.from_numpy(b["span"]).to(dev)
        keypad = torch.from_numpy(b["keypad"]).to(dev)
        fills.append(ancestral_fill(teacher, x0, span, keypad, steps, special["mask"], banned, temperature))
        xs.append(x0)
        spans.append(span)
        pads.append(keypad)
    return Pool(torch.cat(xs), torch.cat(fills), torch.cat(spans), torch.cat(pads), rng)


# ---------------------------------------------------------------------------------------------------------------
# One iteration
# ---------------------------------------------------------------------------------------------------------------


def span_content_share(x: torch.Tensor, span: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Share of span tokens that are not end-of-span: how much code a sample writes (a collapse to empty spans or a
    failure to stop shows up here before it shows up anywhere else)."""
    return ((x != eos_id) & span).sum().float() / span.sum().clamp(min=1)


def distinct_share(x: torch.Tensor, group: int) -> float:
    """Share of distinct samples among the G of each context, averaged (1: all different; 1/G: collapsed)."""
    rows = x.view(-1, group, x.shape[1]).cpu()
    return float(np.mean([len({tuple(r.tolist()) for r in g}) / group for g in rows]))


class Distiller:
    """Holds the models, optimizers and options; `step()` runs one iteration and returns its metrics."""

    def __init__(self, args, teacher: nn.Module, special: dict, env: common.Dist):
        self.args, self.special, self.env = args, special, env
        dev = env.device
        self.dev = dev
        self.mask_id, self.eos_id = special["mask"], special["eos"]
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher.eval()
        self.banned = banned_vocab(special, teacher.config["vocab_size"], dev)
        self.student = copy.deepcopy(teacher).train()
        for p in self.student.parameters():
            p.requires_grad_(True)
        self.ema = copy.deepcopy(self.student).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        k = args.disc_blocks or default_trainable_blocks(teacher.config["n_layer"])
        self.disc = Discriminator.from_teacher(teacher, k).to(dev).train()
        self.rollout = StudentRollout(self.student, self.teacher, self.banned, self.mask_id)
        self.disc_obj = DiscObjective(self.disc)
        self.rollout_train, self.disc_train = self.rollout, self.disc_obj
        if env.world > 1:
            ids = [env.local_rank] if dev.type == "cuda" else None
            self.rollout_train = nn.parallel.DistributedDataParallel(self.rollout, device_ids=ids)
            self.disc_train = nn.parallel.DistributedDataParallel(self.disc_obj, device_ids=ids)
        self.opt_s = torch.optim.AdamW(self.student.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
        self.opt_d = torch.optim.AdamW([p for p in self.disc.parameters() if p.requires_grad], lr=args.disc_lr,
                                       betas=(0.9, 0.99), weight_decay=0.0)
        self.it = 0

    def lr_scale(self) -> float:
        """Linear warmup of the student's lr over --warmup-steps after the discriminator warmup; then constant."""
        k = self.it - self.args.disc_warmup
        return min(1.0, (k + 1) / max(1, self.args.warmup_steps)) if k >= 0 else 0.0

    def step(self, batch: dict, measure: bool = False) -> dict:
        a, dev = self.args, self.dev
        B, T = batch["x0"].shape
        G = a.group
        train_student = self.it >= a.disc_warmup
        tau = a.tau_min + (a.tau_max - a.tau_min) * torch.rand(B, device=dev)  # [B], shared by a context's samples
        # 1. Student rollout (with grad only when the student is trained this iteration).
        if train_student:
            roll = self.rollout_train(batch["x0"], batch["span"], batch["keypad"], tau, G, not a.no_intermediate)
        else:
            with torch.no_grad():
                roll = self.rollout(batch["x0"], batch["span"], batch["keypad"], tau, G, not a.no_intermediate)
        fake, span_r, keypad_r = roll["x_fake"].detach(), roll["span"], roll["keypad"]
        # 2. Real (teacher) and fake (student) re-noised at the same tau, scored in one discriminator forward.
        tau_r = tau.repeat_interleave(G)
        x_disc = torch.cat([renoise(batch["teacher"], batch["span"], tau, self.mask_id),
                            renoise(fake, span_r, tau_r, self.mask_id)])  # [B + R, T]
        span_all = torch.cat([batch["span"], span_r])
        sel = span_all.reshape(-1).nonzero().squeeze(1)  # [N]
        rows = sel // T
        is_real = rows < B
        logits = self.disc_train(x_disc, torch.cat([tau, tau_r]), torch.cat([batch["keypad"], keypad_r]), sel)
        loss_d = disc_loss(logits, is_real, a.label_smoothing)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        gn_d = torch.nn.utils.clip_grad_norm_([p for p in self.disc.parameters() if p.requires_grad], a.grad_clip)
        self.opt_d.step()
        # 3. Reward from the pre-update logits of the student's samples, grouped advantages, student update.
        fake_logits = logits.detach()[~is_real]
        reward = clipped_reward(fake_logits, rows[~is_real] - B, B * G, a.reward_clip)  # [R]
        adv = group_advantages(reward, G, not a.no_group_norm, a.adv_clip)
        m = {"loss_disc": loss_d.item(), "disc_grad_norm": float(gn_d),
             "disc_acc_teacher": (logits.detach()[is_real] > 0).float().mean().item(),
             "disc_acc_student": (fake_logits < 0).float().mean().item(),
             "reward": reward.mean().item(), "reward_group_std": reward.view(-1, G).std(1, unbiased=False).mean().item(),
             "tau": tau.mean().item()}
        if train_student:
            w = time_weight(tau_r, a.w_min, a.w_max)
            n_tok = span_r.sum().clamp(min=1)
            loss_pg = policy_loss(roll["logq"], adv, w, n_tok)
            loss_kl = a.kl_coef * (roll["kl1"] + roll["kl2"])
            ent = 0.5 * (roll["ent1"] + roll["ent2"]) if not a.no_intermediate else roll["ent1"]
            loss = loss_pg + loss_kl - a.entropy_coef * ent
            for gr in self.opt_s.param_groups:
                gr["lr"] = a.lr * self.lr_scale()
            self.opt_s.zero_grad(set_to_none=True)
            loss.backward()
            gn_s = torch.nn.utils.clip_grad_norm_(self.student.parameters(), a.grad_clip)
            self.opt_s.step()
            self.update_ema()
            m.update({"loss_student": loss.item(), "loss_pg": loss_pg.item(), "kl1": roll["kl1"].item(),
                      "kl2": roll["kl2"].item(), "entropy": ent.item(), "student_grad_norm": float(gn_s),
                      "logq_per_token": (roll["logq"].sum() / n_tok).item(), "lr": a.lr * self.lr_scale()})
        if measure:
            m.update(self.measure(batch, fake, span_r, tau, G))
        self.it += 1
        return m

    @torch.no_grad()
    def measure(self, batch: dict, fake: torch.Tensor, span_r: torch.Tensor, tau: torch.Tensor, G: int) -> dict:
        """Diagnostics: the discriminator on re-noised data (true code), code share of spans, sample diversity."""
        sel = batch["span"].reshape(-1).nonzero().squeeze(1)
        x = renoise(batch["x0"], batch["span"], tau, self.mask_id)
        logits = self.disc_obj(x, tau, batch["keypad"], sel)
        return {"disc_data_real": (logits > 0).float().mean().item(),
                "code_share_student": span_content_share(fake, span_r, self.eos_id).item(),
                "code_share_teacher": span_content_share(batch["teacher"], batch["span"], self.eos_id).item(),
                "code_share_data": span_content_share(batch["x0"], batch["span"], self.eos_id).item(),
                "distinct_in_group": distinct_share(fake, G)}

    @torch.no_grad()
    def update_ema(self) -> None:
        d = self.args.ema
        for pe, ps in zip(self.ema.parameters(), self.student.parameters()):
            pe.mul_(d).add_(ps.detach(), alpha=1 - d)


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--teacher", required=True, help="teacher checkpoint written by train_pretrain.py (kind mdm)")
    common.add_run_args(a)
    a("--corpus-dir", default=str(common.CORPUS_DIR), help="folder with {train,valid}.jsonl.gz (contexts come from train)")
    a("--tokenizer", default=None, help="tokenizer.json (default: the one named in the teacher checkpoint)")
    a("--token-cache", default=None, help="folder for the uint16 token streams (default: next to the corpus)")
    a("--batch-size", type=int, default=32, help="contexts per iteration per process (B)")
    a("--group", type=int, default=4, help="student samples per context (G) for grouped reward normalisation")
    a("--lr", type=float, default=5e-6, help="student AdamW learning rate (the paper: 1e-6..5e-6)")
    a("--disc-lr", type=float, default=1e-4, help="discriminator AdamW learning rate (its head starts random)")
    a("--disc-blocks", type=int, default=0,
      help="trainable last blocks of the discriminator (0: min(4, n_layer // 2), at least 1)")
    a("--disc-warmup", type=int, default=300, help="iterations that train only the discriminator")
    a("--warmup-steps", type=int, default=100, help="linear warmup of the student's lr after the discriminator's")
    a("--label-smoothing", type=float, default=0.1, help="discriminator BCE label smoothing")
    a("--reward-clip", type=float, default=8.0, help="clip of the per-token log-odds reward")
    a("--adv-clip", type=float, default=3.0, help="clip of the grouped-normalised advantage")
    a("--tau-min", type=float, default=0.02, help="smallest intermediate / re-noising level tau")
    a("--tau-max", type=float, default=0.98, help="largest intermediate / re-noising level tau")
    a("--w-min", type=float, default=0.1, help="lower clamp of w(tau) = 1/tau")
    a("--w-max", type=float, default=10.0, help="upper clamp of w(tau) = 1/tau")
    a("--kl-coef", type=float, default=0.01, help="weight of KL(teacher || student) at each of x_1 and x_tau")
    a("--entropy-coef", type=float, default=5e-4, help="weight of the student's entropy bonus")
    a("--ema", type=float, default=0.999, help="EMA decay of the student weights that are saved and sampled")
    a("--grad-clip", type=float, default=1.0, help="gradient norm clip (student and discriminator)")
    a("--no-group-norm", action="store_true", help="ablation: advantages are the raw rewards (no grouped normalisation)")
    a("--no-intermediate", action="store_true",
      help="ablation: one-step student rollout, no intermediate state (re-noising stays coupled)")
    a("--pool-size", type=int, default=65536, help="teacher-sampled contexts per process, drawn once at the start")
    a("--pool-batch", type=int, default=512, help="canvases per teacher forward when drawing the pool")
    a("--teacher-steps", type=int, default=64, help="ancestral steps of the teacher's samples")
    a("--teacher-temperature", type=float, default=1.0, help="temperature of the teacher's samples (1: its distribution)")
    a("--max-seq-len", type=int, default=0, help="canvas length T (0: the teacher's max_seq_len)")
    a("--p-whole", type=float, default=0.05, help="share of whole-window canvases among the contexts")
    a("--p-line", type=float, default=0.5, help="share of line-aligned spans (else random runs of tokens)")
    a("--p-empty", type=float, default=0.05, help="share of empty spans (only end-of-span tokens)")
    a("--max-steps", type=int, default=10000, help="iterations (0: no limit)")
    a("--max-minutes", type=float, default=22.0, help="stop after this many minutes of wall time, pool included (0: off)")
    a("--log-every", type=int, default=20, help="append a training line (with diagnostics) to log.jsonl every N iterations")
    a("--eval-every", type=int, default=1000,
      help="every N iterations: validation ELBO of the EMA student and a checkpoint (0: only at the end, no ELBO)")
    a("--eval-examples", type=int, default=256, help="validation canvases for the ELBO")
    return p.parse_args(argv)


def valid_args(args, T: int) -> SimpleNamespace:
    """The fields data.make_valid reads, for the mdm objective."""
    return SimpleNamespace(objective="mdm", max_seq_len=T, p_whole=args.p_whole, p_line=args.p_line,
                           p_empty=args.p_empty, fim_rate=0.0, eval_examples=args.eval_examples,
                           batch_size=args.batch_size, eps=1e-3)


def distill(args, teacher: nn.Module, tckpt: dict, train: common.TokenStream, valid: common.TokenStream | None,
            newline: np.ndarray, env: common.Dist, tokenizer_path: str) -> dict:
    """Runs the distillation; writes student.pt, disc.pt and log.jsonl on the main process. Returns the summary."""
    dev = env.device
    t_start = time.time()
    special = tckpt["special"]
    T = args.max_seq_len or int(teacher.config["max_seq_len"])
    out_dir = Path(args.runs_dir) / args.run_name
    if env.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "log.jsonl", "a") if env.main else None

    def emit(line: dict) -> None:
        if env.main:
            log.write(json.dumps(line) + "\n")
            log.flush()
            print(json.dumps(line), flush=True)

    rng = np.random.default_rng(args.seed + 1000 * env.rank)
    ex = Examples(train, special, newline, T, rng, args.p_whole, args.p_line, args.p_empty, 0.0)
    d = Distiller(args, teacher, special, env)
    emit({"event": "start", "teacher": str(args.teacher), "params": count_params(teacher),
          "disc_trainable_blocks": d.disc.trainable_blocks,
          "disc_trainable_params": sum(p.numel() for p in d.disc.parameters() if p.requires_grad),
          "device": str(dev), "world": env.world, "torch": str(torch.__version__)})
    t0 = time.time()
    pool = build_pool(teacher, ex, args.pool_size, args.pool_batch, args.teacher_steps, args.teacher_temperature,
                      special, d.banned, rng, dev, 1e-3)
    pool_s = time.time() - t0
    emit({"event": "pool", "size": len(pool), "teacher_steps": args.teacher_steps, "seconds": round(pool_s, 1),
          "code_share_teacher": span_content_share(pool.teacher, pool.span, special["eos"]).item(),
          "code_share_data": span_content_share(pool.x0, pool.span, special["eos"]).item()})
    valid_batches = []
    if env.main and args.eval_every and valid is not None:
        valid_batches = make_valid(valid_args(args, T), valid, special, newline)
        emit({"event": "teacher_valid", **validation_bits("mdm", teacher, valid_batches, dev)})

    tokenizer_sha = checkpoint.tokenizer_sha256(tokenizer_path, tckpt)
    lineage = checkpoint.lineage_after(tckpt)  # the student is the teacher trained further: its runs come first

    def save(metrics: dict) -> None:
        seconds = time.time() - t_start
        fields = {"stage": "distill", "special": special, "tokenizer": tokenizer_path,
                  "tokenizer_sha256": tokenizer_sha, "lineage": lineage, "args": args, "step": d.it,
                  "train_tokens": 0, "train_seconds": seconds, "metrics": metrics, "device": dev, "world": env.world,
                  "teacher": {"path": str(args.teacher), "step": tckpt.get("step"),
                              "train_tokens": tckpt.get("train_tokens"), "train_seconds": tckpt.get("train_seconds"),
                              "metrics": tckpt.get("metrics")},
                  "distill_seconds": seconds}
        checkpoint.save(out_dir / "student.pt", d.ema.state_dict(), config=dict(teacher.config), **fields)
        checkpoint.save(out_dir / "disc.pt", d.disc.state_dict(), config=d.disc.disc_config(), **fields)

    def do_eval() -> dict:
        m = {}
        if valid_batches:
            m = {f"student_{k}": v for k, v in validation_bits("mdm", d.ema, valid_batches, dev).items()}
        return m

    window: dict[str, list] = {}
    last_eval: dict = {}
    while True:
        elapsed = time.time() - t_start
        stop = (args.max_steps and d.it >= args.max_steps) or (args.max_minutes and elapsed >= args.max_minutes * 60)
        if stop_everywhere(stop, env.world, dev):
            break
        measure = env.main and (d.it + 1) % args.log_every == 0
        m = d.step(pool.draw(args.batch_size), measure=measure)
        for k, v in m.items():
            window.setdefault(k, []).append(v)
        if env.main and d.it % args.log_every == 0:
            emit({"step": d.it, "elapsed_s": round(time.time() - t_start, 1),
                  **{k: float(f"{np.mean(v):.5g}") for k, v in window.items()}})
            window = {}
        if env.main and args.eval_every and d.it % args.eval_every == 0:
            last_eval = do_eval()
            emit({"step": d.it, "event": "eval", **last_eval})
            save(last_eval)
    if env.main:
        if not (args.eval_every and d.it % args.eval_every == 0 and d.it > 0):
            last_eval = do_eval()
            if last_eval:
                emit({"step": d.it, "event": "eval", **last_eval})
        save(last_eval)
    summary = {"done": True, "step": d.it, "wall_seconds": round(time.time() - t_start, 1),
               "pool_seconds": round(pool_s, 1), "out": str(out_dir), **last_eval}
    emit(summary)
    if log:
        log.close()
    return summary


def main(argv=None):
    args = parse_args(argv)
    env = common.setup_runtime(args.device, args.threads, args.cpu_precision)
    common.seed_everything(args.seed + env.rank)
    teacher, tckpt = checkpoint.load_model(args.teacher, env.device)
    if teacher.config["kind"] != "mdm":
        sys.exit(f"distill: {args.teacher} is a {teacher.config['kind']!r} checkpoint; the teacher must be 'mdm'")
    tokenizer_path = args.tokenizer or tckpt.get("tokenizer") or str(common.TOKENIZER_PATH)
    if not os.path.exists(tokenizer_path) and not os.path.isabs(tokenizer_path):
        # Checkpoints name the tokenizer relative to the folder their run ran from: the repository root (older runs).
        tokenizer_path = os.path.join(common.REPO_DIR, tokenizer_path)
    if common.read_special_ids(tokenizer_path) != tckpt["special"]:
        sys.exit(f"distill: {tokenizer_path} has other special ids than the teacher {args.teacher}")
    vocab = int(teacher.config["vocab_size"])
    newline = common.newline_table(tokenizer_path, vocab)
    train = common.token_stream("train", args.corpus_dir, tokenizer_path, args.token_cache)
    valid = common.token_stream("valid", args.corpus_dir, tokenizer_path, args.token_cache) if args.eval_every else None
    distill(args, teacher, tckpt, train, valid, newline, env, str(tokenizer_path))
    if env.world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
