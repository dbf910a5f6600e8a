"""Exports a checkpoint (of any stage: pretrain, distill's student.pt, rl) to a shipped model folder per
models/README.md: int8 ONNX (+ fp32 with --fp32), tokenizer.json, manifest.json, parity.json and the model card's
generated sections (unmask/onnx_export.py has the graph contract, the quantization and the parity checks; unmask/card.py
the card).

Run from models/recipe/:
    python -m scripts.export_onnx --ckpt runs/cpu-arfirst-mdm/ckpt.pt --out ../unmask-coder-base \
        --id unmask-coder-base --corpus-dir data/corpus [--top-k 64]
The tokenizer must be the one the checkpoint was trained with (its sha256 is in every stage's checkpoint).
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

import onnx
import torch

from unmask import checkpoint, common, kbest_head
from unmask.card import model_card
from unmask.model import count_params
from unmask.onnx_export import (FORMAT, QUANT_NAME, ROLES, check_cached_modules, check_with_onnxruntime,
                                corpus_sources, data_summary, export_cached_graphs, export_graph, metadata,
                                parity_cases, sources_table)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True,
                   help="checkpoint to export (runs/<name>/ckpt.pt of train_pretrain or train_rl, train_distill's "
                        "student.pt, or float16 weights from weights/)")
    p.add_argument("--out", required=True, help="model folder to write (created; files in it are replaced)")
    p.add_argument("--id", default=None, help="model id (default: the --out folder name)")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the one named in the checkpoint)")
    p.add_argument("--corpus-dir", default=str(common.CORPUS_DIR), help="corpus folder; parity canvases come from test")
    p.add_argument("--sources", default=str(common.RECIPE_DIR / "sources.json"), help="the corpus source manifest")
    p.add_argument("--fp32", action="store_true", help="also write the fp32 model.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17 for LayerNormalization)")
    p.add_argument("--parity-logits", type=int, default=3, help="positions per canvas row with full logits in parity.json")
    p.add_argument("--no-card", action="store_true", help="do not (re)write MODEL_CARD.md")
    p.add_argument("--top-k", type=int, default=common.DEFAULT_TOP_K,
                   help="K of the K-best head every denoiser graph ends in (entries per position handed to the "
                        "sampler); clamped to the vocabulary minus the banned ids")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    model, ckpt = checkpoint.load_model(args.ckpt)
    ckpt["params"] = count_params(model)
    ckpt["params_non_embedding"] = count_params(model, non_embedding=True)
    cached = ckpt["config"]["attention"] == "context_only"
    banned = common.banned_ids(ckpt["special"])
    top_k = kbest_head.clamp_top_k(args.top_k, ckpt["config"]["vocab_size"], len(banned))
    tokenizer_path = Path(args.tokenizer or ckpt["tokenizer"])
    if ckpt.get("tokenizer_sha256") and common.file_sha256(tokenizer_path) != ckpt["tokenizer_sha256"]:
        sys.exit(f"export: {tokenizer_path} is not the tokenizer {args.ckpt} was trained with (sha256 differs)")
    if common.read_special_ids(tokenizer_path) != ckpt["special"]:
        sys.exit(f"export: {tokenizer_path} has other special ids than the checkpoint {args.ckpt}")
    if common.load_tokenizer(tokenizer_path).get_vocab_size() != ckpt["config"]["vocab_size"]:
        sys.exit(f"export: {tokenizer_path} has another vocabulary size than the checkpoint {args.ckpt}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_id = args.id or out.name
    sources = corpus_sources(Path(args.sources), Path(args.corpus_dir))
    summary = data_summary(sources)
    try:  # token counts of the splits (from the token cache when it exists; tokenises otherwise)
        summary["tokens"] = {split: int(len(common.token_stream(split, args.corpus_dir, tokenizer_path).tokens))
                             for split in ("train", "valid", "test")}
    except FileNotFoundError:
        pass

    cases = parity_cases(model, ckpt, tokenizer_path, args.corpus_dir, args.parity_logits)
    if cached:  # refuse to write graphs of a computation that differs from the checkpoint's
        modules_rel_l2 = check_cached_modules(model, cases)
        graphs = export_cached_graphs(model, ckpt, out, args.opset, summary, top_k)
    else:
        graphs = export_graph(model, ckpt, out, args.opset, summary, top_k)
    # The manifest's facts: the denoiser graph's metadata (the single or the step graph), head included.
    meta = {**metadata(ckpt, QUANT_NAME, summary),
            **{p.key: p.value for p in graphs["step.int8.onnx" if cached else "model.int8.onnx"].metadata_props
               if p.key in kbest_head.META_KEYS}}
    written = {name: proto for name, proto in graphs.items() if args.fp32 or "int8" in name}
    for name in ROLES:
        if name.endswith(".onnx") and name not in written and (out / name).exists():
            (out / name).unlink()  # a stale graph (the other precision or the other path) would not match the manifest
    for name, proto in written.items():
        onnx.save(proto, str(out / name))
    shutil.copyfile(tokenizer_path, out / "tokenizer.json")
    # tokenizer_config.json tells the JavaScript tokenizer not to clean up spaces on decode; it sits next to the
    # tokenizer (or next to the one the checkpoint was trained from).
    tok_files = ["tokenizer.json"]
    for folder in (tokenizer_path.parent, Path(ckpt.get("tokenizer_source", tokenizer_path)).parent,
                   common.TOKENIZER_PATH.parent):
        if (folder / "tokenizer_config.json").exists():
            shutil.copyfile(folder / "tokenizer_config.json", out / "tokenizer_config.json")
            tok_files.append("tokenizer_config.json")
            break

    parity = {"format": FORMAT, "model": model_id,
              "about": "PyTorch fp32 logits of the checkpoint on infill canvases from the held-out test split; "
                       "see models/recipe/unmask/onnx_export.py for the fields.",
              "tolerance": {"fp32_rel_l2": 1e-4, "int8_top1": 0.97}, "cases": cases}
    (out / "parity.json").write_text(json.dumps(parity, separators=(",", ":")) + "\n")

    if cached:
        check = check_with_onnxruntime(
            {"context.onnx + step.onnx": (graphs["context.onnx"].SerializeToString(),
                                          graphs["step.onnx"].SerializeToString()),
             "context.int8.onnx + step.int8.onnx": (out / "context.int8.onnx", out / "step.int8.onnx")}, cases,
            banned)
        check["pytorch_cached_rel_l2"] = modules_rel_l2
    else:
        check = check_with_onnxruntime({"model.onnx": graphs["model.onnx"].SerializeToString(),
                                        "model.int8.onnx": out / "model.int8.onnx"}, cases, banned)
    files = [{"name": n, "sha256": common.file_sha256(out / n), "bytes": (out / n).stat().st_size}
             for n in list(written) + tok_files + ["parity.json"]]
    if cached:  # the runtime takes the cached-context path when the manifest names the two graphs
        pairs = {"int8": ("context.int8.onnx", "step.int8.onnx"), "fp32": ("context.onnx", "step.onnx")}
        graph_files = {"cached_context": {precision: {"context": c, "step": st}
                                          for precision, (c, st) in pairs.items() if c in written}}
    else:
        graph_files = {"default_file": "model.int8.onnx"}
    manifest = {
        "id": model_id,
        "kind": ckpt["config"]["kind"],
        "format": FORMAT,
        **graph_files,
        "files": [{**f, "role": ROLES[f["name"]]} for f in files],
        "facts": meta,
        "training": json.loads(meta["unmask.config"]),
        "data": {"summary": summary, "sources": sources_table(sources)},
        "exported": {"from": str(Path(args.ckpt)), "torch": torch.__version__, "onnx": onnx.__version__,
                     "opset": args.opset, "date": datetime.date.today().isoformat(), "ort_check": check},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if not args.no_card:
        card_path = out / "MODEL_CARD.md"
        existing = card_path.read_text() if card_path.exists() else None
        n_pos = sum(len(row) for c in cases for row in c["positions"])
        card_path.write_text(model_card(model_id, ckpt, meta, files, sources_table(sources), summary, check, n_pos,
                                        existing))
    total = sum((out / f).stat().st_size for f in (list(written) + tok_files + ["parity.json", "manifest.json"]))
    print(json.dumps({"out": str(out), "files": {f["name"]: f["bytes"] for f in files}, "total_bytes": total,
                      "ort_check": check}, indent=1))


if __name__ == "__main__":
    main()
