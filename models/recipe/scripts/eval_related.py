"""Do snippets of other files help the denoiser? (issue 14, item 3, route 1; train_pretrain --p-related)

Two numbers on the valid split's infill canvases with snippets (data.Examples with p_related 1):
1. what the snippets could give: the share of the target's 4-grams (span tokens) found in the snippets, in the file's
   own context around the span, and anywhere in the other files' excerpts the snippets were chosen from;
2. what a model takes from them: masked-token bits of each checkpoint on the same canvases and the same masks, with the
   snippets and with them removed (a gain near 0 means the model does not read them).

Run (from models/recipe/):
    python -m scripts.eval_related runs/cpu-arfirst-7rel-mdm/ckpt.pt runs/cpu-arfirst-7r-mdm/ckpt.pt
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from unmask import checkpoint, common
from unmask.data import Examples
from unmask.model import build_model


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpts", nargs="*", help="denoiser checkpoints to score with and without the snippets")
    p.add_argument("--canvases", type=int, default=384, help="infill canvases that carry snippets")
    p.add_argument("--seed", type=int, default=5, help="seed of the canvases and their masks")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p.parse_args(argv)


def grams(ids, k: int = 4) -> set:
    """The k-grams of a token sequence."""
    ids = list(ids)
    return {tuple(ids[i:i + k]) for i in range(len(ids) - k + 1)}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sp = common.read_special_ids(common.TOKENIZER_PATH)
    newline = common.newline_table(common.TOKENIZER_PATH, common.load_tokenizer(common.TOKENIZER_PATH).get_vocab_size())
    ex = Examples(common.token_stream("valid"), sp, newline, 256, np.random.default_rng(args.seed), p_whole=0.0,
                  p_line=0.5, p_empty=0.0, fim_rate=0.5, p_loose=0.5, p_rest=0.3, p_related=1.0)
    pairs = []  # (tokens, span) with snippets, and the same canvas without them
    found = {"snippets": 0, "own context": 0, "other files' excerpts": 0}
    targets = 0
    while len(pairs) < args.canvases:
        toks, span, _ = ex.mdm()
        seps = np.flatnonzero(toks == sp["file"])
        if len(seps) == 0:
            continue
        cut = int(seps[-1]) + 1
        pairs.append((toks, span, np.concatenate([toks[:1], toks[cut:]]), np.concatenate([span[:1], span[cut:]])))
        own, own_span = toks[cut:], span[cut:]
        pools = {"snippets": grams(toks[1:cut]), "own context": grams(np.where(own_span, -1, own))}
        pools["other files' excerpts"] = set().union(*(grams(d) for d in ex.related_docs(ex.last_file)))
        for i in range(len(own) - 3):
            if own_span[i:i + 4].all() and sp["eos"] not in own[i:i + 4]:
                targets += 1
                g = tuple(own[i:i + 4].tolist())
                for name, pool in pools.items():
                    found[name] += g in pool
    print(f"{len(pairs)} canvases with snippets, {targets} target 4-grams found in: " +
          ", ".join(f"{name} {n / max(targets, 1):.3f}" for name, n in found.items()))

    rng = np.random.default_rng(args.seed)
    masks = []  # per canvas: which of its span positions are masked (the same with and without snippets)
    for toks, span, _, _ in pairs:
        n = int(span.sum())
        k = max(1, math.ceil((rng.random() * 0.999 + 0.001) * n))
        m = np.zeros(n, bool)
        m[rng.permutation(n)[:k]] = True
        masks.append(m)

    def tensors(which: int):
        B, T = len(pairs), 256
        x0 = np.zeros((B, T), np.int64)
        span = np.zeros((B, T), bool)
        masked = np.zeros((B, T), bool)
        keypad = np.ones((B, T), bool)
        for i, p in enumerate(pairs):
            toks, sm = p[2 * which], p[2 * which + 1]
            x0[i, :len(toks)], span[i, :len(toks)], keypad[i, :len(toks)] = toks, sm, False
            masked[i, np.flatnonzero(sm)[masks[i]]] = True
        xt = np.where(masked, sp["mask"], x0)
        return [torch.from_numpy(a) for a in (xt, x0, masked, span, keypad)]

    for path in args.ckpts:
        ck = checkpoint.read(path)
        model = build_model(ck["config"])
        model.load_state_dict(ck["model"])
        model.eval()
        bits = []
        for which in (0, 1):
            xt, x0, masked, span, keypad = tensors(which)
            nats = 0.0
            with torch.no_grad():
                for i in range(0, len(pairs), 32):
                    h = model.hidden(xt[i:i + 32], span[i:i + 32], keypad[i:i + 32])  # [b,T,D]
                    sel = masked[i:i + 32].reshape(-1).nonzero().squeeze(1)
                    logits = model.project(h.reshape(-1, h.shape[-1])[sel]).float()  # [N,V]
                    nats += F.cross_entropy(logits, x0[i:i + 32].reshape(-1)[sel], reduction="sum").item()
            bits.append(nats / int(masked.sum()) / math.log(2))
        print(f"{path}: masked-token bits with snippets {bits[0]:.3f}, without {bits[1]:.3f}, "
              f"gain {bits[1] - bits[0]:+.3f}")


if __name__ == "__main__":
    main()
