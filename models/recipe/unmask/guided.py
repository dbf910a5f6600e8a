"""Reward-guided ancestral sampling (DiDi-Instruct, methods.md section 2) for the Python eval: the sampler of
sample.py with the distillation's discriminator as a reward model.

Not a stage of its own; eval_heldout.py calls `guided_denoise` in place of `sample.denoise` (same arguments plus the
discriminator and `GuidanceOptions`, same result plus `disc_calls`):
    disc, _ = guided.load_disc("models/recipe/runs/gpu-distill/disc.pt", device)
    result = guided.guided_denoise(m.denoiser_fn, disc, canvas, m.mask_id, m.eos_id, options, generators,
                                   m.banned_ids, guidance=guided.GuidanceOptions())

Steps follow sample.denoise exactly (same schedule, strategies, threshold, end-of-span fill, banned ids, one random
stream per row, and the same draws from it when guidance is off); guidance changes two things:
- First half of the steps (`tilt_fraction`): gradient tilting. The student's log-probabilities at the masked
  positions (over the vocabulary minus the banned ids) become log p + h * clamp(dD/dlog p, +-c), where D is the
  discriminator's summed logit over the span of the canvas whose masked positions hold the *expected* token
  embedding under p (a soft, differentiable x_0), scored at the discriminator's cleanest noise level. Tokens are then
  chosen from the tilted distribution as usual: its K-best lists (sample.kbest) under sample.choose_tokens' rule.
- Second half: reranking. M candidate commits are drawn for the step (candidate 0 is exactly the unguided choice;
  the others are drawn at `candidate_temperature`), each candidate canvas is scored by the discriminator (sum of its
  per-token logits over the span, at the noise level s the step ends at), and one is kept per row: drawn from
  softmax(scores) with the row's generator, or the best with `select="argmax"`.
The TypeScript runtime can do the reranking half with the exported discriminator (no gradients there).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from unmask import sample
from unmask.discriminator import Discriminator, load_discriminator


@dataclass(frozen=True)
class GuidanceOptions:
    enabled: bool = True  # False: exactly sample.denoise (the "without guided sampling" ablation)
    tilt: float = 1.0  # h: strength of the gradient tilt
    tilt_clip: float = 1.0  # c: clamp of dD/dlog p per vocabulary entry
    tilt_fraction: float = 0.5  # share of the steps (from the first) that tilt; the rest rerank
    candidates: int = 4  # M: candidate commits per reranked step (1 turns reranking off)
    candidate_temperature: float = 1.0  # temperature of candidates 1..M-1 (candidate 0 is the unguided choice)
    select: str = "sample"  # "sample": one from softmax(scores); "argmax": the best-scored candidate
    t_clean: Optional[float] = None  # noise level of a fully revealed canvas; None: the disc's own (its --tau-min)

    def __post_init__(self):
        if self.candidates < 1 or not 0.0 <= self.tilt_fraction <= 1.0 or self.select not in ("sample", "argmax"):
            raise ValueError(f"bad guidance options {self}")


@dataclass
class GuidedResult(sample.DenoiseResult):
    disc_calls: int = 0  # discriminator forward passes (each over the whole batch, or batch x M when reranking)


def load_disc(path: str, device) -> Discriminator:
    """The trained discriminator (runs/<name>/disc.pt) in eval mode, for `guided_denoise`; it remembers the smallest
    noise level it was trained at (`t_clean`), where a fully revealed canvas is scored."""
    disc, ckpt = load_discriminator(path, device)
    disc.t_clean = float(ckpt.get("args", {}).get("tau_min", 0.02))
    return disc


def clean_level(disc, guidance: GuidanceOptions) -> float:
    if guidance.t_clean is not None:
        return guidance.t_clean
    return float(getattr(disc, "t_clean", 0.02))


def tilt_logits(disc: Discriminator, x: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor,
                span_pos: torch.Tensor, span_valid: torch.Tensor, logits: torch.Tensor,
                guidance: GuidanceOptions) -> torch.Tensor:
    """logits [B, P, V] at the masked positions [B, P] (valid [B, P]) -> tilted log-probabilities [B, P, V].

    x [B, T] is the canvas; the discriminator's score sums over the span positions span_pos [B, S] (span_valid)."""
    with torch.enable_grad():
        lp = logits.float().log_softmax(-1).detach().requires_grad_(True)  # [B, P, V]
        weight = disc.backbone.embed.weight  # [V, D]
        soft = lp.exp().to(weight.dtype) @ weight  # [B, P, D]: expected embedding under the student
        emb = disc.embed(x)  # [B, T, D]
        rows, cols = valid.nonzero(as_tuple=True)
        emb = emb.index_put((rows, positions[rows, cols]), soft[rows, cols])
        t = torch.full((x.shape[0],), clean_level(disc, guidance), device=x.device)
        score = (disc.score_embeddings(emb, span_pos, t) * span_valid).sum()
        (grad,) = torch.autograd.grad(score, lp)
    return lp.detach() + guidance.tilt * grad.clamp(-guidance.tilt_clip, guidance.tilt_clip)


