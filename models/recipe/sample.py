"""Decoding for the eval harness: the masked-diffusion sampler (same semantics as the TypeScript engine) and greedy
fill-in-the-middle decoding for the autoregressive baseline.

Not a stage of its own: eval.py imports it. The one command that exercises it end to end is
    python models/recipe/eval.py --tasks 12 --steps 8 --strategies confidence

Diffusion sampler, one canvas row at a time (rows of a batch share T and are decoded independently):
- N steps over t = linspace(1, 0, N+1). At step i (t -> s) a row with m masked positions commits
  n = m * (1 - s/t) = m // (N - i) tokens (exact integer form of the same formula; at the last step n = m), and at
  least one, so a row with fewer masks than steps finishes early and later steps cost no model call.
- Each step predicts every masked position once. Temperature 0 takes the argmax; above 0 the logits are divided by
  the temperature, cut to the top-p nucleus and sampled. The commit order score is the chosen token's probability
  ("confidence"), top-1 minus top-2 probability ("margin"), negative entropy ("entropy"), all of the tempered,
  nucleus-cut distribution, or a uniform random draw ("random"). The n best are committed; with a confidence threshold
  every position whose token probability is at least the threshold is committed as well (Fast-dLLM).
- Committed tokens are never re-masked. The mask token itself is never predicted.
- The completion is the span's tokens up to the first end-of-span token.
The decoding order (step index and rank within the step for every span position) comes back for AR-ness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

STRATEGIES = ("random", "confidence", "margin", "entropy")


@dataclass(frozen=True)
class SamplerOptions:
    steps: int
    strategy: str = "confidence"
    temperature: float = 0.0
    top_p: float = 1.0
    threshold: float = 0.0  # 0 turns the threshold off.

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {STRATEGIES}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or not 0 <= self.threshold <= 1:
            raise ValueError(f"bad sampler options {self}")


@dataclass
class DenoiseResult:
    canvas: torch.Tensor  # [B, T] long: the filled canvases
    step: torch.Tensor  # [B, T] long: step at which each position was committed, -1 where it was never masked
    rank: torch.Tensor  # [B, T] long: rank of the position among the commits of its step (0 = preferred), else -1
    model_calls: int  # forward passes made (each over the whole batch)


def commit_counts(masked: torch.Tensor, step: int, steps: int) -> torch.Tensor:
    """masked: [B] long, masks left per row -> [B] tokens to commit at `step` of `steps` (0 for finished rows).

    n = m * (1 - s/t) with t = 1 - step/steps and s = 1 - (step+1)/steps, i.e. m / (steps - step), floored; at least
    one while masks remain; everything at the last step."""
    if step >= steps - 1:
        return masked.clone()
    n = torch.div(masked, steps - step, rounding_mode="floor")
    return torch.where(masked > 0, n.clamp(min=1), n)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """logits: [..., V] -> logits with everything outside the smallest set of mass >= top_p set to -inf."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    drop_sorted = cumulative - sorted_logits.softmax(-1) >= top_p  # Keep the token that crosses top_p.
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def choose_tokens(logits: torch.Tensor, options: SamplerOptions, generator: torch.Generator):
    """logits: [B, P, V] float -> (tokens [B, P] long, probability of each token [B, P], order score [B, P])."""
    logits = logits.float()
    if options.temperature > 0:
        logits = top_p_filter(logits / options.temperature, options.top_p)
    probs = logits.softmax(-1)  # [B, P, V]
    if options.temperature > 0:
        flat = probs.reshape(-1, probs.shape[-1]).cpu()
        tokens = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1]).to(probs.device)
    else:
        tokens = probs.argmax(-1)
    token_prob = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # [B, P]
    if options.strategy == "confidence":
        score = token_prob
    elif options.strategy == "margin":
        top2 = probs.topk(2, dim=-1).values
        score = top2[..., 0] - top2[..., 1]
    elif options.strategy == "entropy":
        score = (probs * probs.clamp_min(1e-30).log()).sum(-1)  # Negative entropy: the surest position first.
    else:
        score = torch.rand(tokens.shape, generator=generator).to(probs.device)
    return tokens, token_prob, score


