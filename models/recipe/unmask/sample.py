"""Decoding for the eval harness: the masked-diffusion sampler (same semantics as the TypeScript engine) and greedy
fill-in-the-middle decoding for the autoregressive baseline.

Not a stage of its own: eval_heldout.py imports it, and test_eval.py checks it against a mock model. A quick run:
    python -m scripts.eval_heldout --ckpt models/recipe/runs/cpu-mdm-base/ckpt.pt --tasks 12 --steps 8 \
        --strategies confidence --nll-batches 0

Diffusion sampler, one canvas row at a time (rows of a batch share T and are decoded independently):
- N steps over t = linspace(1, 0, N+1). At step i (t -> s) a row with m masked positions commits
  n = m * (1 - s/t) = m // (N - i) tokens (exact integer form of the same formula; at the last step n = m), and at
  least one, so a row with fewer masks than steps finishes early and later steps cost no model call.
- Each step predicts every masked position once, from its K-best list (models/README.md, "K-best head"; `kbest`
  computes what the exported graph's head does): the K largest logits (K = top_k; ties to the lower id) over the
  vocabulary minus the banned ids, and log_z, the logsumexp over that vocabulary. A position's list is its K
  entries minus those with logit -inf, minus end-of-span at the first position of a hole (end-of-span after code);
  nothing is renormalised for the removal. With p_i = exp(logit_i - log_z): temperature 0 takes the first entry and
  scores with p (confidence p_0, margin p_0 - p_1, negative entropy sum p log p over the list plus entropy_tail's even
  tail for the mass outside the K entries); temperature T > 0
  weighs the list by w_i = exp((logit_i - logit_0) / T), keeps the shortest prefix whose weight reaches top_p of the
  list's total, draws from q = w / sum(prefix) and scores with q (confidence q(token), margin q_0 - q_1, negative
  entropy sum q log q over the prefix). "random" scores with a uniform draw. (The engine ranks candidate fills by
  the model's log-probability logit - log_z; this sampler makes one fill per row and ranks none.) With a confidence
  threshold every position whose token probability (p or q) is above it is committed (Fast-dLLM); then the
  best-scored others up to n.
- With end-of-span fill (the engine's default), once a step commits end-of-span in a hole, the hole's masks to its
  right are committed as end-of-span in the same step: the completion ends there anyway.
- With end-of-span after code (the engine's default), the first position of a hole never chooses end-of-span, and a
  position that chooses end-of-span waits until its left neighbour was committed in an earlier step: it keeps its
  place in the ranking (it uses up one of the step's scheduled commits) but is not committed; a step still commits at
  least one position and the last step commits everything. A span's end then grows from the code written so far and
  a hole is never empty: without it, confidence order commits the surest end-of-span tokens at the far right first
  and walks left until the whole span is end-of-span (DiffuCoder's "entropy sink", seen in every CPU-trained
  checkpoint), an empty completion.
- Committed tokens are never re-masked. Banned ids (every special token but end-of-span) are never listed.
- Token healing (the engine's healing.ts and sampler.ts rule 5; test/fixtures/healing-cases.json holds both sides to
  one rule): when the text before a hole ends inside a token (the cursor inside a word, `token.start_ma`), `heal_tail`
  picks the last tokens to drop (the "partial" text: the longest clean tail that some token extends) and
  `first_tokens` constrains the hole's first positions: in the first step they are decided left to right
  (`heal_chains`), besides the step's scheduled commits and whatever their scores, each from its list minus the tokens
  not compatible with what is left of the partial (one that starts with it ends the chain, a shorter one that it
  starts with passes the rest on; not renormalised). A link without a compatible token puts the dropped tokens back
  (committed by the sampler: marked filled, left out of the decoding order). The completion is the span's text minus
  the partial (`after_partial`).
- The completion is the span's tokens up to the first end-of-span token.
The step of every commit comes back for AR-ness (decoding order: by step, left to right within a step).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from unmask import common

STRATEGIES = ("random", "confidence", "margin", "entropy")


@dataclass(frozen=True)
class SamplerOptions:
    steps: int
    strategy: str = "confidence"
    temperature: float = 0.0
    top_p: float = 1.0
    threshold: float = 0.0  # 0 turns the threshold off.
    eos_fill: bool = True  # After an end-of-span commit, the hole's later masks become end-of-span too.
    eos_after_code: bool = True  # End-of-span only right after a committed code token of its hole (never first).
    top_k: int = common.DEFAULT_TOP_K  # K of the K-best lists (the exported head's K): top-k sampling with k = K.

    def __post_init__(self):
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {STRATEGIES}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or not 0 <= self.threshold <= 1:
            raise ValueError(f"bad sampler options {self}")


MAX_HEALED_TOKENS = 4  # A character is at most 4 UTF-8 bytes, and a word cut by the cursor rarely more tokens.


@dataclass(frozen=True)
class TokenHealing:
    """How a hole's first positions are constrained (the engine's FirstTokenRule)."""
    partial: str  # the text the hole's first tokens must spell out (and may extend)
    ids: tuple[int, ...]  # every token compatible with some suffix of the partial, ascending
    texts: tuple[str, ...]  # their texts
    fallback: tuple[int, ...]  # the removed tokens: put back when a chain finds no compatible listed token


def token_pieces(decode: Callable[[list[int]], str], vocab_size: int, special_ids) -> list[str]:
    """The text of every id decoded alone, "" for special ids (the engine's TextCodec.pieces)."""
    special = set(special_ids)
    return ["" if i in special else decode([i]) for i in range(vocab_size)]


def compatible(piece: str, remaining: str) -> Optional[str]:
    """What is left of `remaining` after a token of text `piece`: "" when the token spells it out (and maybe more),
    the rest when the token is a shorter start of it, None when they are not compatible."""
    if not piece:
        return None
    if piece.startswith(remaining):
        return ""
    if remaining.startswith(piece):
        return remaining[len(piece):]
    return None


def heal_tail(tokens: list[int], text: str, decode: Callable[[list[int]], str],
              pieces: list[str]) -> Optional[TokenHealing]:
    """The healing of the text before a hole (tokens: its tokens as the canvas holds them), or None when it ends at a
    certain boundary. Nothing when the text ends in a line break (the pre-tokenizer always ends a piece there, and the
    line start is the model's line-aligned training shape); else the longest run of last tokens (at most
    MAX_HEALED_TOKENS) whose text decodes cleanly, is a suffix of the text and is strictly extended by some vocabulary
    token; none: a boundary. The canvas drops the last len(fallback) tokens."""
    if not tokens or not text or text[-1] in "\r\n":
        return None
    removed, partial = 0, ""
    for n in range(1, min(MAX_HEALED_TOKENS, len(tokens)) + 1):
        tail = decode(tokens[len(tokens) - n:])
        if not tail or "\ufffd" in tail or not text.endswith(tail):
            continue
        if any(len(piece) > len(tail) and piece.startswith(tail) for piece in pieces):
            removed, partial = n, tail
    if removed == 0:
        return None
    chosen = [(i, piece) for i, piece in enumerate(pieces)
              if any(compatible(piece, partial[k:]) is not None for k in range(len(partial)))]
    return TokenHealing(partial, tuple(i for i, _ in chosen), tuple(p for _, p in chosen),
                        tuple(tokens[len(tokens) - removed:]))


def heal_prefix(prefix_ids: list[int], prefix: str, decode: Callable[[list[int]], str],
                pieces: list[str]) -> tuple[list[int], Optional[TokenHealing]]:
    """The prefix's tokens for the canvas and its healing: (prefix_ids minus the healed tokens, healing or None).
    Pass {index of the hole's first position: healing} per row as denoise's first_tokens and cut the completion's
    text with after_partial."""
    healing = heal_tail(prefix_ids, prefix, decode, pieces)
    return (prefix_ids[:len(prefix_ids) - len(healing.fallback)] if healing else list(prefix_ids)), healing


def after_partial(text: str, partial: str) -> str:
    """The completion at the cursor: the span's text minus the partial it starts with."""
    return text[len(partial):] if text.startswith(partial) else text


@dataclass
class DenoiseResult:
    canvas: torch.Tensor  # [B, T] long: the filled canvases
    step: torch.Tensor  # [B, T] long: step (model call) that committed each position, -1 where it was never masked
    filled: torch.Tensor  # [B, T] bool: committed by end-of-span fill rather than chosen by the model
    model_calls: int  # forward passes made (each over the whole batch)


def commit_counts(masked: torch.Tensor, step: int, steps: int) -> torch.Tensor:
    """masked: [B] long, masks left per row -> [B] tokens to commit at `step` of `steps` (0 for finished rows).

    n = m * (1 - s/t) with t = 1 - step/steps and s = 1 - (step+1)/steps, i.e. m / (steps - step), floored; at least
    one while masks remain; everything at the last step."""
    if step >= steps - 1:
        return masked.clone()
    n = torch.div(masked, steps - step, rounding_mode="floor")
    return torch.where(masked > 0, n.clamp(min=1), n)


def kbest(logits: torch.Tensor, k: int, banned) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the exported graph's K-best head computes (kbest_head.py): logits [B, P, V] -> (top_logits [B, P, K]
    float, descending, ties to the lower id; top_ids [B, P, K] long; log_z [B, P] float, the logsumexp), over the
    vocabulary minus `banned` (set to -inf first). K = min(k, V); a list longer than the allowed ids ends in -inf."""
    masked = logits.float().clone()
    masked[..., list(banned)] = float("-inf")
    # A stable descending sort keeps equal logits in id order (torch.topk does not promise an order for ties).
    top_logits, top_ids = masked.sort(dim=-1, descending=True, stable=True)
    k = min(k, masked.shape[-1])
    return top_logits[..., :k], top_ids[..., :k], masked.logsumexp(-1)


def entropy_tail(top_logits: torch.Tensor, log_z: torch.Tensor, allowed: int) -> torch.Tensor:
    """The K-best lists' entropy term for what they leave out (models/README.md): top_logits [B, P, K] as the head
    returned them (before any id is skipped), log_z [B, P], `allowed` = vocabulary size - banned ids -> [B, P]
    r log(r / n) for the mass r outside the finite entries, taken as spread evenly over the n ids it covers (the most
    entropy it can have; 0 when r <= 0 or n = 0)."""
    finite = top_logits > float("-inf")
    p = torch.where(finite, (top_logits.double() - log_z.double()[..., None]).exp(), torch.zeros_like(top_logits, dtype=torch.double))
    r = 1 - p.sum(-1)  # [B, P]
    n = allowed - finite.sum(-1)  # [B, P]
    ok = (r > 0) & (n > 0)
    return torch.where(ok, r.clamp_min(1e-300) * (r.clamp_min(1e-300) / n.clamp_min(1)).log(), torch.zeros_like(r))


def _listed(top_logits: torch.Tensor, top_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Moves the entries left out of a list (logit -inf) behind the listed ones, keeping the listed ones' order."""
    order = (top_logits == float("-inf")).to(torch.uint8).sort(dim=-1, stable=True).indices
    return top_logits.gather(-1, order), top_ids.gather(-1, order)


