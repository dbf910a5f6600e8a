"""Training canvases from a pre-tokenised split (common.TokenStream): the denoiser's infill and whole-window canvases,
the causal FIM sequences, their batches and the fixed validation batches. Shared by pretrain, distill and the eval's
test-split NLL (loss_eval.py), so every stage draws canvases the same way. Runs nothing on its own.

Shapes: T = the canvas length (--max-seq-len), B = canvases per batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from unmask import canvas, common, related


# Snippets of other files (--p-related): each canvas draws its budget from RELATED_MIN_TOKENS..related_max and its
# candidate chunks from up to RELATED_FILES other files of the package (same language), RELATED_EXCERPT tokens of each:
# the extension hands the engine up to 3 other open documents, a few thousand tokens of each.
RELATED_MAX_TOKENS = 128
RELATED_MIN_TOKENS = 24
RELATED_FILES = 3
RELATED_EXCERPT = 1024


class Examples:
    """Draws training canvases from a TokenStream with its own numpy RNG."""

    def __init__(self, stream: common.TokenStream, special: dict, newline: np.ndarray, seq_len: int,
                 rng: np.random.Generator, p_whole: float, p_line: float, p_empty: float, fim_rate: float,
                 p_loose: float = 0.0, spm_rate: float = 0.0, p_rest: float = 0.0, p_related: float = 0.0,
                 related_max: int = RELATED_MAX_TOKENS):
        self.s, self.sp, self.nl, self.T, self.rng = stream, special, newline, seq_len, rng
        self.spm_rate = spm_rate
        self.p_whole, self.p_line, self.p_empty, self.fim_rate = p_whole, p_line, p_empty, fim_rate
        self.p_loose, self.p_rest = p_loose, p_rest
        if len(stream.starts) == 0:
            raise ValueError("empty token stream")
        self.file_cdf = np.cumsum(stream.lengths)  # files are drawn in proportion to their length
        self.last_file = -1  # the file the last window() came from
        self.p_related, self.related_max = p_related, related_max
        self.siblings: dict[tuple[int, int], np.ndarray] = {}  # (package, lang) -> its files
        if p_related > 0:
            if stream.packages is None:
                raise ValueError("--p-related needs the files' packages (common.token_stream writes them)")
            keys = stream.packages * 1000 + stream.langs
            for k in np.unique(keys):
                self.siblings[(int(k) // 1000, int(k) % 1000)] = np.flatnonzero(keys == k)

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
        self.last_file = f
        return int(s.langs[f]), np.asarray(s.tokens[off:min(off + n, end)], dtype=np.int64)

    def related_docs(self, f: int) -> list[np.ndarray]:
        """Excerpts (RELATED_EXCERPT tokens at a random place) of up to RELATED_FILES other files of file f's package
        in its language: what the extension's other open documents are to the file being edited."""
        s, rng = self.s, self.rng
        pool = self.siblings.get((int(s.packages[f]), int(s.langs[f])), np.zeros(0, np.int64))
        pool = pool[pool != f]
        docs = []
        for g in rng.permutation(pool)[:RELATED_FILES]:
            first, end = int(s.starts[g]) + 1, int(s.starts[g] + s.lengths[g])
            off = int(rng.integers(first, max(first, end - RELATED_EXCERPT) + 1))
            docs.append(np.asarray(s.tokens[off:min(off + RELATED_EXCERPT, end)], dtype=np.int64))
        return docs

    def span_end(self, w: np.ndarray, start: int, limit: int) -> tuple[int, int]:
        """Picks one span [start', end) inside w[start:limit]: empty, rest-of-line, line-aligned or random-length;
        <= 128 tokens."""
        rng = self.rng
        if rng.random() < self.p_empty:
            return start, start
        if rng.random() < self.p_rest:
            # Rest of a line (--p-rest): from a token inside a line through the newline that ends it, and half of the
            # time 1-3 lines more. What the editor asks for most: the cursor is usually mid-line while typing, and
            # line-aligned spans always start at a line start while random runs rarely end at a line end.
            nl = np.flatnonzero(self.nl[w[start:limit]]) + start
            if len(nl) >= 2:
                i = int(rng.integers(0, len(nl) - 1))
                line_start, line_end = int(nl[i]) + 1, int(nl[i + 1])
                if line_end > line_start:
                    s0 = int(rng.integers(line_start + 1, line_end + 1)) if line_end > line_start + 1 else line_end
                    j = i + 1 if rng.random() < 0.5 else min(i + 1 + int(rng.integers(1, 4)), len(nl) - 1)
                    return s0, min(int(nl[j]) + 1, s0 + 128)
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
        tight = canvas.bucket_for(length, common.SPAN_BUCKETS, None)
        larger = [b for b in common.SPAN_BUCKETS if tight < b <= room]
        if larger and self.rng.random() < self.p_loose:
            return int(larger[int(self.rng.integers(0, len(larger)))])
        return tight

    def mdm(self) -> tuple[np.ndarray, np.ndarray, int]:
        """One denoising canvas: (tokens [T'] int64 with T' <= T, span mask [T'] bool, 1 if whole-window)."""
        if self.rng.random() < self.p_whole:
            return self.whole_window()
        T, eos = self.T, self.sp["eos"]
        budget = 0  # canvas tokens kept for snippets of other files (--p-related)
        if self.p_related > 0 and self.rng.random() < self.p_related:
            budget = int(self.rng.integers(RELATED_MIN_TOKENS, self.related_max + 1))
        T = T - budget  # the file's own canvas: [lang] text and spans
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
            if budget:
                # The query is what the engine sees: the last ids before the first hole (pieces[1] is the text there).
                query = pieces[1][-related.QUERY_TOKENS:]
                chunks = related.select(query, self.related_docs(self.last_file), self.nl, budget)
                extra = related.layout(chunks, self.sp["file"])
                pieces.insert(1, extra)
                masks.insert(1, np.zeros(len(extra), bool))
            return np.concatenate(pieces), np.concatenate(masks), 0
        # Ten windows whose first span did not fit (a cut near the window's end with a long bucket: ~1e-6 of canvases,
        # but a GPU window draws 10^5-10^6 of them, and session 11's first window died on it): a whole-window canvas
        # always fits.
        return self.whole_window()

    def whole_window(self) -> tuple[np.ndarray, np.ndarray, int]:
        """A whole-window canvas: [lang] then T-1 tokens of one file, every one of them in the span (eos-padded)."""
        T, eos = self.T, self.sp["eos"]
        lang, w = self.window(T - 1)
        toks = np.concatenate([[lang], w, np.full(T - 1 - len(w), eos)])
        span = np.ones(T, dtype=bool)
        span[0] = False
        return toks, span, 1

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
                      a.p_loose, a.spm_rate, getattr(a, "p_rest", 0.0), getattr(a, "p_related", 0.0),
                      getattr(a, "related_max_tokens", RELATED_MAX_TOKENS))
        while True:
            if a.objective == "mdm":
                yield mdm_batch(ex, a.batch_size, a.eps, rng, sp["pad"], sp["mask"])
            else:
                yield ar_batch(ex, a.batch_size, sp["pad"])


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