def masked_positions(masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """masked: [B, T] bool -> (positions [B, P] long, valid [B, P] bool), P = most masks in a row. Rows with fewer
    masks repeat their last index (any valid index would do: its logits are ignored)."""
    counts = masked.sum(1)
    P = int(counts.max())
    T = masked.shape[1]
    # Sorting the key (unmasked -> T + index) puts each row's masked indices first, in increasing order.
    index = torch.arange(T, device=masked.device).expand_as(masked)
    key = torch.where(masked, index, index + T)
    positions = key.sort(dim=1).values[:, :P]
    valid = torch.arange(P, device=masked.device)[None, :] < counts[:, None]
    positions = torch.where(positions >= T, torch.zeros_like(positions), positions)
    return positions, valid


ModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def denoise(model_fn: ModelFn, canvas: torch.Tensor, mask_id: int, options: SamplerOptions,
            generator: torch.Generator, span: Optional[torch.Tensor] = None) -> DenoiseResult:
    """Fills every mask_id position of canvas [B, T] (long).

    model_fn(input_ids [B, T], positions [B, P], span_mask [B, T] bool) -> logits [B, P, V]. `span` ([B, T] bool) marks
    the generated region for models with context-only attention; by default it is the initially masked positions.
    """
    x = canvas.clone()
    masked = x == mask_id  # [B, T]
    span = masked.clone() if span is None else span
    step_of = torch.full_like(x, -1)
    rank_of = torch.full_like(x, -1)
    calls = 0
    for i in range(options.steps):
        left = masked.sum(1)  # [B]
        if int(left.max()) == 0:
            break
        positions, valid = masked_positions(masked)  # [B, P]
        logits = model_fn(x, positions, span)  # [B, P, V]
        calls += 1
        logits[..., mask_id] = float("-inf")  # The denoiser predicts clean tokens only (MDLM's SUBS).
        tokens, token_prob, score = choose_tokens(logits, options, generator)
        score = score.masked_fill(~valid, float("-inf"))
        n = commit_counts(left, i, options.steps)  # [B]
        # Rank every masked position by score, best first; ties go to the leftmost position (stable sort).
        order = torch.sort(-score, dim=1, stable=True).indices  # [B, P]
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=x.device).expand_as(order))
        commit = valid & (rank < n[:, None])
        if options.threshold > 0:
            commit |= valid & (token_prob >= options.threshold)
        # Ranks within the step among the committed positions only (0 = preferred).
        commit_rank = torch.where(commit, rank, torch.full_like(rank, 1 << 30))
        commit_rank = torch.empty_like(order).scatter_(
            1, torch.sort(commit_rank, dim=1, stable=True).indices,
            torch.arange(order.shape[1], device=x.device).expand_as(order))
        rows, cols = commit.nonzero(as_tuple=True)
        where = positions[rows, cols]
        x[rows, where] = tokens[rows, cols]
        step_of[rows, where] = i
        rank_of[rows, where] = commit_rank[rows, cols]
        masked[rows, where] = False
    if bool(masked.any()):
        raise RuntimeError("sampler left masks unresolved")  # Impossible by construction: the last step commits all.
    return DenoiseResult(x, step_of, rank_of, calls)


def decoding_order(step: list[int], rank: list[int]) -> list[list[int]]:
    """Per-span step and rank lists -> the commits of each step as span offsets, in the order the step preferred
    them. `step[j]`/`rank[j]` belong to span offset j."""
    steps: dict[int, list[tuple[int, int]]] = {}
    for offset, (s, r) in enumerate(zip(step, rank)):
        steps.setdefault(s, []).append((r, offset))
    return [[offset for _, offset in sorted(steps[s])] for s in sorted(steps)]


def trim_at_eos(tokens: list[int], eos_id: int) -> list[int]:
    """The completion: everything before the first end-of-span token."""
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens


@torch.no_grad()
def greedy_ar(model_fn: Callable[[torch.Tensor], torch.Tensor], prompts: torch.Tensor, eos_id: int, max_new: int,
              banned: tuple[int, ...] = ()) -> tuple[list[list[int]], int]:
    """Greedy decoding from prompts [B, T0] (long, same length) for at most max_new tokens or until every row has
    produced eos_id. model_fn(ids [B, T]) -> logits [B, T, V]; the whole sequence is recomputed each step (no KV
    cache: the baseline is small, and this keeps it free of any model internals). Returns (tokens per row before its
    first eos, model calls)."""
    x = prompts
    out: list[list[int]] = [[] for _ in range(prompts.shape[0])]
    done = [False] * prompts.shape[0]
    calls = 0
    for _ in range(max_new):
        logits = model_fn(x)[:, -1, :].float()  # [B, V]
        calls += 1
        if banned:
            logits[:, list(banned)] = float("-inf")
        nxt = logits.argmax(-1)  # [B]
        for b, token in enumerate(nxt.tolist()):
            if not done[b]:
                if token == eos_id:
                    done[b] = True
                else:
                    out[b].append(token)
        if all(done):
            break
        x = torch.cat([x, nxt[:, None]], dim=1)
    return out, calls
