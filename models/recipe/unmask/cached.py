"""The cached-context form of an `attention="context_only"` denoiser: two modules that share a Transformer's weights
and together compute exactly what `Transformer.forward(input_ids, positions, span_mask)` computes.

With context_only attention a context token attends only to context tokens, so its keys and values at every layer do
not depend on the span. They can be computed once per request (`ContextEncoder`, the "context" graph) and every
denoising step then runs only the span tokens (`SpanStep`, the "step" graph): span queries attend to the cached
context keys and to all span keys, as in the full forward. models/README.md ("Cached-context denoiser") is the
contract; export_onnx.py writes the two graphs.

Cache layout: past_key and past_value are single tensors [L, B, H, T, Dh] (layer-major, keys after RoPE at their
canvas positions). Their entries at span positions are unused: the step graph masks them out with context_mask.
`SpanStep` accepts a cache (and context_mask) with batch 1 and broadcasts it to the B rows of the step, because the
candidates of one request share one context.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from unmask.model import Transformer, apply_rope, rope_tables


def _check(model: Transformer) -> None:
    if model.config["attention"] != "context_only" or model.causal:
        raise ValueError("the cached-context form needs an mdm model with attention='context_only'")


class ContextEncoder(nn.Module):
    """(input_ids [B,T] int64, span_mask [B,T] bool) -> past_key, past_value [L,B,H,T,Dh] float32.

    Every query attends to the context keys only: exact for context positions (what context_only attention does), and
    the outputs at span positions are never read. The last layer's attention output and MLP are skipped: only its
    keys and values are needed.
    """

    def __init__(self, model: Transformer):
        super().__init__()
        _check(model)
        self.model = model

    def forward(self, input_ids, span_mask):
        m, cfg = self.model, self.model.config
        B, T = input_ids.shape
        H = cfg["n_head"]
        hd = cfg["d_model"] // H
        x = m.embed(input_ids)  # [B, T, D]
        cos, sin = rope_tables(T, hd, cfg["rope_base"], input_ids.device)
        context_keys = ~span_mask[:, None, None, :]  # [B, 1, 1, T]: True where the key is context
        keys, values = [], []
        for i, block in enumerate(m.blocks):
            attn = block.attn
            q, k, v = attn.qkv(block.norm1(x)).view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)  # 3x [B, H, T, hd]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            keys.append(k)
            values.append(v)
            if i == len(m.blocks) - 1:
                break
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # [B, H, T, T]
            y = scores.masked_fill(~context_keys, float("-inf")).softmax(dim=-1) @ v
            x = x + attn.out(y.transpose(1, 2).reshape(B, T, -1))
            x = x + block.proj(F.gelu(block.fc(block.norm2(x))))
        return torch.stack(keys), torch.stack(values)


class SpanStep(nn.Module):
    """(span_ids [B,S], span_pos [B,S], past_key, past_value [L,Bc,H,T,Dh], context_mask [Bc,T] bool, out_idx [B,P])
    -> logits [B,P,V], with Bc = B or 1 (one cache shared by every row).

    Span queries attend to the context keys (masked by context_mask: False on span positions and padding) and to all
    span keys; the two score blocks are softmaxed together, as one row of the full attention matrix.
    """

    def __init__(self, model: Transformer):
        super().__init__()
        _check(model)
        self.model = model

    def forward(self, span_ids, span_pos, past_key, past_value, context_mask, out_idx):
        m, cfg = self.model, self.model.config
        B, S = span_ids.shape
        H = cfg["n_head"]
        hd = cfg["d_model"] // H
        T = past_key.shape[3]
        x = m.embed(span_ids)  # [B, S, D]
        # RoPE at the span's canvas positions (the same float32 arithmetic as rope_tables).
        inv_freq = 1.0 / (cfg["rope_base"] ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
        freqs = span_pos.to(torch.float32)[:, :, None] * inv_freq  # [B, S, hd/2]
        cos, sin = freqs.cos()[:, None], freqs.sin()[:, None]  # [B, 1, S, hd/2]
        context_bias = torch.zeros(context_mask.shape, dtype=x.dtype, device=x.device)
        context_bias = context_bias.masked_fill(~context_mask, float("-inf"))[:, None, None, :]  # [Bc, 1, 1, T]
        scale = 1.0 / math.sqrt(hd)
        for i, block in enumerate(m.blocks):
            attn = block.attn
            q, k, v = attn.qkv(block.norm1(x)).view(B, S, 3, H, hd).permute(2, 0, 3, 1, 4)  # 3x [B, H, S, hd]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            to_context = (q @ past_key[i].transpose(-2, -1)) * scale + context_bias  # [B, H, S, T]
            to_span = (q @ k.transpose(-2, -1)) * scale  # [B, H, S, S]
            att = torch.cat([to_context, to_span], dim=-1).softmax(dim=-1)
            y = att[..., :T] @ past_value[i] + att[..., T:] @ v  # [B, H, S, hd]
            x = x + attn.out(y.transpose(1, 2).reshape(B, S, -1))
            x = x + block.proj(F.gelu(block.fc(block.norm2(x))))
        h = m.norm(x)
        h = torch.gather(h, 1, out_idx.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # [B, P, D]
        return m.project(h)


def span_layout(holes, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """holes [(start, length), ...] -> (span positions [S] int64 in canvas order, span_mask [T] bool)."""
    pos = torch.cat([torch.arange(s, s + n, dtype=torch.long) for s, n in holes])
    mask = torch.zeros(seq_len, dtype=torch.bool)
    mask[pos] = True
    return pos, mask


def cached_logits(model: Transformer, input_ids: torch.Tensor, positions: torch.Tensor, holes) -> torch.Tensor:
    """The two-module computation of model(input_ids, positions, span_mask): logits [B,P,V]. `holes` is the span
    layout shared by every row; `positions` must lie in it. Rows with the same context share one cache."""
    B, T = input_ids.shape
    _, mask = span_layout(holes, T)
    if not bool(mask[positions].all()):
        raise ValueError("cached_logits: a requested position lies outside the holes")
    return SharedContext(model, input_ids, mask.expand(B, T)).logits(input_ids, positions)


class SharedContext:
    """The full forward of canvases whose rows share contexts, with one ContextEncoder pass per distinct context.

    The G rollouts of one RL prompt, and the three masked copies of each that coupled-GRPO scores, differ only inside
    the span: their context tokens, span layout and padding are the same, so under context_only attention their
    context keys and values are the same too. Rows are grouped by (tokens outside the span, span, padding); each
    group's context runs once, at its unpadded length, and every forward then runs only span tokens (SpanStep). The
    result equals model(ids, positions, span_mask=span, key_padding_mask=keypad) up to float rounding, gradients
    included (the context pass is part of the graph unless built under no_grad). At T = 256 with 32-token spans and
    G = 8 this runs ~1/6 of the tokens.

    ids, span, keypad: [R, T] (keypad True on right padding; None: no padding). Built once; `logits` may then be
    called with other span tokens in the same rows (the sampler's steps).
    """

    def __init__(self, model: Transformer, ids: torch.Tensor, span: torch.Tensor, keypad: torch.Tensor | None = None):
        _check(model)
        self.model = model
        R, T = ids.shape
        keypad = torch.zeros_like(span) if keypad is None else keypad
        key = torch.cat([ids.masked_fill(span | keypad, -1), span.long(), keypad.long()], 1)  # [R, 3T]
        _, inverse = torch.unique(key, dim=0, return_inverse=True)  # [R]: the group of each row
        encoder = ContextEncoder(model)
        self.groups = []
        for g in range(int(inverse.max()) + 1):
            rows = (inverse == g).nonzero().squeeze(1)  # [n]
            first = int(rows[0])
            length = int((~keypad[first]).sum())  # right padding: the real canvas is ids[first, :length]
            span_row = span[first, :length]  # [t]
            pos = span_row.nonzero().squeeze(1)  # [S_g] canvas positions of the span, ascending
            past_key, past_value = encoder(ids[first:first + 1, :length], span_row[None])  # [L, 1, H, t, Dh]
            index_in_span = torch.full((T,), -1, dtype=torch.long, device=ids.device)
            index_in_span[pos] = torch.arange(len(pos), device=ids.device)
            self.groups.append((rows, pos, past_key, past_value, ~span_row[None], index_in_span))
        self.order = torch.argsort(torch.cat([g[0] for g in self.groups]))  # group order -> row order

    def logits(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """ids [R, T] (the construction's rows; span tokens may differ), positions [R, P] -> logits [R, P, V]. A
        position outside its row's span (padding of `positions`) gets the span's first position's logits: callers
        mask those out, as they do the full forward's."""
        step = SpanStep(self.model)
        parts = []
        for rows, pos, past_key, past_value, context_mask, index_in_span in self.groups:
            out_idx = index_in_span[positions[rows]].clamp(min=0)  # [n, P]
            span_ids = ids[rows][:, pos]  # [n, S_g]
            parts.append(step(span_ids, pos.expand(len(rows), -1), past_key, past_value, context_mask, out_idx))
        return torch.cat(parts)[self.order]
