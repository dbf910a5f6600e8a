"""The model card (MODEL_CARD.md) of an exported model: the sections export_onnx writes, the one-section rewrite the
eval ("## Evaluation") and export_disc ("## Distillation") do, and the reproduce commands of every training stage.
Runs nothing on its own."""

from __future__ import annotations

import re
from pathlib import Path

# The script of each training stage, for the reproduce lines (run from models/recipe/ as `python -m scripts.X`).
STAGE_SCRIPTS = {"pretrain": "scripts.train_pretrain", "distill": "scripts.train_distill", "rl": "scripts.train_rl"}


def replace_section(card_path: str | Path, heading: str, body: str) -> None:
    """Replaces the section `heading` (e.g. "## Evaluation": from that line to the next "## " heading) of the card
    with `body`, which starts with the heading; appends it when the card has no such section (or does not exist)."""
    card_path = Path(card_path)
    text = card_path.read_text(encoding="utf-8") if card_path.exists() else ""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        text = text.rstrip("\n") + ("\n\n" if text else "") + body
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        rest = "\n".join(lines[end:])
        text = "\n".join(lines[:start]) + ("\n" if start else "") + body.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def stage_metric(stage: dict) -> str:
    """A training stage's validation number for the card: the denoiser's ELBO, or a causal stage's bits per token."""
    m = stage.get("metrics") or {}
    if "valid_elbo_bits" in m:
        return f"valid ELBO {m['valid_elbo_bits']:.3f}"
    if "valid_bits" in m:
        return f"causal (AR) stage, valid {m['valid_bits']:.3f} bits/token (FIM middle {m.get('valid_fim_middle_bits', float('nan')):.3f})"
    return "no validation metric"