def choose_tokens(top_logits: torch.Tensor, top_ids: torch.Tensor, log_z: torch.Tensor, valid: torch.Tensor,
                  options: SamplerOptions, generators: list[torch.Generator], tail: Optional[torch.Tensor] = None):
    """The K-best lists (top_logits, top_ids [B, P, K], best first; an entry with logit -inf is not listed) and
    log_z [B, P], valid [B, P] bool -> (tokens [B, P] long, probability of each token [B, P], order score [B, P]),
    by models/README.md's rule (module docstring). Row r draws its random numbers from generators[r], only for its
    own valid positions, so a row's result does not depend on which other rows share its batch. A valid position
    with an empty list is an error (the engine refuses such a model output too). `tail` [B, P] (entropy_tail) is the
    entropy strategy's term for the unlisted tokens at temperature 0."""
    logits, ids = _listed(top_logits.double(), top_ids)
    listed = logits > float("-inf")  # [B, P, K], a prefix of each list
    if bool((valid & ~listed[..., 0]).any()):
        raise RuntimeError("sampler: a K-best list holds no token the sampler may commit")
    counts = valid.sum(1).tolist()
    slot = torch.zeros_like(valid, dtype=torch.long)  # [B, P]: the chosen entry
    if options.temperature > 0:
        weights = torch.where(listed, ((logits - logits[..., :1]) / options.temperature).exp(),
                              torch.zeros_like(logits))
        if options.top_p < 1:
            # The nucleus: the shortest prefix whose weight reaches top_p of the list's total (at least one entry).
            before = weights.cumsum(-1) - weights
            weights = torch.where(before < options.top_p * weights.sum(-1, keepdim=True), weights,
                                  torch.zeros_like(weights))
        dist = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)  # q, 0 outside the nucleus
        cpu_dist = dist.cpu()
        for r, n in enumerate(counts):
            if n:
                drawn = torch.multinomial(cpu_dist[r, :n], 1, generator=generators[r]).squeeze(1)
                slot[r, :n] = drawn.to(slot.device)
    else:
        dist = torch.where(listed, (logits - log_z.double()[..., None]).exp(), torch.zeros_like(logits))  # p
    tokens = ids.gather(-1, slot[..., None]).squeeze(-1)
    token_prob = dist.gather(-1, slot[..., None]).squeeze(-1)
    if options.strategy == "confidence":
        score = token_prob
    elif options.strategy == "margin":
        second = dist[..., 1] if dist.shape[-1] > 1 else torch.zeros_like(token_prob)
        score = dist[..., 0] - second
    elif options.strategy == "entropy":
        # Negative entropy over the list (or nucleus): the surest position first; 0 log 0 counts as 0.
        score = torch.where(dist > 0, dist * dist.clamp_min(1e-300).log(), torch.zeros_like(dist)).sum(-1)
        if options.temperature == 0 and tail is not None:
            score = score + tail.to(score.dtype)
    else:
        score = torch.zeros_like(token_prob)
        for r, n in enumerate(counts):
            if n:
                score[r, :n] = torch.rand(n, generator=generators[r]).to(score.device, score.dtype)
    return tokens, token_prob.float(), score.float()


