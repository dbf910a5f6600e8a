"""(Re)writes the K-best head (unmask/kbest_head.py, models/README.md "K-best head") in place on the denoiser graphs
of an exported model folder: the single graph or the step graph, fp32 and int8 (the context graph has no vocabulary
projection). A head a graph already has is replaced, so an older folder gets the current head and a second run writes
the same bytes; the banned ids come from each graph's `unmask.special_ids` and `unmask.eos_id`. Rewrites only the
files' sha256 and bytes and the head facts in manifest.json (and the card's file table), then checks the head on
parity.json with onnxruntime.

Run from models/recipe/:
    python -m scripts.export_head ../unmask-coder-base [--top-k 64]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnx

from unmask import common, kbest_head
from unmask.card import update_card_files
from unmask.kbest_head import append_kbest_head
from unmask.onnx_export import check_with_onnxruntime


# The manifest roles of the graphs that end in the vocabulary projection, and so in the K-best head.
HEAD_ROLES = ("denoiser-int8", "denoiser-fp32", "step-int8", "step-fp32")


def add_head(folder: Path, top_k: int) -> dict:
    """(Re)writes the K-best head in place on the denoiser graphs that `folder`'s manifest lists (roles
    HEAD_ROLES), with the banned ids of each graph's own metadata and K = top_k clamped to its vocabulary; a head a
    graph already has is replaced (strip_kbest_head), so an older folder gets the current head and a second run writes
    the same bytes. Rewrites those files' sha256 and bytes and the two head facts in manifest.json, nothing else, and
    the card's file table; then checks the head on parity.json (check_with_onnxruntime). Returns what it did."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    targets = [f for f in manifest["files"] if f["role"] in HEAD_ROLES]
    if not targets:
        raise SystemExit(f"export_head: {manifest_path} lists no denoiser graph (roles {', '.join(HEAD_ROLES)})")
    protos = {f["name"]: onnx.load(str(folder / f["name"])) for f in targets}
    replaced = [name for name, proto in protos.items() if kbest_head.strip_kbest_head(proto)]
    head_facts, banned = None, None
    for name, proto in protos.items():
        meta = {p.key: p.value for p in proto.metadata_props}
        banned = kbest_head.banned_from_metadata(meta)
        k = kbest_head.clamp_top_k(top_k, int(meta["unmask.vocab_size"]), len(banned))
        append_kbest_head(proto, k, banned)
        onnx.checker.check_model(proto)
        facts = {p.key: p.value for p in proto.metadata_props if p.key in kbest_head.META_KEYS}
        if head_facts not in (None, facts):
            raise SystemExit(f"export_head: the graphs of {folder} disagree on the head: {head_facts} vs {facts}")
        head_facts = facts
    for name, proto in protos.items():
        onnx.save(proto, str(folder / name))
    for f in manifest["files"]:
        if f["name"] in protos:
            f["sha256"], f["bytes"] = common.file_sha256(folder / f["name"]), (folder / f["name"]).stat().st_size
    manifest["facts"].update(head_facts)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    update_card_files(folder / "MODEL_CARD.md", [f for f in manifest["files"] if f["name"] in protos])

    check = {"skipped": "no parity.json"}
    if (folder / "parity.json").exists():
        cases = json.loads((folder / "parity.json").read_text())["cases"]
        if "cached_context" in manifest:
            paths = {f"{pair['context']} + {pair['step']}": (folder / pair["context"], folder / pair["step"])
                     for pair in manifest["cached_context"].values()}
        else:
            paths = {name: folder / name for name in protos}
        check = check_with_onnxruntime(paths, cases, banned)
    return {"folder": str(folder), "head": head_facts, "replaced": replaced,
            "files": {name: (folder / name).stat().st_size for name in protos}, "ort_check": check}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="an exported model folder (its manifest.json lists the graphs)")
    p.add_argument("--top-k", type=int, default=common.DEFAULT_TOP_K,
                   help="K of the K-best head (entries per position handed to the sampler); clamped to the vocabulary "
                        "minus the banned ids")
    args = p.parse_args(argv)
    print(json.dumps(add_head(Path(args.folder), args.top_k), indent=1))


if __name__ == "__main__":
    main()
