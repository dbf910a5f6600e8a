"""Pretrains the masked-diffusion code teacher (`--objective mdm`) or the same-size autoregressive baseline
(`--objective ar`) on the pre-tokenised corpus, and writes runs/<run-name>/{ckpt.pt, log.jsonl}.

Default model on one CPU thread, 45 minutes (what run_cpu.sh's tiny run and run_gpu.sh's real run scale):
    python pretrain.py --objective mdm --run-name cpu-mdm --threads 1 --max-minutes 45
    python pretrain.py --objective ar  --run-name cpu-ar  --threads 1 --max-minutes 45
Many GPUs:
    torchrun --nproc_per_node 8 pretrain.py --objective mdm --run-name gpu-mdm --batch-size 64 --compile

MDM examples (shapes: T = --max-seq-len):
- infill (most): canvas `[lang tag] prefix SPAN middle SPAN ... suffix`; each span is real code (line-aligned or a
  random run of tokens, sometimes empty) followed by `<|eos|>` tokens up to a length bucket (8,16,32,64,128), so the
  model learns how long a span is. Context tokens stay clean.
- whole window (--p-whole): everything after the tag is span; a file that ends early is filled with `<|eos|>`.
Per example t ~ U(eps, 1) (stratified across the batch) and k = ceil(t * n) of its n span tokens are masked, so the
realised mask rate is k/n; the loss is sum over masked tokens of CE * n/k (the 1/t weight at the realised rate),
divided by the number of span tokens: an unbiased estimate of the masked-diffusion ELBO per span token (reported in
bits/token; with k uniform on 1..n it is the any-order bound of MDLM/LLaDA). Canvases shorter than T are right-padded with `<|pad|>` that no token
attends to, so they behave exactly like the shorter canvas on its own.

AR examples: the same windows, fill-in-the-middle PSM `[lang] <|fim_prefix|> pre <|fim_suffix|> suf <|fim_middle|>
mid <|eos|>` or SPM `[lang] <|fim_suffix|> suf <|fim_prefix|> pre <|fim_middle|> mid <|eos|>` (--fim-rate,
--spm-rate) or plain left-to-right `[lang] code`; next-token cross-entropy on every real token. An AR checkpoint is
stage 1 of the AR-first recipe: `--objective mdm --init-from runs/<ar>/ckpt.pt` adapts it into the denoiser (same
parameters; the attention becomes bidirectional / context_only and each position predicts its own token).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common
from model import build_model, count_params

LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------------------------


class Examples:
    """Draws training canvases from a TokenStream with its own numpy RNG."""

    def __init__(self, stream: common.TokenStream, special: dict, newline: np.ndarray, seq_len: int,
                 rng: np.random.Generator, p_whole: float, p_line: float, p_empty: float, fim_rate: float,
                 p_loose: float = 0.0, spm_rate: float = 0.0):
        self.s, self.sp, self.nl, self.T, self.rng = stream, special, newline, seq_len, rng
        self.spm_rate = spm_rate
        self.p_whole, self.p_line, self.p_empty, self.fim_rate = p_whole, p_line, p_empty, fim_rate
        self.p_loose = p_loose
        if len(stream.starts) == 0:
            raise ValueError("empty token stream")
        self.file_cdf = np.cumsum(stream.lengths)  # files are drawn in proportion to their length

    def window(self, n: int) -> tuple[int, np.ndarray]:
        """(language tag id, up to n tokens of one file [n'] int64). Starts at a random token, sometimes at the start
        of a file, sometimes so that the window ends at the end of a file (cursor at end of file)."""
        rng, s = self.rng, self.s
        f = min(int(np.searchsorted(self.file_cdf, rng.random() * self.file_cdf[-1], side="right")), len(s.starts) - 1)
        first, end = int(s.starts[f]) + 1, int(s.starts[f] + s.lengths[f])  # skip the <|file|> token
        r = rng.random()
        if r < 0.1 or end - first <= n:
            off = first
        elif r < 0.2:
            off = end - n
        else:
            off = int(rng.integers(first, end - n + 1))
        return int(s.langs[f]), np.asarray(s.tokens[off:min(off + n, end)], dtype=np.int64)

    def span_end(self, w: np.ndarray, start: int, limit: int) -> tuple[int, int]:
        """Picks one span [start', end) inside w[start:limit]: line-aligned, random-length or empty; <= 128 tokens."""
        rng = self.rng
        if rng.random() < self.p_empty:
            return start, start
        if rng.random() < self.p_line:
            # Line-aligned: begin after a newline token, take 1-8 whole lines (half of the time one line).
            nl = np.flatnonzero(self.nl[w[start:limit]]) + start
            if len(nl) >= 2:
                i = int(rng.integers(0, len(nl) - 1))
                n_lines = 1 if rng.random() < 0.5 else int(rng.integers(2, 9))
                j = min(i + n_lines, len(nl) - 1)
                s0, e0 = int(nl[i]) + 1, int(nl[j]) + 1
                return s0, min(e0, s0 + 128)
        length = int(math.exp(rng.uniform(0.0, math.log(128.0))))  # log-uniform 1..128 tokens
        s0 = int(rng.integers(start, max(start + 1, limit)))
        return s0, min(s0 + length, limit)

    def bucket_for(self, length: int, room: int) -> int:
        """The span's length bucket: the smallest that holds it, or with probability p_loose a larger one that still
        fits in `room` tokens. The editor asks for "up to n tokens" without knowing the completion's length, so the
        model must learn to end a span from the code around it, not from the bucket alone; a model trained only on
        tight buckets learns "bucket 32 means 17-32 tokens" and fails when the completion is shorter."""
        tight = next(b for b in common.SPAN_BUCKETS if b >= max(length, 1))
        larger = [b for b in common.SPAN_BUCKETS if tight < b <= room]
        if larger and self.rng.random() < self.p_loose:
            return int(larger[int(self.rng.integers(0, len(larger)))])
        return tight

    def mdm(self) -> tuple[np.ndarray, np.ndarray, int]:
        """One denoising canvas: (tokens [T'] int64 with T' <= T, span mask [T'] bool, 1 if whole-window)."""
        T, eos = self.T, self.sp["eos"]
        if self.rng.random() < self.p_whole:
            lang, w = self.window(T - 1)
            toks = np.concatenate([[lang], w, np.full(T - 1 - len(w), eos)])
            span = np.ones(T, dtype=bool)
            span[0] = False
            return toks, span, 1
        for _ in range(10):
            lang, w = self.window(T - 1)
            n = len(w)
            k = 1 if self.rng.random() < 0.75 else int(self.rng.integers(2, 4))
            cuts = np.sort(self.rng.choice(n + 1, size=min(k, n + 1), replace=False))
            pieces, masks, prev, used = [np.array([lang])], [np.array([False])], 0, 1
            for ci, c in enumerate(cuts):
                limit = int(cuts[ci + 1]) if ci + 1 < len(cuts) else n
                start = max(int(c), prev)
                s0, e0 = self.span_end(w, start, max(limit, start))
                bucket = self.bucket_for(e0 - s0, room=T - used - (s0 - prev))
                pad = bucket - (e0 - s0)
                if used + (s0 - prev) + bucket > T:
                    break  # this span would not fit in the canvas: keep the spans so far
                pieces += [w[prev:s0], w[s0:e0], np.full(pad, eos)]
                masks += [np.zeros(s0 - prev, bool), np.ones(bucket, bool)]
                used += (s0 - prev) + bucket
                prev = e0
            if len(pieces) == 1:
                continue
            pieces.append(w[prev:prev + T - used])
            masks.append(np.zeros(len(pieces[-1]), bool))
            return np.concatenate(pieces), np.concatenate(masks), 0
        raise RuntimeError("could not place a span in 10 windows (is the corpus empty?)")

    def ar(self) -> tuple[np.ndarray, np.ndarray]:
        """One causal sequence of <= T+1 tokens and its FIM-middle mask (for the middle-only loss)."""
        T, sp = self.T, self.sp
        if self.rng.random() < self.fim_rate:
            lang, w = self.window(T - 4)  # [lang, pre, suf, mid, eos] markers take 5 of T+1
            s0, e0 = self.span_end(w, int(self.rng.integers(0, len(w) + 1)), len(w))
            if self.rng.random() < self.spm_rate:
                # SPM (Bavarian et al. 2022): the suffix first, then the prefix runs straight into the middle, so the
                # model also learns to continue the text just before the cursor with the suffix already in view.
                seq = np.concatenate([[lang, sp["fim_suffix"]], w[e0:], [sp["fim_prefix"]], w[:s0],
                                      [sp["fim_middle"]], w[s0:e0], [sp["eos"]]])
            else:  # PSM
                seq = np.concatenate([[lang, sp["fim_prefix"]], w[:s0], [sp["fim_suffix"]], w[e0:],
                                      [sp["fim_middle"]], w[s0:e0], [sp["eos"]]])
            mid = np.zeros(len(seq), bool)
            mid[len(seq) - (e0 - s0) - 1:] = True  # the middle and its eos are what infill is scored on
            return seq, mid
        lang, w = self.window(T)
        seq = np.concatenate([[lang], w])
        return seq, np.zeros(len(seq), bool)


def mdm_batch(ex: Examples, B: int, eps: float, rng: np.random.Generator, pad_id: int, mask_id: int,
              t: np.ndarray | None = None) -> dict:
    """B canvases, noised. Returns numpy arrays: x0, xt [B,T] int64; span, masked, keypad [B,T] bool; t [B]."""
    T = ex.T
    x0 = np.full((B, T), pad_id, dtype=np.int64)
    span = np.zeros((B, T), bool)
    keypad = np.ones((B, T), bool)  # True on the right padding of canvases shorter than T
    whole = np.zeros(B, np.int64)
    for i in range(B):
        toks, sm, wh = ex.mdm()
        x0[i, :len(toks)], span[i, :len(toks)], keypad[i, :len(toks)], whole[i] = toks, sm, False, wh
    if t is None:  # stratified t: one draw per stratum lowers the variance of the batch loss
        t = (rng.random() + np.arange(B)) / B
        t = eps + (1 - eps) * rng.permutation(t)
    # Mask exactly k = ceil(t * n) of the n span tokens (uniformly chosen): k is uniform on 1..n when t is uniform,
    # and the weight 1/t becomes n/k, the realised mask rate's inverse. This is the same ELBO as independent masking
    # at rate t, without canvases where nothing (or one token at weight 1000) is masked.
    n_span = span.sum(1)  # [B]
    k = np.maximum(1, np.ceil(t * n_span)).astype(np.int64)  # [B]
    keys = np.where(span, rng.random((B, T)), 2.0)  # non-span positions sort last
    ranks = keys.argsort(1).argsort(1)  # [B,T] rank of each position among the span positions
    masked = ranks < k[:, None]
    xt = np.where(masked, mask_id, x0)
    t_real = k / n_span
    return {"x0": x0, "xt": xt, "span": span, "masked": masked, "keypad": keypad, "t": t_real, "whole": whole}


def ar_batch(ex: Examples, B: int, pad_id: int) -> dict:
    """B causal sequences: inputs, targets [B,T] int64 (targets -100 on padding), mid [B,T] bool."""
    T = ex.T
    inp = np.full((B, T), pad_id, dtype=np.int64)
    tgt = np.full((B, T), -100, dtype=np.int64)
    mid = np.zeros((B, T), bool)
    for i in range(B):
        seq, m = ex.ar()
        n = len(seq) - 1
        inp[i, :n], tgt[i, :n], mid[i, :n] = seq[:-1], seq[1:], m[1:]
    return {"inp": inp, "tgt": tgt, "mid": mid}


# ---------------------------------------------------------------------------------------------------------------
# Objectives: modules so DDP wraps the whole loss computation.
# ---------------------------------------------------------------------------------------------------------------


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


def to_device(batch: dict, device) -> dict:
    """numpy arrays or tensors -> tensors on `device`."""
    return {k: (v if torch.is_tensor(v) else torch.from_numpy(v)).to(device, non_blocking=True)
            for k, v in batch.items()}


class Batches(torch.utils.data.IterableDataset):
    """An endless stream of training batches. With DataLoader workers (--workers, for GPUs) batches are built in
    parallel with the training step; each worker draws from its own RNG seeded by (seed, rank, worker)."""

    def __init__(self, args, stream, special, newline, rank: int):
        super().__init__()
        self.args, self.stream, self.special, self.newline, self.rank = args, stream, special, newline, rank

    def __iter__(self):
        a, sp = self.args, self.special
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([a.seed, self.rank, info.id if info else 0])
        ex = Examples(self.stream, sp, self.newline, a.max_seq_len, rng, a.p_whole, a.p_line, a.p_empty, a.fim_rate,
                      a.p_loose, a.spm_rate)
        while True:
            if a.objective == "mdm":
                yield mdm_batch(ex, a.batch_size, a.eps, rng, sp["pad"], sp["mask"])
            else:
                yield ar_batch(ex, a.batch_size, sp["pad"])


def mdm_step(obj, batch, dev):
    b = to_device(batch, dev)
    per_ex = obj(b["xt"], b["x0"], b["masked"], b["span"], b["keypad"], 1.0 / b["t"].float())
    return per_ex, b


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


# ---------------------------------------------------------------------------------------------------------------
# Evaluation on a fixed validation set.
# ---------------------------------------------------------------------------------------------------------------


def make_valid(args, stream, special, newline) -> list[dict]:
    """A fixed list of validation batches (same seed every eval, so numbers are comparable across steps)."""
    rng = np.random.default_rng(12345)
    ex = Examples(stream, special, newline, args.max_seq_len, rng, args.p_whole, args.p_line, args.p_empty,
                  args.fim_rate)
    n, B = args.eval_examples, args.batch_size
    batches = []
    if args.objective == "mdm":
        ts = args.eps + (1 - args.eps) * rng.permutation((np.arange(n) + 0.5) / n)
        for i in range(0, n, B):
            t = ts[i:i + B]
            batches.append(mdm_batch(ex, len(t), args.eps, rng, special["pad"], special["mask"], t=t))
    else:
        for i in range(0, n, B):
            batches.append(ar_batch(ex, min(B, n - i), special["pad"]))
    return batches


@torch.no_grad()
def evaluate(args, model, batches, dev) -> dict:
    model.eval()
    if args.objective == "mdm":
        obj = MDMObjective(model)
        tot = tot_inf = n = n_inf = 0.0
        for batch in batches:
            with common.autocast(dev):
                per_ex, b = mdm_step(obj, batch, dev)
            n_span = b["span"].sum(1).float()
            inf = b["whole"] == 0
            tot += per_ex.sum().item()
            n += n_span.sum().item()
            tot_inf += per_ex[inf].sum().item()
            n_inf += n_span[inf].sum().item()
        out = {"valid_elbo_bits": tot / n / LN2, "valid_elbo_infill_bits": tot_inf / max(n_inf, 1) / LN2}
    else:
        obj = ARObjective(model)
        tot = n = tot_mid = n_mid = 0.0
        for batch in batches:
            b = to_device(batch, dev)
            with common.autocast(dev):
                ce = obj(b["inp"], b["tgt"])
            real = b["tgt"] != -100
            tot += ce[real].sum().item()
            n += real.sum().item()
            tot_mid += ce[b["mid"] & real].sum().item()
            n_mid += (b["mid"] & real).sum().item()
        out = {"valid_bits": tot / n / LN2, "valid_fim_middle_bits": tot_mid / max(n_mid, 1) / LN2}
    model.train()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--objective", choices=["mdm", "ar"], required=True, help="masked diffusion denoiser or causal FIM baseline")
    common.add_run_args(a)
    a("--corpus-dir", default=str(common.CORPUS_DIR), help="folder with {train,valid}.jsonl.gz")
    a("--tokenizer", default=str(common.TOKENIZER_PATH), help="tokenizer.json (its vocabulary size sets V)")
    a("--token-cache", default=None, help="folder for the uint16 token streams (default: next to the corpus)")
    a("--n-layer", type=int, default=4, help="transformer blocks")
    a("--d-model", type=int, default=256, help="hidden width")
    a("--n-head", type=int, default=4, help="attention heads")
    a("--d-ff", type=int, default=1024, help="MLP width")
    a("--max-seq-len", type=int, default=256, help="canvas length T")
    a("--attention", choices=["full", "context_only"], default="full",
      help="mdm: full bidirectional, or context attends only to context (cacheable context keys/values)")
    a("--dropout", type=float, default=0.0, help="dropout in attention")
    a("--batch-size", type=int, default=16, help="canvases per micro-batch per process")
    a("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    a("--lr", type=float, default=2e-3, help="peak AdamW learning rate")
    a("--min-lr-ratio", type=float, default=0.1, help="final lr as a fraction of --lr")
    a("--warmup-steps", type=int, default=100, help="linear warmup steps")
    a("--weight-decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    a("--beta2", type=float, default=0.98, help="AdamW beta2")
    a("--grad-clip", type=float, default=1.0, help="gradient norm clip")
    a("--max-steps", type=int, default=0, help="stop after this many optimizer steps (0: no step limit)")
    a("--max-minutes", type=float, default=0.0, help="stop after this many minutes of wall time (0: no limit)")
    a("--eval-every", type=int, default=200, help="evaluate on the fixed validation set every N steps")
    a("--eval-examples", type=int, default=128, help="validation canvases")
    a("--log-every", type=int, default=10, help="append a training line to log.jsonl every N steps")
    a("--eps", type=float, default=1e-3, help="mdm: smallest mask rate t")
    a("--p-whole", type=float, default=0.15, help="mdm: share of whole-window (non-infill) canvases")
    a("--p-line", type=float, default=0.5, help="share of line-aligned spans (else random runs of tokens)")
    a("--p-empty", type=float, default=0.05, help="share of empty spans (only end-of-span tokens)")
    a("--p-loose", type=float, default=0.5,
      help="mdm: share of spans padded to a larger bucket than the smallest that holds them (bucket = upper bound)")
    a("--fim-rate", type=float, default=0.5, help="ar: share of fill-in-the-middle sequences (PSM or SPM)")
    a("--spm-rate", type=float, default=0.0, help="ar: share of the FIM sequences in SPM order (suffix first)")
    a("--compile", action="store_true", help="torch.compile the backbone (torch 2.x)")
    a("--fused-adam", action="store_true",
      help="AdamW's fused CUDA kernel (torch 2.x on CUDA; ignored elsewhere): one kernel for every parameter's update")
    a("--save-every-minutes", type=float, default=0.0,
      help="also evaluate (and save ckpt.pt when it improved) every N minutes of wall time, so a run killed at any "
           "moment leaves a recent model (0: only every --eval-every steps)")
    a("--workers", type=int, default=0, help="DataLoader processes building batches (0: in the training process)")
    a("--init-from", default=None, help="start from the weights of this checkpoint (same config)")
    return p.parse_args(argv)


def training_stage(ckpt: dict) -> dict:
    """What a checkpoint's own run did (its flags, steps, tokens, time, last metrics): one entry of the lineage a
    run started with --init-from records."""
    keys = ("args", "step", "train_tokens", "train_seconds", "cpu_seconds", "metrics", "device", "world", "torch")
    return {k: ckpt.get(k) for k in keys}


def main(argv=None):
    args = parse_args(argv)
    env = common.setup_runtime(args.device, args.threads)
    dev = env.device
    common.seed_everything(args.seed + env.rank)
    special = common.read_special_ids(args.tokenizer)
    vocab_size = common.load_tokenizer(args.tokenizer).get_vocab_size()
    newline = common.newline_table(args.tokenizer, vocab_size)
    train = common.token_stream("train", args.corpus_dir, args.tokenizer, args.token_cache)
    valid = common.token_stream("valid", args.corpus_dir, args.tokenizer, args.token_cache)

    config = {"kind": args.objective, "n_layer": args.n_layer, "d_model": args.d_model, "n_head": args.n_head,
              "d_ff": args.d_ff, "vocab_size": vocab_size, "max_seq_len": args.max_seq_len,
              "attention": args.attention if args.objective == "mdm" else "full", "dropout": args.dropout,
              "span_buckets": list(common.SPAN_BUCKETS)}
    model = build_model(config).to(dev)
    config = dict(model.config)
    # The stages this checkpoint continues (oldest first), so a card can report the whole training and its commands.
    lineage = []
    if args.init_from:
        init = common.torch_load(args.init_from, dev)
        model.load_state_dict(init["model"])
        lineage = init.get("lineage", []) + [training_stage(init)]
    out_dir = Path(args.runs_dir) / args.run_name
    tokenizer_copy = (out_dir / "tokenizer.json").resolve()  # the run keeps the tokenizer it was trained with
    tokenizer_sha = common.file_sha256(args.tokenizer)
    if env.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.tokenizer, tokenizer_copy)
        tok_config = Path(args.tokenizer).with_name("tokenizer_config.json")
        if tok_config.exists():
            shutil.copyfile(tok_config, out_dir / tok_config.name)
        print(f"model: {count_params(model) / 1e6:.2f}M params ({count_params(model, True) / 1e6:.2f}M non-embedding), "
              f"train stream {len(train.tokens) / 1e6:.1f}M tokens, device {dev}, world {env.world}", flush=True)

    objective = MDMObjective(model) if args.objective == "mdm" else ARObjective(model)
    if args.compile and hasattr(torch, "compile"):
        model.hidden = torch.compile(model.hidden)
    train_obj = objective
    if env.world > 1:
        train_obj = nn.parallel.DistributedDataParallel(objective, device_ids=[env.local_rank] if dev.type == "cuda" else None)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    fused = {}
    if args.fused_adam and dev.type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        fused = {"fused": True}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, args.beta2), eps=1e-8,
                            **fused)

    loader = torch.utils.data.DataLoader(Batches(args, train, special, newline, env.rank), batch_size=None,
                                         num_workers=args.workers, pin_memory=dev.type == "cuda",
                                         **({"prefetch_factor": 4} if args.workers > 0 else {}))
    batches = iter(loader)
    valid_batches = make_valid(args, valid, special, newline) if env.main else []
    log = open(out_dir / "log.jsonl", "a") if env.main else None
    best = float("inf")
    key = "valid_elbo_bits" if args.objective == "mdm" else "valid_bits"

    def save(step, tokens, seconds, metrics):
        torch.save({"model": model.state_dict(), "config": config, "special": special, "tokenizer": str(tokenizer_copy),
                    "tokenizer_source": str(args.tokenizer), "tokenizer_sha256": tokenizer_sha,
                    "step": step, "train_tokens": tokens, "train_seconds": seconds, "metrics": metrics,
                    "cpu_seconds": round(time.process_time() - cpu0, 1),
                    "args": vars(args), "torch": torch.__version__, "device": str(dev), "world": env.world,
                    "lineage": lineage},
                   out_dir / "ckpt.pt")

    def do_eval(step, tokens, train_s):
        nonlocal best
        m = evaluate(args, model, valid_batches, dev)
        line = {"step": step, "train_tokens": tokens, "train_seconds": round(train_s, 1), **m}
        improved = m[key] < best
        if improved:
            best = m[key]
            save(step, tokens, train_s, m)
        line["saved"] = improved
        log.write(json.dumps(line) + "\n")
        log.flush()
        print(json.dumps(line), flush=True)

    t0, cpu0 = time.time(), time.process_time()  # wall clock, and this process's CPU time (the machine is shared)
    eval_s = 0.0  # wall time spent evaluating, excluded from train_seconds
    step = tokens = 0
    window_loss = window_bits = window_tokens = 0.0
    window_t0 = last_eval = time.time()
    model.train()
    while True:
        elapsed = time.time() - t0
        stop = (args.max_steps and step >= args.max_steps) or (args.max_minutes and elapsed >= args.max_minutes * 60)
        if env.world > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=dev)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            break
        lr = lr_at(args, step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        for micro in range(args.grad_accum):
            sync = micro == args.grad_accum - 1
            ctx = train_obj.no_sync() if (env.world > 1 and not sync) else _null()
            with ctx:
                if args.objective == "mdm":
                    b = to_device(next(batches), dev)
                    with common.autocast(dev):
                        per_ex = train_obj(b["xt"], b["x0"], b["masked"], b["span"], b["keypad"], 1.0 / b["t"].float())
                    n_span = b["span"].sum()
                    loss = per_ex.sum() / n_span  # ELBO estimate per span token (nats)
                    real = int((~b["keypad"]).sum())
                else:
                    b = to_device(next(batches), dev)
                    with common.autocast(dev):
                        ce = train_obj(b["inp"], b["tgt"])
                    real_mask = b["tgt"] != -100
                    loss = ce[real_mask].sum() / real_mask.sum()
                    real = int(real_mask.sum())
                (loss / args.grad_accum).backward()
            window_loss += loss.item()
            window_tokens += real * env.world
            tokens += real * env.world
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if env.main and step % args.log_every == 0:
            dt = time.time() - window_t0
            mean = window_loss / (args.log_every * args.grad_accum)
            line = {"step": step, "train_tokens": tokens, "elapsed_s": round(time.time() - t0, 1),
                    "cpu_s": round(time.process_time() - cpu0, 1), "lr": lr,
                    "loss": mean, "loss_bits": mean / LN2, "tok_per_s": round(window_tokens / dt, 1)}
            log.write(json.dumps(line) + "\n")
            log.flush()
            print(json.dumps(line), flush=True)
            window_loss = window_tokens = 0.0
            window_t0 = time.time()
        timed = args.save_every_minutes > 0 and time.time() - last_eval >= args.save_every_minutes * 60
        if env.main and (step % args.eval_every == 0 or timed):
            e0 = time.time()
            do_eval(step, tokens, time.time() - t0 - eval_s)
            eval_s += time.time() - e0
            window_t0 += time.time() - e0
            last_eval = time.time()
    if env.main:
        if step % args.eval_every:
            do_eval(step, tokens, time.time() - t0 - eval_s)
        summary = {"done": True, "step": step, "train_tokens": tokens, "wall_seconds": round(time.time() - t0, 1),
                   "cpu_seconds": round(time.process_time() - cpu0, 1),
                   "eval_seconds": round(eval_s, 1), "best": best, "params": count_params(model)}
        log.write(json.dumps(summary) + "\n")
        log.close()
        print(json.dumps(summary), flush=True)
    if env.world > 1:
        torch.distributed.destroy_process_group()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


if __name__ == "__main__":
    main()
