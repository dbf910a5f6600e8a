"""Likelihoods of finished candidates under the denoiser, for ranking them (scripts/eval_rank.py --rescore).

The sampler's own score of a row (the log-probabilities of its tokens when they were committed) is taken from
partly-masked canvases in whatever order decoding went, so early tokens were judged without the later ones. These
score the finished row again, with every token judged in the same way:

- pseudo_log_likelihood: the row's span tokens split into M interleaved groups (token k in group k mod M); each group
  masked in turn, the rest of the row kept, and each masked token's log-probability read. M canvases per row.
- left_to_right: the chain rule in reading order, log p(x_k | context, x_<k, masks at k and after), what an AR model
  scores. One canvas per scored token.

Both score the tokens a user would see: the content up to and including its first end-of-span (which decided the
length), as the engine's likelihoodOf does; end-of-span padding after it is never scored.

`denoise(ids [B, T], positions [B, P], span [B, T] bool) -> logits [B, P, V]` is checkpoint.Loaded.denoiser_fn (or a
stand-in in the tests).
"""

from __future__ import annotations

from typing import Callable

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def scored_length(span_tokens: list[int], eos_id: int) -> int:
    """How many of the span's tokens a ranking scores: up to and including the first end-of-span."""
    try:
        return span_tokens.index(eos_id) + 1
    except ValueError:
        return len(span_tokens)


def _span_mask(length: int, span: list[int]) -> torch.Tensor:
    mask = torch.zeros(length, dtype=torch.bool)
    mask[span] = True
    return mask


@torch.no_grad()
def pseudo_log_likelihood(denoise: Denoise, canvas: list[int], span: list[int], mask_id: int, eos_id: int,
                          groups: int = 4) -> list[float]:
    """Per scored token (scored_length of them), its log-probability with its interleaved group masked."""
    tokens = [canvas[p] for p in span]
    n = scored_length(tokens, eos_id)
    base = torch.tensor(canvas)
    rows = []
    for g in range(min(groups, n)):
        x = base.clone()
        x[[span[k] for k in range(g, n, groups)]] = mask_id
        rows.append(x)
    ids = torch.stack(rows)  # [G, T]
    positions = torch.tensor(span[:n]).expand(len(rows), -1)  # [G, n]: every canvas reads every scored position
    logits = denoise(ids, positions, _span_mask(len(canvas), span).expand(len(rows), -1))  # [G, n, V]
    logp = torch.log_softmax(logits.float(), -1)
    target = torch.tensor(tokens[:n])
    return [logp[k % groups, k, target[k]].item() for k in range(n)]


@torch.no_grad()
def left_to_right(denoise: Denoise, canvas: list[int], span: list[int], mask_id: int, eos_id: int,
                  max_tokens: int = 24) -> list[float]:
    """Per scored token (at most max_tokens of them), log p(token | context, the tokens before it, masks after)."""
    tokens = [canvas[p] for p in span]
    n = min(scored_length(tokens, eos_id), max_tokens)
    base = torch.tensor(canvas)
    rows = []
    for k in range(n):
        x = base.clone()
        x[span[k:]] = mask_id
        rows.append(x)
    ids = torch.stack(rows)  # [n, T]
    positions = torch.tensor(span[:n]).unsqueeze(1)  # [n, 1]: canvas k predicts span position k
    logits = denoise(ids, positions, _span_mask(len(canvas), span).expand(n, -1))[:, 0]  # [n, V]
    logp = torch.log_softmax(logits.float(), -1)
    return logp[torch.arange(n), torch.tensor(tokens[:n])].tolist()


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("-inf")