def masked_positions(masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """masked: [B, T] bool -> (positions [B, P] long, ascending per row; valid [B, P] bool), P = most masks in a row.
    A row with fewer masks points its spare slots at position 0; their logits are ignored."""
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


def ban_eos_first(top_logits: torch.Tensor, top_ids: torch.Tensor, positions: torch.Tensor, hole_of: torch.Tensor,
                  eos_id: int) -> torch.Tensor:
    """End-of-span after code, part 1: the K-best lists (top_logits, top_ids [B, P, K]) at positions [B, P] without
    eos_id at the first position of each hole (hole_of [B, T]), so that no hole is empty. Returns top_logits with
    those entries at -inf (left out of the list; choose_tokens closes the gap); log_z is not changed."""
    left_pos = (positions - 1).clamp(min=0)
    first = (hole_of.gather(1, left_pos) != hole_of.gather(1, positions)) | (positions == 0)  # [B, P]
    return top_logits.masked_fill(first[..., None] & (top_ids == eos_id), float("-inf"))


def heal_chains(top_logits: torch.Tensor, top_ids: torch.Tensor, log_z: torch.Tensor, positions: torch.Tensor,
                valid: torch.Tensor, first_tokens: list[dict[int, TokenHealing]], options: SamplerOptions,
                generators: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token healing's chains (the engine's chooseChain): first_tokens[b] maps the first position of a healed hole of
    row b to its TokenHealing. While that position is masked (the first step), the hole's first positions are decided
    left to right from their K-best lists (top_logits, top_ids [B, P, K] after ban_eos_first; log_z [B, P]), each list
    keeping only the tokens compatible with what is left of the partial (not renormalised), chosen as choose_tokens
    would, until the partial is spelled out; when a link has no compatible token, the hole's first positions take the
    fallback tokens. Returns (tokens [B, P] long: the chains' tokens, 0 elsewhere; pinned [B, P] bool: decided here;
    fell_back [B, P] bool: the fallback's)."""
    B, P, _ = top_ids.shape
    tokens = torch.zeros(B, P, dtype=torch.long, device=top_ids.device)
    pinned = torch.zeros_like(valid)
    fell_back = torch.zeros_like(valid)
    for b, rules in enumerate(first_tokens):
        for start, rule in rules.items():
            slots = ((positions[b] == start) & valid[b]).nonzero().flatten().tolist()
            if not slots:
                continue  # Decided in an earlier step.
            j = slots[0]
            text_of = dict(zip(rule.ids, rule.texts))
            remaining, k, chain = rule.partial, j, []
            while remaining:
                if k >= P or not bool(valid[b, k]) or int(positions[b, k]) != start + (k - j):
                    break
                ok = torch.tensor([compatible(text_of.get(int(i), ""), remaining) is not None
                                   for i in top_ids[b, k].tolist()], device=top_logits.device)
                listed = top_logits[b, k].masked_fill(~ok, float("-inf"))
                if not bool((listed > float("-inf")).any()):
                    break
                one = torch.ones(1, 1, dtype=torch.bool, device=valid.device)
                token, _, _ = choose_tokens(listed[None, None], top_ids[b, k][None, None], log_z[b, k][None, None], one,
                                            options, [generators[b]])
                chain.append(int(token))
                remaining = compatible(text_of[int(token)], remaining)
                k += 1
            if remaining:
                chain = list(rule.fallback)
                fell_back[b, j:j + len(chain)] = True
            tokens[b, j:j + len(chain)] = torch.tensor(chain, dtype=torch.long, device=tokens.device)
            pinned[b, j:j + len(chain)] = True
    return tokens, pinned, fell_back


def select_commits(tokens: torch.Tensor, token_prob: torch.Tensor, score: torch.Tensor, valid: torch.Tensor,
                   positions: torch.Tensor, masked: torch.Tensor, n: torch.Tensor, options: SamplerOptions,
                   eos_id: int, forced: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Which masked positions a step commits ([B, P] bool; all inputs [B, P] but masked [B, T] and n [B]): everything
    above the threshold (Fast-dLLM), then the best-scored others up to n, ties to the leftmost (stable sort over
    ascending positions). With end-of-span after code, an end-of-span whose left neighbour is still masked waits: it
    takes its slot in the ranking but is not committed, except at the last step (n = every mask); a row that would
    commit nothing commits its best-ranked position that is not waiting (the engine's selectPositions). `forced`
    positions (token healing's pinned ones) are left out here: the caller commits them besides."""
    left = valid.sum(1)  # [B]
    if forced is not None:
        valid = valid & ~forced
    if options.eos_after_code:
        left_masked = masked.gather(1, (positions - 1).clamp(min=0)) & (positions > 0)
        waits = valid & (tokens == eos_id) & left_masked & (n < left)[:, None]
    else:
        waits = torch.zeros_like(valid)
    commit = valid & ~waits & (token_prob > options.threshold) if options.threshold > 0 else torch.zeros_like(valid)
    need = (n - commit.sum(1)).clamp(min=0)  # [B]
    free = valid & ~commit
    order = torch.sort(-score.masked_fill(~free, float("-inf")), dim=1, stable=True).indices  # [B, P]
    ranks = torch.arange(order.shape[1], device=tokens.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, ranks)  # rank[b, j]: place of slot j in the order
    commit |= free & ~waits & (rank < need[:, None])
    # Rows that commit nothing take their best-ranked position that does not wait.
    empty = (commit.sum(1) == 0) & ((free & ~waits).sum(1) > 0)  # [B]
    if bool(empty.any()):
        best = torch.where(free & ~waits, rank, torch.full_like(rank, order.shape[1])).argmin(1)  # [B]
        first = torch.zeros_like(commit).scatter_(1, best[:, None], True)
        commit |= first & empty[:, None]
    return commit


def hole_ids(span: torch.Tensor) -> torch.Tensor:
    """span: [B, T] bool -> [B, T] long: the index of the hole (run of span positions) each position is in, -1
    outside the span."""
    before = torch.cat([torch.zeros_like(span[:, :1]), span[:, :-1]], dim=1)
    starts = span & ~before
    return torch.where(span, starts.long().cumsum(1) - 1, torch.full_like(span, -1, dtype=torch.long))


@torch.no_grad()
def denoise(model_fn: ModelFn, canvas: torch.Tensor, mask_id: int, eos_id: int, options: SamplerOptions,
            generators: list[torch.Generator], banned_ids: tuple[int, ...] = (),
            span: Optional[torch.Tensor] = None,
            first_tokens: Optional[list[dict[int, TokenHealing]]] = None) -> DenoiseResult:
    """Fills every mask_id position of canvas [B, T] (long); the TypeScript engine's sampleCanvas, row by row.

    model_fn(input_ids [B, T], positions [B, P], span_mask [B, T] bool) -> logits [B, P, V]. Row r draws from
    generators[r] (the engine's one random stream per row), so its result does not depend on its batch. With at
    least as many steps as masks every step commits one token (or more by fill), so any step count above the mask
    count gives the same result as the mask count itself. `banned_ids` are never
    committed (the engine bans every special id but end-of-span). `span` ([B, T] bool) marks the generated region
    (for context-only attention and for the holes of end-of-span fill); by default the initially masked positions.
    `first_tokens[b]` maps the first position of a healed hole of row b to its TokenHealing (heal_prefix).
    """
    x = canvas.clone()
    masked = x == mask_id  # [B, T]
    span = masked.clone() if span is None else span
    hole_of = hole_ids(span)  # [B, T]
    step_of = torch.full_like(x, -1)
    filled = torch.zeros_like(masked)
    banned = sorted({mask_id, *banned_ids} - {eos_id})
    calls = 0
    for i in range(options.steps):
        left = masked.sum(1)  # [B]
        if int(left.max()) == 0:
            break
        positions, valid = masked_positions(masked)  # [B, P], ascending per row
        logits = model_fn(x, positions, span)  # [B, P, V]
        calls += 1
        top_logits, top_ids, log_z = kbest(logits, options.top_k, banned)
        tail = entropy_tail(top_logits, log_z, logits.shape[-1] - len(banned))
        if options.eos_after_code:
            top_logits = ban_eos_first(top_logits, top_ids, positions, hole_of, eos_id)
        tokens, token_prob, score = choose_tokens(top_logits, top_ids, log_z, valid, options, generators, tail)
        pinned = fell_back = torch.zeros_like(valid)
        if first_tokens is not None:
            chained, pinned, fell_back = heal_chains(top_logits, top_ids, log_z, positions, valid, first_tokens,
                                                     options, generators)
            tokens = torch.where(pinned, chained, tokens)
        n = commit_counts(left, i, options.steps)  # [B]
        commit = select_commits(tokens, token_prob, score, valid, positions, masked, n, options, eos_id, pinned)
        fill = torch.zeros_like(commit)
        if options.eos_fill:
            # A masked position that comes after an end-of-span committed in this step, in the same hole, is filled
            # with end-of-span: positions are ascending and so are holes, so a running max of "hole of an eos
            # committed here" equal to the position's own hole means an eos of its hole lies to its left.
            hole = hole_of.gather(1, positions)  # [B, P]
            marker = torch.where(commit & (tokens == eos_id), hole, torch.full_like(hole, -1))
            fill = valid & ~commit & ~pinned & (marker.cummax(1).values == hole)
            tokens = torch.where(fill, torch.full_like(tokens, eos_id), tokens)
        # Healed positions go in now; a fallback like fill: committed by the sampler, not chosen by the model.
        apply_step(x, step_of, filled, masked, positions, tokens, commit | (pinned & ~fell_back), fill | fell_back, i)
    if bool(masked.any()):
        raise RuntimeError("sampler left masks unresolved")  # Impossible by construction: the last step commits all.
    return DenoiseResult(x, step_of, filled, calls)


def apply_step(x: torch.Tensor, step_of: torch.Tensor, filled: torch.Tensor, masked: torch.Tensor,
               positions: torch.Tensor, tokens: torch.Tensor, commit: torch.Tensor, fill: torch.Tensor, step: int) -> None:
    """Writes one step's commits and end-of-span fill into the canvas state, in place: x, step_of, filled, masked are
    [B, T]; positions, tokens, commit, fill are [B, P] (slot j of row b is canvas position positions[b, j])."""
    take = commit | fill
    rows, cols = take.nonzero(as_tuple=True)
    where = positions[rows, cols]
    x[rows, where] = tokens[rows, cols]
    step_of[rows, where] = step
    filled[rows, where] = fill[rows, cols]
    masked[rows, where] = False


def decoding_order(step: list[int], filled: list[bool]) -> list[int]:
    """A span's decoding order for AR-ness: its offsets by commit step, left to right within a step (the engine's
    decodingOrder), leaving out end-of-span fill, which is not a decision of the model."""
    return [offset for _, offset in sorted((s, j) for j, (s, f) in enumerate(zip(step, filled)) if s >= 0 and not f)]


def trim_at_eos(tokens: list[int], eos_id: int) -> list[int]:
    """The completion: everything before the first end-of-span token."""
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens


@torch.no_grad()
def greedy_ar(model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], prompts: list[list[int]], eos_id: int,
              max_new: list[int], pad_id: int, banned: tuple[int, ...] = (),
              device: torch.device = torch.device("cpu")) -> tuple[list[list[int]], list[int]]:
    """Greedy decoding of a batch of prompts of any lengths; row r stops at eos_id or after max_new[r] tokens.

    model_fn(ids [B, T], last [B]) -> logits [B, V] of the token after position last[b]. Rows are right-padded: with
    causal attention a position never sees the padding to its right, so each row decodes exactly as it would alone.
    The whole sequence is recomputed each step (no KV cache: the baseline is small, and this keeps it free of model
    internals). Returns (tokens per row before its eos, model calls per row counting the call that wrote the eos)."""
    B = len(prompts)
    lengths = torch.tensor([len(p) for p in prompts], device=device)  # [B]
    width = int(max(len(p) + n for p, n in zip(prompts, max_new)))
    x = torch.full((B, width), pad_id, dtype=torch.long, device=device)  # [B, width]
    for r, p in enumerate(prompts):
        x[r, :len(p)] = torch.tensor(p, dtype=torch.long)
    out: list[list[int]] = [[] for _ in range(B)]
    calls = [0] * B
    active = [n > 0 for n in max_new]
    while any(active):
        rows = [r for r in range(B) if active[r]]
        index = torch.tensor(rows, device=device)
        span = int(lengths[index].max())
        logits = model_fn(x[index, :span], lengths[index] - 1).float()  # [b, V]
        if banned:
            logits[:, list(banned)] = float("-inf")
        for j, token in enumerate(logits.argmax(-1).tolist()):
            r = rows[j]
            calls[r] += 1
            if token == eos_id:
                active[r] = False
                continue
            out[r].append(token)
            x[r, lengths[r]] = token
            lengths[r] += 1
            if len(out[r]) >= max_new[r]:
                active[r] = False
    return out, calls