def model_card(model_id: str, ckpt: dict, meta: dict, files: list[dict], sources: list[dict], summary: dict,
               check: dict, parity_positions: int, existing: str | None) -> str:
    cfg, a = ckpt["config"], ckpt.get("args", {})
    m = ckpt.get("metrics") or {}
    int8_check = next((v for k, v in (check or {}).items() if "int8" in k and isinstance(v, dict)), {})
    int8_top1 = int8_check.get("top1_agreement")
    ort_version = (check or {}).get("onnxruntime")
    # A run continued with --init-from lists the runs before it: the card reports the whole training.
    stages = [*ckpt.get("lineage", []), ckpt]
    total_seconds = sum(s["train_seconds"] for s in stages)
    total_tokens = sum(s["train_tokens"] for s in stages)
    hours = ckpt["train_seconds"] / 3600
    device = ckpt.get("device", "cpu")
    on_cpu = str(device).startswith("cpu")
    threads = a.get("threads") or "default"
    lines = [
        f"# {model_id}",
        "",
        f"A {cfg['n_layer']}-layer, {cfg['d_model']}-wide masked-diffusion code model ({ckpt.get('params', 0) / 1e6:.2f}M "
        f"parameters) that fills spans of Python, TypeScript and JavaScript in a few parallel denoising steps. It is "
        "Unmask's default model, run locally by the extension through onnxruntime-node (int8 weights).",
        "",
        ("**Trained on a CPU.** No GPU was available when this model was made: it was trained for "
         f"{total_seconds / 60:.0f} minutes on {threads} CPU thread(s) of a shared 2-core machine"
         f"{f' in {len(stages)} runs' if len(stages) > 1 else ''}, has seen "
         f"only {total_tokens / 1e6:.1f}M tokens and is far from converged. `models/recipe/run_gpu.sh` trains "
         "the same recipe on a GPU." if on_cpu else
         f"Trained on {ckpt.get('world', 1)} x {device} for {total_seconds / 60:.1f} minutes"
         f"{f' in {len(stages)} runs' if len(stages) > 1 else ''}, {total_tokens / 1e6:.0f}M tokens."),
        "",
        "## Use",
        "",
        "The canvas is `<|lang:...|> prefix [MASK]*n suffix`, where n is a span-length bucket "
        f"({meta['unmask.span_buckets']}); the model fills the span with code followed by `<|eos|>` tokens, and the "
        "runtime trims at the first `<|eos|>`. Several spans in one canvas are filled jointly. The ONNX contract "
        "(inputs, outputs, metadata) is in `models/README.md`.",
        "",
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "|---|---|---|",
        *[f"| `{f['name']}` | {f['bytes']} | `{f['sha256'][:16]}...` |" for f in files],
        "",
        "## Architecture",
        "",
        f"- Bidirectional pre-norm transformer, RoPE (base {cfg['rope_base']:g}), GELU MLP, LayerNorm, no biases in "
        "linear layers, vocabulary projection tied to the token embedding.",
        f"- {cfg['n_layer']} layers, d_model {cfg['d_model']}, {cfg['n_head']} heads, d_ff {cfg['d_ff']}, "
        f"vocabulary {cfg['vocab_size']}, trained at T = {cfg['max_seq_len']}, attention `{cfg['attention']}`.",
        *(["- Attention `context_only`: context tokens attend only to context, span tokens to everything, so the "
           "context's keys and values are computed once per request (`context.int8.onnx`) and each denoising step "
           "runs only the span tokens (`step.int8.onnx`); see models/README.md, \"Cached-context denoiser\"."]
          if cfg["attention"] == "context_only" else []),
        f"- Parameters: {ckpt.get('params', 0):,} ({ckpt.get('params_non_embedding', 0):,} outside the embedding).",
        f"- Weights: `{meta['unmask.quantization']}` (7-bit symmetric per-column weights for every matrix product, "
        "int8 embedding with per-row scales; activations quantized per call).",
        f"- Output: the logits and the K-best head (K = {meta['unmask.top_k']}: the likeliest tokens the sampler may "
        "commit and the normaliser, per requested position; models/README.md, \"K-best head\").",
        "",
        "## Training",
        "",
        *([("**AR-first.** The weights were first trained as a causal model (stage 1, `--objective ar`: next-token "
            "cross-entropy on every token, half of the sequences fill-in-the-middle in PSM or SPM order), then "
            "adapted into this denoiser (stage 2, `--objective mdm --init-from` the causal checkpoint: the same "
            "parameters, attention switched to the layout below, each position predicting its own token), as "
            "DiffuCoder, Dream-Coder and DiffuLLaMA start from autoregressive models. Stage 2 is:"), ""]
          if any((st.get("args") or {}).get("objective") == "ar" for st in stages[:-1]) else []),
        "Masked diffusion (MDLM/LLaDA objective): t ~ U(eps, 1) per canvas, k = ceil(t * n) of its n span tokens "
        "masked, loss = cross-entropy on the masked tokens weighted by n/k (1/t at the realised rate), normalised per "
        "span token: an upper bound on the NLL, reported as the ELBO in bits per span token. Most "
        f"canvases are infill-shaped: a line-aligned or random span (sometimes empty, sometimes 2-3 spans) padded "
        f"with `<|eos|>` to a length bucket, the rest clean context; {a.get('p_whole', 0.15):.0%} are whole-window "
        "canvases. Context never masked. See `models/recipe/scripts/train_pretrain.py` and "
        "`models/recipe/unmask/data.py`.",
        "",
        "| | |",
        "|---|---|",
        f"| optimizer | AdamW, peak lr {a.get('lr')}, warmup {a.get('warmup_steps')} steps, cosine to "
        f"{a.get('min_lr_ratio')} x peak, weight decay {a.get('weight_decay')}, beta2 {a.get('beta2')}, clip "
        f"{a.get('grad_clip')} |",
        f"| batch | {a.get('batch_size')} canvases x {cfg['max_seq_len']} tokens x {a.get('grad_accum')} accumulation "
        f"x {ckpt.get('world', 1)} processes |",
        f"| steps | {ckpt['step']} |",
        f"| tokens seen | {ckpt['train_tokens']:,} |",
        f"| wall time | {ckpt['train_seconds']:.0f} s ({hours:.2f} h) on {device}, {threads} torch thread(s), "
        f"torch {ckpt.get('torch')} |",
        *([f"| CPU time | {ckpt['cpu_seconds']:.0f} s of process CPU time (the machine was shared with other work, "
           "so wall time overstates the compute) |"] if ckpt.get("cpu_seconds") and on_cpu else []),
        f"| throughput | {ckpt['train_tokens'] / max(ckpt['train_seconds'], 1):.0f} tokens/s |",
        f"| validation ELBO | {m.get('valid_elbo_bits', float('nan')):.3f} bits/span token (infill canvases "
        f"{m.get('valid_elbo_infill_bits', float('nan')):.3f}) |",
        *(["| earlier runs | this run continued (`--init-from`) "
           + "; ".join(f"`{s['args'].get('run_name')}`: {s['step']} steps, {s['train_tokens']:,} tokens, "
                       f"{s['train_seconds']:.0f} s, peak lr {s['args'].get('lr')}, {stage_metric(s)}"
                       for s in stages[:-1])
           + f"; in all {total_tokens:,} tokens in {total_seconds:.0f} s |"] if len(stages) > 1 else []),
        "",
        "Reproduce (from `models/recipe/`):",
        "",
        "```sh",
        *[stage_command(s) for s in stages],
        f"python -m scripts.export_onnx --ckpt <run>/ckpt.pt --out ../{model_id} --id {model_id}",
        "```",
        "",
        "## Data",
        "",
        "Real source code fetched by exact name@version from Debian and the npm registry (`models/recipe/sources.json`, "
        "built by `models/recipe/scripts/data_corpus.py`): generated, minified, vendored and duplicate files dropped; whole "
        "packages held out as the test split.",
        "",
        "| split | packages | files | bytes | licences |",
        "|---|---|---|---|---|",
        *[f"| {k} | {v['packages']} | {v['files']:,} | {v['bytes']:,} | "
          + ", ".join(f"{lic} ({n})" for lic, n in sorted(v["licences"].items())) + " |" for k, v in summary.items()
          if isinstance(v, dict) and "packages" in v],
        "",
        "<details><summary>All sources</summary>",
        "",
        "| name | version | registry | split | licence | files | bytes |",
        "|---|---|---|---|---|---|---|",
        *[f"| {s['name']} | {s['version']} | {s['registry']} | {s['split']} | {s['licence']} | {s['files']} | "
          f"{s['bytes']} |" for s in sources],
        "",
        "</details>",
        "",
        (f"Token counts with this tokenizer: train {summary['tokens']['train']:,}, valid {summary['tokens']['valid']:,}, "
         f"test {summary['tokens']['test']:,}; training saw {total_tokens / summary['tokens']['train']:.2f} "
         "epochs' worth of canvas tokens." if "tokens" in summary else ""),
        "",
        "## Limitations",
        "",
        "- Small and briefly trained: expect plausible-looking but often wrong completions; it knows only the "
        "libraries in its corpus.",
        f"- Trained on canvases of at most {cfg['max_seq_len']} tokens; longer canvases run (RoPE) but lose quality.",
        (f"- int8 weights change some predictions: on the {parity_positions} masked positions of `parity.json` the "
         f"int8 file's top-1 token agrees with PyTorch fp32 at {int8_top1:.1%} (onnxruntime {ort_version})."
         if int8_top1 is not None else
         "- int8 weights change some predictions; `parity.json` pins down the fp32 logits to check against."),
        "",
    ]
    card = "\n".join(lines)
    evaluation = "## Evaluation\n\nNot yet evaluated: `models/recipe/scripts/eval_heldout.py` writes this section.\n"
    if existing and "## Evaluation" in existing:
        evaluation = existing[existing.index("## Evaluation"):]
    return card + "\n" + evaluation.rstrip() + "\n"