def commit_mask(tokens, token_prob, score, valid, positions, masked, hole_of, n, options: sample.SamplerOptions,
                eos_id):
    """Which masked positions a step commits and which it fills with end-of-span: sample.denoise's rule.
    All [B, P]; masked and hole_of [B, T]; n [B]. Returns (tokens with the fill applied, commit [B, P], fill [B, P])."""
    commit = sample.select_commits(tokens, token_prob, score, valid, positions, masked, n, options, eos_id)
    fill = torch.zeros_like(commit)
    if options.eos_fill:
        hole = hole_of.gather(1, positions)  # [B, P]
        marker = torch.where(commit & (tokens == eos_id), hole, torch.full_like(hole, -1))
        fill = valid & ~commit & (marker.cummax(1).values == hole)
        tokens = torch.where(fill, torch.full_like(tokens, eos_id), tokens)
    return tokens, commit, fill


@torch.no_grad()
def guided_denoise(model_fn: sample.ModelFn, disc: Optional[Discriminator], canvas: torch.Tensor, mask_id: int,
                   eos_id: int, options: sample.SamplerOptions, generators: list[torch.Generator],
                   banned_ids: tuple[int, ...] = (), span: Optional[torch.Tensor] = None,
                   guidance: GuidanceOptions = GuidanceOptions()) -> GuidedResult:
    """sample.denoise with reward guidance (module docstring). canvas [B, T] long; model_fn(ids [B, T], positions
    [B, P], span [B, T]) -> logits [B, P, V]; row r draws from generators[r]. `disc` may be None only with
    guidance.enabled False."""
    if guidance.enabled and disc is None:
        raise ValueError("guided sampling needs the discriminator (or GuidanceOptions(enabled=False))")
    x = canvas.clone()
    B = x.shape[0]
    masked = x == mask_id  # [B, T]
    span = masked.clone() if span is None else span
    hole_of = sample.hole_ids(span)  # [B, T]
    span_pos, span_valid = sample.masked_positions(span)  # [B, S]: where the discriminator's score is summed
    step_of = torch.full_like(x, -1)
    filled = torch.zeros_like(masked)
    banned = sorted({mask_id, *banned_ids} - {eos_id})
    tilt_steps = int(round(options.steps * guidance.tilt_fraction)) if guidance.enabled else 0
    calls = disc_calls = 0
    for i in range(options.steps):
        left = masked.sum(1)  # [B]
        if int(left.max()) == 0:
            break
        positions, valid = sample.masked_positions(masked)  # [B, P]
        logits = model_fn(x, positions, span).float()  # [B, P, V]
        calls += 1
        if i < tilt_steps and guidance.tilt > 0:
            logits[..., banned] = float("-inf")  # the tilt moves the distribution the sampler lists from
            logits = tilt_logits(disc, x, positions, valid, span_pos, span_valid, logits, guidance)
            disc_calls += 1
        top_logits, top_ids, log_z = sample.kbest(logits, options.top_k, banned)
        tail = sample.entropy_tail(top_logits, log_z, logits.shape[-1] - len(banned))
        if options.eos_after_code:
            top_logits = sample.ban_eos_first(top_logits, top_ids, positions, hole_of, eos_id)
        n = sample.commit_counts(left, i, options.steps)  # [B]
        rerank = guidance.enabled and i >= tilt_steps and guidance.candidates > 1
        M = guidance.candidates if rerank else 1
        cands = []
        for c in range(M):
            opts = options if c == 0 else replace(options, temperature=guidance.candidate_temperature)
            tokens, token_prob, score = sample.choose_tokens(top_logits, top_ids, log_z, valid, opts, generators, tail)
            cands.append(commit_mask(tokens, token_prob, score, valid, positions, masked, hole_of, n, options, eos_id))
        pick = torch.zeros(B, dtype=torch.long, device=x.device)
        if M > 1:
            canvases = []
            for tokens, commit, fill in cands:
                xc = x.clone()
                take = commit | fill
                rows, cols = take.nonzero(as_tuple=True)
                xc[rows, positions[rows, cols]] = tokens[rows, cols]
                canvases.append(xc)
            stacked = torch.cat(canvases)  # [M*B, T], candidate-major
            s_level = max(1.0 - (i + 1) / options.steps, clean_level(disc, guidance))
            t = torch.full((stacked.shape[0],), s_level, device=x.device)
            per_token = disc(stacked, span_pos.repeat(M, 1), t) * span_valid.repeat(M, 1)  # [M*B, S]
            scores = per_token.sum(1).view(M, B).T  # [B, M]
            disc_calls += 1
            if guidance.select == "argmax":
                pick = scores.argmax(1)
            else:
                probs = scores.float().softmax(1).cpu()  # [B, M]
                pick = torch.stack([torch.multinomial(probs[r], 1, generator=generators[r]) for r in range(B)])
                pick = pick.squeeze(1).to(x.device)
        row = torch.arange(B, device=x.device)
        tokens = torch.stack([c[0] for c in cands])[pick, row]  # [B, P]: each row's picked candidate
        commit = torch.stack([c[1] for c in cands])[pick, row]
        fill = torch.stack([c[2] for c in cands])[pick, row]
        sample.apply_step(x, step_of, filled, masked, positions, tokens, commit, fill, i)
    if bool(masked.any()):
        raise RuntimeError("sampler left masks unresolved")
    return GuidedResult(x, step_of, filled, calls, disc_calls)
