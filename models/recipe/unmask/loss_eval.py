"""The training objectives as modules (so DDP wraps the whole loss computation) and the one masked-bits evaluation
shared by pretrain's and distill's validation and the eval's test-split NLL (test_nll). Runs nothing on its own."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unmask import common
from unmask.checkpoint import special_id
from unmask.data import Examples, ar_batch, mdm_batch, to_device


LN2 = math.log(2.0)


class MDMObjective(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.context_only = model.config["attention"] == "context_only"

    def forward(self, xt, x0, masked, span, keypad, inv_t):
        # xt, x0: [B,T] long; masked, span, keypad: [B,T] bool; inv_t: [B] float.
        h = self.model.hidden(xt, span if self.context_only else None, keypad)  # [B,T,D]
        sel = masked.reshape(-1).nonzero().squeeze(1)  # [N] flat indices of masked tokens
        logits = self.model.project(h.reshape(-1, h.shape[-1])[sel]).float()  # [N,V]
        ce = F.cross_entropy(logits, x0.reshape(-1)[sel], reduction="none")  # [N]
        w = inv_t[:, None].expand_as(masked).reshape(-1)[sel]  # [N]
        per_example = torch.zeros(xt.shape[0], device=xt.device).index_add_(0, sel // xt.shape[1], ce * w)
        return per_example  # [B]: sum over masked tokens of CE / t


class ARObjective(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inp, tgt):
        logits = self.model(inp).float()  # [B,T,V]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none",
                               ignore_index=-100).view(tgt.shape)  # [B,T]


def mdm_step(obj, batch, dev):
    """The denoiser's per-canvas loss sums [B] on one batch moved to `dev`, and the batch as tensors."""
    b = to_device(batch, dev)
    per_ex = obj(b["xt"], b["x0"], b["masked"], b["span"], b["keypad"], 1.0 / b["t"].float())
    return per_ex, b


@torch.no_grad()
def masked_bits(model: nn.Module, kind: str, batches: list[dict], device) -> dict:
    """Bits per supervised token over fixed batches (data.mdm_batch / data.ar_batch), under the device's autocast;
    the model's train/eval mode is restored afterwards.

    mdm: {"elbo_bits": the masked-diffusion ELBO per span token (an upper bound on the NLL), "elbo_infill_bits": the
    same over the infill canvases only}; ar: {"bits": next-token NLL over every real token, "fim_middle_bits": over
    the FIM middles and their end token only}."""
    was_training = model.training
    model.eval()
    tot = n = tot_part = n_part = 0.0
    if kind == "mdm":
        obj = MDMObjective(model)
        for batch in batches:
            with common.autocast(device, evaluating=True):
                per_ex, b = mdm_step(obj, batch, device)  # [B]
            n_span = b["span"].sum(1).float()  # [B]
            infill = b["whole"] == 0  # [B] bool
            tot += per_ex.sum().item()
            n += n_span.sum().item()
            tot_part += per_ex[infill].sum().item()
            n_part += n_span[infill].sum().item()
        out = {"elbo_bits": tot / n / LN2, "elbo_infill_bits": tot_part / max(n_part, 1) / LN2}
    else:
        obj = ARObjective(model)
        for batch in batches:
            b = to_device(batch, device)
            with common.autocast(device, evaluating=True):
                ce = obj(b["inp"], b["tgt"])  # [B, T]
            real = b["tgt"] != -100  # [B, T] bool
            tot += ce[real].sum().item()
            n += real.sum().item()
            tot_part += ce[b["mid"] & real].sum().item()
            n_part += (b["mid"] & real).sum().item()
        out = {"bits": tot / n / LN2, "fim_middle_bits": tot_part / max(n_part, 1) / LN2}
    model.train(was_training)
    return out


def validation_bits(kind: str, model: nn.Module, batches: list[dict], device) -> dict:
    """masked_bits under the names the training logs use: valid_elbo_bits, valid_elbo_infill_bits (mdm) or
    valid_bits, valid_fim_middle_bits (ar)."""
    return {f"valid_{k}": v for k, v in masked_bits(model, kind, batches, device).items()}


@torch.no_grad()
def test_nll(m, batches: int, batch_size: int, seed: int, corpus_dir: Optional[str]) -> dict:
    """The eval's NLL on the test split's token stream, canvases drawn as in training (span shapes from the
    checkpoint's own flags, so the numbers match its validation log). `m`: a checkpoint.Loaded.
    Denoiser: ELBO bits/token on whole-window and on infill canvases (stratified t with a random offset, fixed seed).
    AR: bits/token left to right and on FIM middles."""
    stream = common.token_stream("test", corpus_dir or common.CORPUS_DIR, m.tokenizer_path)
    special = {k: special_id(m.special, k) for k in common.SPECIAL_TOKENS}
    newline = common.newline_table(m.tokenizer_path, int(m.config["vocab_size"]))
    T, n = m.max_seq_len, batches * batch_size
    trained = m.ckpt.get("args") or {}
    p_line, p_empty, eps = trained.get("p_line", 0.5), trained.get("p_empty", 0.05), trained.get("eps", 1e-3)
    out = {"canvases": n}
    if m.kind == "mdm":
        for label, p_whole in (("test_elbo_bits", 1.0), ("test_elbo_infill_bits", 0.0)):
            rng = np.random.default_rng(seed)
            ex = Examples(stream, special, newline, T, rng, p_whole, p_line, p_empty, 0.0)
            ts = eps + (1 - eps) * rng.permutation((np.arange(n) + rng.random()) / n)  # stratified t over canvases
            made = [mdm_batch(ex, batch_size, eps, rng, special["pad"], special["mask"],
                              t=ts[i * batch_size:(i + 1) * batch_size]) for i in range(batches)]
            out[label] = masked_bits(m.model, "mdm", made, m.device)["elbo_bits"]
    else:
        for label, fim_rate, key in (("test_bits", 0.0, "bits"), ("test_fim_middle_bits", 1.0, "fim_middle_bits")):
            rng = np.random.default_rng(seed)
            ex = Examples(stream, special, newline, T, rng, 0.0, p_line, p_empty, fim_rate)
            made = [ar_batch(ex, batch_size, special["pad"]) for _ in range(batches)]
            out[label] = masked_bits(m.model, "ar", made, m.device)[key]
    return out