def stage_command(stage: dict) -> str:
    """The command line of one training stage (a checkpoint or a lineage entry), as the card's reproduce block shows
    it: its stage's script and the flags that shape the run. Distill and rl record their own starting checkpoint."""
    name = stage.get("stage") or "pretrain"
    a = stage.get("args") or {}
    if name == "pretrain":
        return f"python -m {STAGE_SCRIPTS[name]} {' '.join(cli_args(a))}"
    start = {"distill": "teacher", "rl": "init_from"}[name]
    flags = [f"--{start.replace('_', '-')}", str(a.get(start)), "--run-name", str(a.get("run_name"))]
    return f"python -m {STAGE_SCRIPTS[name]} {' '.join(flags)}"


def cli_args(a: dict) -> list[str]:
    """train_pretrain's flags that shape a run (the causal stage's FIM mix too), from a checkpoint's args."""
    keep = ["objective", "run_name", "init_from", "n_layer", "d_model", "n_head", "d_ff", "max_seq_len", "attention",
            "batch_size", "grad_accum", "lr", "warmup_steps", "max_steps", "max_minutes", "seed", "threads"]
    if a.get("objective") == "ar":  # The causal stage's example mix (its defaults differ across recipe versions).
        keep += ["fim_rate", "spm_rate", "p_line"]
    out = []
    for k in keep:
        v = a.get(k)
        if v in (None, 0, 0.0, False):
            continue
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def update_card_files(card: Path, files: list[dict]) -> None:
    """Rewrites the bytes and sha256 of `files` in the model card's file table (model_card's rows), if it has them."""
    if not card.exists():
        return
    text = card.read_text()
    for f in files:
        row = re.compile(rf"^\| `{re.escape(f['name'])}` \| \d+ \| `[0-9a-f]{{16}}\.\.\.` \|$", re.M)
        text = row.sub(f"| `{f['name']}` | {f['bytes']} | `{f['sha256'][:16]}...` |", text)
    card.write_text(text)
