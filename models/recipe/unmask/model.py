"""The transformer used by every recipe stage: a pre-norm transformer with rotary position embeddings.

`build_model(config)` returns
- the masked-diffusion denoiser (config["kind"] == "mdm"): bidirectional; `attention` is "full" (every token attends
  to every token) or "context_only" (context tokens attend only to context, span tokens attend to everything, so the
  context's keys and values do not depend on the span and could be computed once per request);
- the autoregressive baseline (config["kind"] == "ar"): the same backbone with causal attention.

The vocabulary projection is tied to the token embedding and written as a 2-D `F.linear` so that the ONNX export
keeps one copy of the embedding (a Gemm with transB=1) instead of constant-folding a transposed second copy.
Written for torch 1.13 (CPU, manual attention) and torch 2.x (`scaled_dot_product_attention`, flash kernels on CUDA).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "kind": "mdm",  # "mdm" (masked diffusion denoiser) or "ar" (causal baseline)
    "n_layer": 4,
    "d_model": 256,
    "n_head": 4,
    "d_ff": 1024,
    "vocab_size": 8192,
    "max_seq_len": 256,
    "attention": "full",  # "full" or "context_only" (mdm only)
    "rope_base": 10000.0,
    "dropout": 0.0,
}

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def rope_tables(seq_len: int, head_dim: int, base: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [T, head_dim/2] for positions 0..T-1. Computed per call (cheap) so ONNX sees a dynamic T."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    t = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs = t[:, None] * inv_freq[None, :]  # [T, hd/2]
    return freqs.cos(), freqs.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, T, hd]; rotates the two halves of each head (GPT-NeoX layout)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_head: int, dropout: float):
        super().__init__()
        assert d_model % n_head == 0, "d_model must be divisible by n_head"
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.dropout = dropout

    def forward(self, x, cos, sin, allowed: torch.Tensor | None, causal: bool):
        # x: [B, T, D]; allowed: [B, 1, T, T] bool (True = query may attend to key) or None.
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)  # 3x [B,H,T,hd]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        p = self.dropout if self.training else 0.0
        if _HAS_SDPA and not torch.onnx.is_in_onnx_export():
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p, is_causal=causal and allowed is None)
        else:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))  # [B, H, T, T]
            if causal:
                causal_ok = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
                allowed = causal_ok if allowed is None else (allowed & causal_ok)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            att = scores.softmax(dim=-1)
            if p > 0:
                att = F.dropout(att, p)
            y = att @ v
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg["d_model"])
        self.attn = Attention(cfg["d_model"], cfg["n_head"], cfg["dropout"])
        self.norm2 = nn.LayerNorm(cfg["d_model"])
        self.fc = nn.Linear(cfg["d_model"], cfg["d_ff"], bias=False)
        self.proj = nn.Linear(cfg["d_ff"], cfg["d_model"], bias=False)

    def forward(self, x, cos, sin, allowed, causal):
        x = x + self.attn(self.norm1(x), cos, sin, allowed, causal)
        return x + self.proj(F.gelu(self.fc(self.norm2(x))))


class Transformer(nn.Module):
    """Token embedding -> n_layer pre-norm blocks -> final norm -> tied vocabulary projection."""

    def __init__(self, config: dict):
        super().__init__()
        cfg = {**DEFAULT_CONFIG, **config}
        if cfg["kind"] not in ("mdm", "ar"):
            raise ValueError(f"unknown model kind {cfg['kind']!r}")
        if cfg["attention"] not in ("full", "context_only"):
            raise ValueError(f"unknown attention pattern {cfg['attention']!r}")
        self.config = cfg
        self.causal = cfg["kind"] == "ar"
        self.anneal = 1.0  # attention annealing progress (training only; see hidden)
        self.embed = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg["n_layer"])])
        self.norm = nn.LayerNorm(cfg["d_model"])
        self.apply(self._init)
        for block in self.blocks:  # GPT-2 style: scale the residual projections by depth.
            for lin in (block.attn.out, block.proj):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg["n_layer"]))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def hidden(self, input_ids, span_mask=None, key_padding_mask=None):
        """input_ids: [B, T] long -> final normed hidden states [B, T, D].

        span_mask: [B, T] bool, True on span tokens; required by attention="context_only" (context queries may not
        see span keys). key_padding_mask: [B, T] bool, True on padding keys nobody may attend to (training only:
        a canvas shorter than the batch's T then behaves exactly like the shorter canvas alone).
        """
        B, T = input_ids.shape
        cfg = self.config
        x = self.embed(input_ids)  # [B, T, D]
        cos, sin = rope_tables(T, cfg["d_model"] // cfg["n_head"], cfg["rope_base"], input_ids.device)
        allowed = None  # [B, 1, T, T] bool, True = query (row) may attend to key (column)
        if cfg["attention"] == "context_only" and not self.causal:
            if span_mask is None:
                raise ValueError("attention='context_only' needs span_mask [B, T]")
            allowed = span_mask[:, None, :, None] | ~span_mask[:, None, None, :]
        if key_padding_mask is not None and bool(key_padding_mask.any()):
            keys_ok = ~key_padding_mask[:, None, None, :]
            allowed = keys_ok if allowed is None else (allowed & keys_ok)
        if allowed is not None and self.causal:
            allowed = allowed & torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        if self.training and not self.causal and self.anneal < 1.0:
            # Attention annealing (DiffuLLaMA, train_pretrain --attention-anneal-steps): a denoiser adapted from a
            # causal model starts from the causal mask and sees each later key with probability `anneal`, which the
            # trainer raises from 0 to 1; at 1 this is the plain pattern above.
            later = torch.rand(B, 1, T, T, device=x.device) < self.anneal
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril() | later
            allowed = causal if allowed is None else (allowed & causal)
        for block in self.blocks:
            x = block(x, cos, sin, allowed, self.causal)
        return self.norm(x)

    def project(self, h):
        """h: [..., D] -> logits [..., V] (tied to the embedding; 2-D linear so ONNX exports one Gemm)."""
        shape = h.shape
        return F.linear(h.reshape(-1, shape[-1]), self.embed.weight).reshape(*shape[:-1], self.embed.weight.shape[0])

    def forward(self, input_ids, positions=None, span_mask=None, key_padding_mask=None):
        """input_ids: [B, T] long; positions: [B, P] long or None -> logits [B, P, V] (or [B, T, V])."""
        h = self.hidden(input_ids, span_mask, key_padding_mask)  # [B, T, D]
        if positions is not None:
            index = positions.unsqueeze(-1).expand(-1, -1, h.shape[-1])  # [B, P, D]
            h = torch.gather(h, 1, index)  # [B, P, D]
        return self.project(h)


def build_model(config: dict) -> nn.Module:
    """Builds the denoiser (kind "mdm") or the causal baseline (kind "ar") from a config dict (see DEFAULT_CONFIG)."""
    return Transformer(config)


def count_params(model: nn.Module, non_embedding: bool = False) -> int:
    n = sum(p.numel() for p in model.parameters())
    if non_embedding:
        n -= model.embed.weight.numel()
    return n
