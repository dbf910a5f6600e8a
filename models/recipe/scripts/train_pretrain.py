"""Pretrains the masked-diffusion code teacher (`--objective mdm`) or the same-size autoregressive baseline
(`--objective ar`) on the pre-tokenised corpus, and writes runs/<run-name>/{ckpt.pt, log.jsonl}.

Default model on one CPU thread, 45 minutes (what run_cpu.sh's tiny run and run_gpu.sh's real run scale):
    python -m scripts.train_pretrain --objective mdm --run-name cpu-mdm --threads 1 --max-minutes 45
    python -m scripts.train_pretrain --objective ar  --run-name cpu-ar  --threads 1 --max-minutes 45
Many GPUs:
    torchrun --nproc_per_node 8 -m scripts.train_pretrain --objective mdm --run-name gpu-mdm --batch-size 64 --compile

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
import contextlib
import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn as nn

from unmask import checkpoint, common, related
from unmask.data import Batches, make_valid, to_device
from unmask.loss_eval import LN2, ARObjective, MDMObjective, validation_bits
from unmask.model import build_model, count_params
from unmask.train_utils import adamw, decaying, lr_at, stop_everywhere


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--objective", choices=["mdm", "ar"], required=True, help="masked diffusion denoiser or causal FIM baseline")
    common.add_run_args(a)
    a("--corpus-dir", default=str(common.CORPUS_DIR), help="folder with {train,valid}.jsonl.gz")
    a("--valid-dir", default=None,
      help="folder whose valid.jsonl.gz validates instead of --corpus-dir's: a grown corpus validated on the split "
           "the earlier runs used, so the curves compare (default: --corpus-dir)")
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
    a("--schedule", choices=["cosine", "wsd"], default="cosine",
      help="after warmup: cosine to --min-lr-ratio over the run, or warmup-stable-decay (peak lr, then a linear decay "
           "over the last --decay-fraction; the model at the start of the decay is saved as stable.pt, the one a "
           "later session continues from without losing what a restart at the peak lr costs an annealed model)")
    a("--decay-fraction", type=float, default=0.25, help="wsd: share of the run (steps or minutes) spent decaying")
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
    a("--p-rest", type=float, default=0.0,
      help="share of rest-of-line spans: from a token inside a line through its newline (half of the time 1-3 lines "
           "more), what the editor asks for while typing; the validation batches never use them, so valid numbers "
           "stay comparable across runs"),
    a("--attention-anneal-steps", type=int, default=0,
      help="mdm: anneal the attention from causal to the --attention pattern over this run's first N steps (each later "
           "key is visible with probability step/N, DiffuLLaMA's adaptation of a causal model); 0: the pattern from "
           "the first step"),
    a("--p-related", type=float, default=0.0,
      help="mdm: share of infill canvases that begin with snippets of other files of the same package (chunks chosen "
           "as the extension does, unmask/related.py), so the model can copy from the workspace; the checkpoint then "
           "declares the layout (ONNX fact unmask.related_context) and the extension uses it. Validation batches never "
           "have snippets"),
    a("--related-max-tokens", type=int, default=128,
      help="mdm, with --p-related: most canvas tokens the snippets take (each canvas draws its budget from 24..this)"),
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
    a("--init-from", default=None,
      help="start from the weights of this checkpoint (same config; also its optimizer state when it holds one)")
    a("--save-last", action="store_true",
      help="also write last.pt at every evaluation, whatever the validation number: for a fine-tune aimed at shapes "
           "the validation set does not hold (e.g. --p-rest), which the held-out eval judges instead")
    a("--save-optimizer", action="store_true",
      help="keep AdamW's state in ckpt.pt (3x the file), so --init-from continues with the optimizer's moments")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    env = common.setup_runtime(args.device, args.threads, args.cpu_precision)
    dev = env.device
    common.seed_everything(args.seed + env.rank)
    special = common.read_special_ids(args.tokenizer)
    vocab_size = common.load_tokenizer(args.tokenizer).get_vocab_size()
    newline = common.newline_table(args.tokenizer, vocab_size)
    train = common.token_stream("train", args.corpus_dir, args.tokenizer, args.token_cache)
    valid = common.token_stream("valid", args.valid_dir or args.corpus_dir, args.tokenizer, args.token_cache)

    config = {"kind": args.objective, "n_layer": args.n_layer, "d_model": args.d_model, "n_head": args.n_head,
              "d_ff": args.d_ff, "vocab_size": vocab_size, "max_seq_len": args.max_seq_len,
              "attention": args.attention if args.objective == "mdm" else "full", "dropout": args.dropout,
              "span_buckets": list(common.SPAN_BUCKETS)}
    model = build_model(config).to(dev)
    config = dict(model.config)
    if args.objective == "mdm" and args.p_related > 0:
        # The layout the model learns to read; the extension places snippets only for a model that declares it.
        config["related_context"] = {"layout": related.LAYOUT, "max_tokens": args.related_max_tokens}
    # The stages this checkpoint continues (oldest first), so a card can report the whole training and its commands.
    init = checkpoint.read(args.init_from, dev) if args.init_from else None
    if init is not None:
        model.load_state_dict(init["model"])
    lineage = checkpoint.lineage_after(init)
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

    opt = adamw(model, args.lr, args.weight_decay, args.beta2, fused=args.fused_adam)
    if init is not None and init.get("optimizer") is not None:
        opt.load_state_dict(init["optimizer"])  # AdamW's moments carry on; the learning-rate schedule restarts

    loader = torch.utils.data.DataLoader(Batches(args, train, special, newline, env.rank), batch_size=None,
                                         num_workers=args.workers, pin_memory=dev.type == "cuda",
                                         **({"prefetch_factor": 4} if args.workers > 0 else {}))
    batches = iter(loader)
    valid_batches = make_valid(args, valid, special, newline) if env.main else []
    log = open(out_dir / "log.jsonl", "a") if env.main else None
    best = float("inf")
    key = "valid_elbo_bits" if args.objective == "mdm" else "valid_bits"

    def save(step, tokens, seconds, metrics, name="ckpt.pt"):
        checkpoint.save(out_dir / name, model.state_dict(), stage="pretrain", config=config, special=special,
                        tokenizer=tokenizer_copy, tokenizer_sha256=tokenizer_sha, lineage=lineage, args=args,
                        step=step, train_tokens=tokens, train_seconds=seconds, metrics=metrics, device=dev,
                        world=env.world, cpu_seconds=round(time.process_time() - cpu0, 1),
                        optimizer=opt.state_dict() if args.save_optimizer else None,
                        tokenizer_source=str(args.tokenizer))

    def do_eval(step, tokens, train_s):
        nonlocal best
        m = validation_bits(args.objective, model, valid_batches, dev)
        line = {"step": step, "train_tokens": tokens, "train_seconds": round(train_s, 1), **m}
        improved = m[key] < best and step > 0  # step 0 (a continuation's starting point) is a baseline, not a save
        if improved:
            best = m[key]
            save(step, tokens, train_s, m)
        if args.save_last and step > 0:
            save(step, tokens, train_s, m, name="last.pt")
        line["saved"] = improved
        log.write(json.dumps(line) + "\n")
        log.flush()
        print(json.dumps(line), flush=True)

    t0, cpu0 = time.time(), time.process_time()  # wall clock, and this process's CPU time (the machine is shared)
    eval_s = 0.0  # wall time spent evaluating, excluded from train_seconds
    step = tokens = 0
    stable_saved = False
    window_loss = window_tokens = 0.0
    window_t0 = last_eval = time.time()
    if env.main and args.init_from:
        # The starting model on this run's validation set: the number a continuation has to beat.
        e0 = time.time()
        do_eval(0, 0, 0.0)
        eval_s += time.time() - e0
    model.train()
    first_step = step
    while True:
        if args.attention_anneal_steps > 0:
            model.anneal = min(1.0, (step - first_step) / args.attention_anneal_steps)
        elapsed = time.time() - t0
        stop = (args.max_steps and step >= args.max_steps) or (args.max_minutes and elapsed >= args.max_minutes * 60)
        if stop_everywhere(stop, env.world, dev):
            break
        if env.main and not stable_saved and decaying(args, step, elapsed):
            # The last model at the peak lr: what the next session resumes from (see --schedule).
            save(step, tokens, elapsed - eval_s, {"schedule": "wsd", "decay_starts": True}, name="stable.pt")
            stable_saved = True
        lr = lr_at(args, step, elapsed)
        for g in opt.param_groups:
            g["lr"] = lr
        for micro in range(args.grad_accum):
            sync = micro == args.grad_accum - 1
            ctx = train_obj.no_sync() if (env.world > 1 and not sync) else contextlib.nullcontext()
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


if __name__ == "__main__":
    main()
