"""How fast this machine trains the denoiser: the CPU's measured matrix-product peak per precision, and a real
training step (MDM objective, real canvases, AdamW) in fp32 and under bf16 autocast (--cpu-precision), as tokens/s,
supervised (masked) tokens/s and the share of that precision's peak the step reaches (issue 11, "every core, every
hour"). Run it on the idle machine, beside nothing else:

    python -m scripts.train_bench --threads 2 --batch-sizes 16,64 --corpus-dir data/corpus-grown \
        --tokenizer ../unmask-coder-base/tokenizer.json

FLOPs of a step (training = 3 x forward): per real canvas token 2 x (4 d^2 + 2 d d_ff) per layer plus attention's
4 x T x d per layer (every key counted: an upper bound for context_only), per masked token 2 x d x V for the tied
projection. Prints a table; --out writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from unmask import common
from unmask.data import Examples, mdm_batch
from unmask.loss_eval import MDMObjective, mdm_step
from unmask.model import build_model


def matmul_peak(dtype: torch.dtype, seconds: float) -> float:
    """GFLOP/s of the best of two square products (1024, 2048) in `dtype` at the current thread count."""
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        for _ in range(2):
            a @ b
        t, k = time.perf_counter(), 0
        while time.perf_counter() - t < seconds:
            a @ b
            k += 1
        best = max(best, 2 * n ** 3 * k / (time.perf_counter() - t) / 1e9)
    return best


def step_flops(cfg: dict, real_tokens: int, masked_tokens: int, T: int) -> float:
    """FLOPs of one training step (forward and backward) over a batch with these token counts (module docstring)."""
    d, L, ff, V = cfg["d_model"], cfg["n_layer"], cfg["d_ff"], cfg["vocab_size"]
    per_token = L * (2 * (4 * d * d + 2 * d * ff) + 4 * T * d)
    return 3.0 * (real_tokens * per_token + masked_tokens * 2 * d * V)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--threads", type=int, default=2, help="torch CPU threads")
    a("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (bf16 autocast, as --cpu-precision bf16)")
    a("--batch-sizes", default="16,64", help="comma-separated canvases per step")
    a("--steps", type=int, default=6, help="timed steps per row (the median is reported; one more runs first, untimed)")
    a("--size", default="6x384", help="LAYERSxWIDTH of the denoiser (64-wide heads, MLP 4x)")
    a("--max-seq-len", type=int, default=256, help="canvas length T")
    a("--peak-seconds", type=float, default=1.5, help="seconds per matrix size when measuring the peak")
    a("--corpus-dir", default=str(common.CORPUS_DIR), help="corpus whose valid split gives the canvases")
    a("--tokenizer", default=str(common.TOKENIZER_PATH), help="tokenizer.json (its vocabulary sets V)")
    a("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    layers, width = (int(x) for x in args.size.lower().split("x"))
    special = common.read_special_ids(args.tokenizer)
    V = common.load_tokenizer(args.tokenizer).get_vocab_size()
    stream = common.token_stream("valid", args.corpus_dir, args.tokenizer)
    newline = common.newline_table(args.tokenizer, V)
    cfg = {"kind": "mdm", "n_layer": layers, "d_model": width, "n_head": width // 64, "d_ff": 4 * width,
           "vocab_size": V, "max_seq_len": args.max_seq_len, "attention": "context_only", "dropout": 0.0,
           "span_buckets": list(common.SPAN_BUCKETS)}
    peaks = {"fp32": matmul_peak(torch.float32, args.peak_seconds), "bf16": matmul_peak(torch.bfloat16, args.peak_seconds)}
    print(f"torch {torch.__version__}, {args.threads} threads, bf16 dot products: {common.cpu_has_bf16()}; matmul peak "
          f"fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)
    rows = []
    for B in (int(x) for x in args.batch_sizes.split(",")):
        rng = np.random.default_rng(0)
        # The CPU recipe's canvases: 15% whole-window, half line-aligned spans, 5% empty, half loose buckets, 30% rest of line.
        ex = Examples(stream, special, newline, args.max_seq_len, rng, p_whole=0.15, p_line=0.5, p_empty=0.05,
                      fim_rate=0.0, p_loose=0.5, spm_rate=0.0, p_rest=0.3)
        batches = [mdm_batch(ex, B, 1e-3, rng, special["pad"], special["mask"]) for _ in range(args.steps + 1)]
        for precision in args.precisions.split(","):
            torch.manual_seed(0)
            model = build_model(cfg)
            obj = MDMObjective(model)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            common.setup_runtime("cpu", args.threads, precision)
            times, flops, real, sup = [], [], [], []
            for i, batch in enumerate(batches):
                t = time.perf_counter()
                with common.autocast(cpu):
                    per_ex, b = mdm_step(obj, batch, cpu)  # [B]; the batch as tensors
                (per_ex.sum() / b["span"].sum()).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if i == 0:
                    continue  # the first step allocates
                times.append(time.perf_counter() - t)
                n_real, n_masked = int((~b["keypad"]).sum()), int(b["masked"].sum())
                real.append(n_real)
                sup.append(n_masked)
                flops.append(step_flops(cfg, n_real, n_masked, args.max_seq_len))
            k = int(np.argsort(times)[len(times) // 2])  # the median step, with its own batch's counts
            s = times[k]
            row = {"torch": torch.__version__, "threads": args.threads, "size": args.size, "batch": B,
                   "precision": precision, "ms_per_step": round(s * 1000), "tokens_per_s": round(real[k] / s),
                   "supervised_tokens_per_s": round(sup[k] / s), "gflops": round(flops[k] / s / 1e9, 1),
                   "share_of_peak": round(flops[k] / s / 1e9 / peaks[precision], 3), "peak_gflops": round(peaks[precision])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    common.setup_runtime("cpu", args.threads, "fp32")
    print("\n| precision | batch | ms/step | tokens/s | supervised tokens/s | GFLOP/s | share of peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['precision']} | {r['batch']} | {r['ms_per_step']} | {r['tokens_per_s']} | "
              f"{r['supervised_tokens_per_s']} | {r['gflops']} | {r['share_of_peak']:.0%} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
