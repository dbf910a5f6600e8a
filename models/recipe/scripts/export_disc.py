"""Exports a distillation run to a shipped model folder: the student through export_onnx (the denoiser contract, as the
teacher), then the discriminator as int8 ONNX (`unmask.kind = "disc"`, contract in models/README.md), its parity
fixture, its entries in manifest.json and a "## Distillation" section of the model card.

Run from models/recipe/:
    python -m scripts.export_disc --run runs/gpu-distill --out ../unmask-coder-base
Only the discriminator (the folder already holds the student):
    python -m scripts.export_disc --run runs/gpu-distill --out ../unmask-coder-base --disc-only
A reward discriminator (scripts/train_reward.py) beside the folder's denoiser, with a "## Reward model" card section:
    python -m scripts.export_disc --disc runs/reward-12/disc.pt --out ../unmask-coder-base --ranking runs/rank.md

Discriminator graph: inputs input_ids [B,T] int64, positions [B,P] int64, t [B] float32 (noise level in [0,1]),
output scores [B,P] float32 (per-token logits, > 0: "looks like a teacher sample"); opset 17; the spectral norm is
folded into plain weights; weights int8 with onnx_export's quantizer (the embedding table int8 per row, every
constant-weight MatMul 7-bit per column). Files: disc.int8.onnx (+ disc.onnx with --fp32) and disc_parity.json:
{"format": 1, "tolerance": {"fp32_rel_l2", "int8_rel_l2", "int8_sign"}, "cases": [{"name", "input_ids" [B][T],
"positions" [B][P], "t" [B], "scores" [B][P] (PyTorch fp32)}]}. An fp32 file must match "scores" to a relative L2
error < fp32_rel_l2; an int8 file to < int8_rel_l2, with the PyTorch sign on at least int8_sign of the scores
whose magnitude is at least sign_min.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import torch

from unmask import checkpoint, common
from unmask import onnx_export as export
from unmask.card import replace_section
from unmask.discriminator import Discriminator, load_discriminator
from scripts import export_onnx

REPO = common.REPO_DIR
# int8_sign counts only scores with |PyTorch score| >= SIGN_MIN: the sign of a near-zero logit is noise.
TOLERANCE = {"fp32_rel_l2": 1e-4, "int8_rel_l2": 0.1, "int8_sign": 0.95, "sign_min": 0.1}
CARD_SECTION = "## Distillation"
REWARD_SECTION = "## Reward model"


class OnnxDisc(torch.nn.Module):
    """The exported signature: (input_ids [B,T], positions [B,P], t [B]) -> scores [B,P]."""

    def __init__(self, disc: Discriminator):
        super().__init__()
        self.disc = disc

    def forward(self, input_ids, positions, t):
        return self.disc(input_ids, positions, t)


def export_disc_fp32(disc: Discriminator, path: Path, opset: int) -> None:
    ids = torch.randint(16, disc.config["vocab_size"], (2, 48))
    pos = torch.tensor([[3, 5, 7, 11], [0, 2, 40, 47]])
    t = torch.tensor([0.3, 0.9])
    torch.onnx.export(OnnxDisc(disc.baked()).eval(), (ids, pos, t), str(path), opset_version=opset,
                      input_names=["input_ids", "positions", "t"], output_names=["scores"],
                      dynamic_axes={"input_ids": {0: "B", 1: "T"}, "positions": {0: "B", 1: "P"}, "t": {0: "B"},
                                    "scores": {0: "B", 1: "P"}},
                      do_constant_folding=True, **export.exporter_kwargs())


def embedding_initializer(graph) -> str:
    """The name of the token embedding table: the [V, D] initializer read by a Gather on input_ids."""
    inits = export.initializers(graph)
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in inits and node.input[1] == "input_ids":
            return node.input[0]
    raise RuntimeError("export_disc: the embedding Gather on input_ids was not found")


def disc_metadata(ckpt: dict, quantization: str, summary: dict) -> dict[str, str]:
    """export_onnx.py's metadata for the backbone, kind "disc", plus `unmask.disc`: what the scores mean."""
    meta = export.metadata(ckpt, quantization, summary)
    a = ckpt.get("args", {})
    meta["unmask.kind"] = "disc"
    meta["unmask.attention"] = "full"
    if ckpt.get("stage") == "reward":  # train_reward.py: the shipped model's rows, right against wrong
        m = ckpt["disc_meaning"]
        meta["unmask.disc"] = json.dumps({
            "real": m["real"], "fake": m["fake"],
            "score": "per-token logit; > 0 means the candidate looks right (log-odds real:fake)",
            "t_range": [m["t_clean"], m["t_clean"]], "t_clean": m["t_clean"],
            "trainable_blocks": ckpt["config"]["disc"]["trainable_blocks"],
            "rerank": "add the mean of the scores over a candidate's span positions to its ranking score",
        })
        return meta
    meta["unmask.disc"] = json.dumps({
        "real": "teacher samples", "fake": "student samples",
        "score": "per-token logit; > 0 means the token looks like the teacher's (log-odds teacher:student)",
        "t_range": [a.get("tau_min"), a.get("tau_max")], "t_clean": a.get("tau_min"),
        "trainable_blocks": ckpt["config"]["disc"]["trainable_blocks"],
        "label_smoothing": a.get("label_smoothing"), "reward_clip": a.get("reward_clip"),
        "rerank": "sum the scores over a candidate's span positions; higher is better",
    })
    return meta


def parity_cases(disc: Discriminator, special: dict, corpus_dir: str, tokenizer_path: str, seed: int = 11) -> list:
    """Canvases from the held-out test split (random ids without a corpus): spans partly masked at noise level t."""
    rng = np.random.default_rng(seed)
    V = disc.config["vocab_size"]
    try:
        stream = common.token_stream("test", corpus_dir, tokenizer_path)

        def window(n):
            f = int(rng.integers(0, len(stream.starts)))
            s, L = int(stream.starts[f]) + 1, int(stream.lengths[f]) - 1
            off = s + int(rng.integers(0, max(1, L - n)))
            w = np.asarray(stream.tokens[off:off + n], np.int64)
            return int(stream.langs[f]), np.pad(w, (0, n - len(w)), constant_values=special["eos"])
    except FileNotFoundError:
        def window(n):
            return special["lang:python"], rng.integers(16, V, n)

    specs = [("span of 32 at t=0.5, T=200", 1, 200, (80, 32), [0.5]),
             ("span of 16, two rows at t=0.1 and 0.9, T=64", 2, 64, (20, 16), [0.1, 0.9])]
    cases = []
    for name, B, T, (start, length), ts in specs:
        rows = []
        for b in range(B):
            lang, w = window(T - 1)
            ids = np.concatenate([[lang], w])
            hide = rng.random(length) < ts[b]
            ids[start:start + length][hide] = special["mask"]
            rows.append(ids)
        ids = np.stack(rows)
        pos = np.tile(np.arange(start, start + length), (B, 1))
        with torch.no_grad():
            scores = disc(torch.from_numpy(ids), torch.from_numpy(pos), torch.tensor(ts, dtype=torch.float32))
        cases.append({"name": name, "input_ids": ids.tolist(), "positions": pos.tolist(), "t": ts,
                      "scores": [[float(f"{v:.7g}") for v in row] for row in scores.numpy()]})
    return cases


NODE_CHECK = r"""
const ort = require('onnxruntime-node');
const fs = require('fs');
(async () => {
  const req = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = {};
  for (const [label, file] of Object.entries(req.files)) {
    const sess = await ort.InferenceSession.create(file);
    out[label] = [];
    for (const c of req.cases) {
      const B = c.input_ids.length, T = c.input_ids[0].length, P = c.positions[0].length;
      const feeds = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(c.input_ids.flat().map(BigInt)), [B, T]),
        positions: new ort.Tensor('int64', BigInt64Array.from(c.positions.flat().map(BigInt)), [B, P]),
        t: new ort.Tensor('float32', Float32Array.from(c.t), [B]),
      };
      const r = await sess.run(feeds);
      out[label].push(Array.from(r.scores.data));
    }
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
"""


def check_with_node(files: dict, cases: list, node: str = "node") -> dict:
    """Runs the exported files with onnxruntime-node (the runtime the extension uses) on the parity cases; returns per
    file the worst relative L2 error and the share of scores with the PyTorch sign. {"skipped": why} without Node."""
    if shutil.which(node) is None or not (REPO / "node_modules" / "onnxruntime-node").exists():
        return {"skipped": "node or onnxruntime-node not installed"}
    payload = json.dumps({"files": {k: str(Path(v).resolve()) for k, v in files.items()}, "cases": cases})
    proc = subprocess.run([node, "-e", NODE_CHECK], input=payload, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"export_disc: onnxruntime-node failed: {proc.stderr.strip()[-2000:]}")
    got = json.loads(proc.stdout)
    report = {}
    for label, outs in got.items():
        worst, same, total = 0.0, 0, 0
        for c, o in zip(cases, outs):
            ref = np.asarray(c["scores"], np.float32).reshape(-1)
            o = np.asarray(o, np.float32)
            worst = max(worst, float(np.linalg.norm(o - ref) / max(np.linalg.norm(ref), 1e-12)))
            clear = np.abs(ref) >= TOLERANCE["sign_min"]
            same += int((np.sign(o) == np.sign(ref))[clear].sum())
            total += int(clear.sum())
        report[label] = {"rel_l2": worst, "sign_agreement": same / total if total else 1.0}
    return report


def card_section(student: dict, disc_ckpt: dict, files: list[dict]) -> str:
    a = student.get("args", {})
    m = student.get("metrics") or {}
    t = student.get("teacher") or {}
    flags = " ".join(f"--{k.replace('_', '-')} {a[k]}" for k in ("batch_size", "group", "lr", "disc_lr", "max_steps",
                                                               "max_minutes", "pool_size", "teacher_steps") if k in a)
    ablations = [n for n, on in (("--no-group-norm", a.get("no_group_norm")),
                                 ("--no-intermediate", a.get("no_intermediate"))) if on]
    lines = [
        CARD_SECTION, "",
        "The shipped denoiser is a DiDi-Instruct student: the masked-diffusion teacher distilled into a few-step "
        "sampler by minimising the integral KL between the student's and the teacher's marginals with a policy "
        "gradient whose reward is a discriminator's log-odds (models/recipe/scripts/train_distill.py; methods.md "
        "section 2). "
        "`disc.int8.onnx` is that discriminator, usable as a reward model to rerank candidates "
        "(contract in models/README.md).", "",
        "| | |", "|---|---|",
        f"| teacher | `{t.get('path')}`, {t.get('step')} steps, {t.get('train_tokens')} tokens |",
        f"| distillation | {student.get('step')} iterations, {student.get('distill_seconds', 0):.0f} s on "
        f"{student.get('world', 1)} x {student.get('device')}, torch {student.get('torch')} |",
        f"| group / contexts | G = {a.get('group')} samples per context, {a.get('batch_size')} contexts per iteration |",
        f"| teacher pool | {a.get('pool_size')} contexts, {a.get('teacher_steps')} ancestral steps at temperature "
        f"{a.get('teacher_temperature')} |",
        f"| discriminator | last {disc_ckpt['config']['disc']['trainable_blocks']} blocks + final norm + spectral-norm "
        f"head trained, lr {a.get('disc_lr')}, label smoothing {a.get('label_smoothing')} |",
        f"| ablations | {', '.join(ablations) if ablations else 'none (full method)'} |",
        f"| student validation ELBO | {m.get('student_valid_elbo_bits', float('nan')):.3f} bits/span token |",
        "", "Files: " + ", ".join(f"`{f['name']}` ({f['bytes']} bytes)" for f in files) + ".", "",
        "Reproduce (from `models/recipe/`):", "", "```sh",
        f"python -m scripts.train_distill --teacher {t.get('path')} --run-name {a.get('run_name')} {flags}"
        + (" " + " ".join(ablations) if ablations else ""),
        "python -m scripts.export_disc --run <run folder> --out <this folder>", "```", "",
    ]
    return "\n".join(lines)


def reward_card_section(disc_ckpt: dict, files: list[dict], ranking: str) -> str:
    """The card's section for a discriminator trained by train_reward.py (no student: the denoiser is unchanged)."""
    a, m = disc_ckpt.get("args", {}), disc_ckpt.get("metrics") or {}
    lines = [
        REWARD_SECTION, "",
        "`disc.int8.onnx` is a reward model that ranks the candidates (server/protocol/candidates.ts adds the mean of "
        "its per-token logits over a candidate's span to the likelihood-plus-syntax score). It is the discriminator "
        "of unmask/discriminator.py (this model's backbone, lower blocks frozen) trained by "
        "models/recipe/scripts/train_reward.py on this model's own candidates for tasks cut from the corpus's valid "
        "split: the real code and rows with the right first line against rows with a wrong one.", "",
        "| | |", "|---|---|",
        f"| backbone | `{a.get('teacher')}`, last {disc_ckpt['config']['disc']['trainable_blocks']} blocks + final "
        "norm + spectral-norm head trained |",
        f"| training | {disc_ckpt.get('step')} optimizer steps, {disc_ckpt.get('train_tokens')} canvas tokens, "
        f"{disc_ckpt.get('train_seconds', 0) / 60:.0f} min on {disc_ckpt.get('device')}, torch {disc_ckpt.get('torch')} |",
        f"| validation (valid-split tasks with right and wrong rows) | top row right: likelihood + syntax "
        f"{100 * m.get('top1_score', float('nan')):.1f}%, + reward {100 * m.get('top1_score_reward', float('nan')):.1f}%, "
        f"reward alone {100 * m.get('top1_reward', float('nan')):.1f}% ({m.get('tasks')} tasks) |",
        f"| validation (tasks whose rows are all right or all wrong) | the top row's first-line edit similarity: "
        f"likelihood + syntax {100 * m.get('sim_score', float('nan')):.1f}%, + reward "
        f"{100 * m.get('sim_score_reward', float('nan')):.1f}% ({m.get('graded_tasks')} tasks) |",
        "", "Files: " + ", ".join(f"`{f['name']}` ({f['bytes']} bytes)" for f in files) + ".", "",
    ]
    if ranking:
        lines += [ranking.rstrip(), ""]
    return "\n".join(lines)


def export_discriminator(disc_path: Path, out: Path, fp32: bool, opset: int, corpus_dir: str,
                         sources: Path, tokenizer: str | None = None) -> dict:
    """Writes disc.int8.onnx (+ disc.onnx), disc_parity.json; returns {"files": [...], "meta": ..., "check": ...}."""
    torch.manual_seed(0)
    disc, ckpt = load_discriminator(str(disc_path))
    ckpt["params"] = sum(p.numel() for p in disc.parameters())
    tokenizer_path = tokenizer or ckpt.get("tokenizer") or str(common.TOKENIZER_PATH)
    summary = export.data_summary(export.corpus_sources(sources, Path(corpus_dir)))
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "disc.fp32.tmp.onnx"
    export_disc_fp32(disc, tmp, opset)
    proto = onnx.load(str(tmp))
    tmp.unlink()
    int8 = export.quantize_int8(proto, embedding_initializer(proto.graph))
    export.set_metadata(proto, disc_metadata(ckpt, "none", summary))
    export.set_metadata(int8, disc_metadata(ckpt, export.QUANT_NAME, summary))
    onnx.checker.check_model(proto)
    onnx.checker.check_model(int8)
    written = {"disc.int8.onnx": int8}
    if fp32:
        written["disc.onnx"] = proto
    elif (out / "disc.onnx").exists():
        (out / "disc.onnx").unlink()
    for name, p in written.items():
        onnx.save(p, str(out / name))
    cases = parity_cases(disc, ckpt["special"], corpus_dir, tokenizer_path)
    (out / "disc_parity.json").write_text(json.dumps(
        {"format": export.FORMAT, "about": "PyTorch fp32 discriminator scores; see models/recipe/scripts/export_disc.py",
         "tolerance": TOLERANCE, "cases": cases}, separators=(",", ":")) + "\n")
    check = check_with_node({n: out / n for n in written}, cases)
    for label, r in check.items():
        if not isinstance(r, dict):
            continue
        bound = TOLERANCE["fp32_rel_l2"] if label == "disc.onnx" else TOLERANCE["int8_rel_l2"]
        if r["rel_l2"] > bound or (label == "disc.int8.onnx" and r["sign_agreement"] < TOLERANCE["int8_sign"]):
            raise RuntimeError(f"export_disc: {label} misses the parity tolerance: {r} (bounds {TOLERANCE})")
    files = [{"name": n, "sha256": common.file_sha256(out / n), "bytes": (out / n).stat().st_size,
              "role": {"disc.int8.onnx": "discriminator-int8", "disc.onnx": "discriminator-fp32",
                       "disc_parity.json": "discriminator-parity-fixture"}[n]}
             for n in list(written) + ["disc_parity.json"]]
    return {"files": files, "meta": disc_metadata(ckpt, export.QUANT_NAME, summary), "check": check, "ckpt": ckpt}


def update_manifest(out: Path, files: list[dict], meta: dict, check: dict) -> None:
    """Adds the discriminator's files and facts to manifest.json (written by export_onnx for the denoiser)."""
    path = out / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: export the student first (export_onnx, or drop --disc-only)")
    manifest = json.loads(path.read_text())
    names = {f["name"] for f in files}
    manifest["files"] = [f for f in manifest.get("files", []) if f["name"] not in names
                         and not f.get("role", "").startswith("discriminator")] + files
    manifest["discriminator"] = {"default_file": "disc.int8.onnx", "facts": meta, "ort_check": check}
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="distillation run folder with student.pt and disc.pt")
    p.add_argument("--disc", default=None,
                   help="a reward discriminator (train_reward.py's disc.pt) to ship beside the folder's denoiser "
                        "instead of a distillation run")
    p.add_argument("--ranking", default=None,
                   help="with --disc: a Markdown file of measurements to put in the card's section (eval_rank's table)")
    p.add_argument("--out", required=True, help="model folder to write (created; files in it are replaced)")
    p.add_argument("--id", default=None, help="model id (default: the --out folder name)")
    p.add_argument("--disc-only", action="store_true", help="export only the discriminator (the student is there)")
    p.add_argument("--fp32", action="store_true", help="also write fp32 model.onnx and disc.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17 for LayerNormalization)")
    p.add_argument("--corpus-dir", default=str(common.CORPUS_DIR), help="corpus folder; parity canvases come from test")
    p.add_argument("--sources", default=str(common.RECIPE_DIR / "sources.json"), help="the corpus source manifest")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the one named in the checkpoints)")
    args = p.parse_args(argv)

    out = Path(args.out)
    if (args.run is None) == (args.disc is None):
        p.error("give --run (a distillation run) or --disc (a reward discriminator)")
    if args.disc:
        r = export_discriminator(Path(args.disc), out, args.fp32, args.opset, args.corpus_dir, Path(args.sources),
                                 args.tokenizer)
        update_manifest(out, r["files"], r["meta"], r["check"])
        manifest = json.loads((out / "manifest.json").read_text())
        ranking = Path(args.ranking).read_text() if args.ranking else ""
        replace_section(out / "MODEL_CARD.md", REWARD_SECTION, reward_card_section(r["ckpt"], manifest["files"], ranking))
        print(json.dumps({"out": str(out), "files": {f["name"]: f["bytes"] for f in r["files"]}, "check": r["check"]},
                         indent=1))
        return
    run = Path(args.run)
    if not args.disc_only:
        cmd = ["--ckpt", str(run / "student.pt"), "--out", str(out), "--corpus-dir", args.corpus_dir,
               "--sources", args.sources] + (["--id", args.id] if args.id else []) + (["--fp32"] if args.fp32 else [])
        if args.tokenizer:
            cmd += ["--tokenizer", args.tokenizer]
        export_onnx.main(cmd)
    r = export_discriminator(run / "disc.pt", out, args.fp32, args.opset, args.corpus_dir, Path(args.sources),
                             args.tokenizer)
    update_manifest(out, r["files"], r["meta"], r["check"])
    student = checkpoint.read(run / "student.pt")
    manifest = json.loads((out / "manifest.json").read_text())
    replace_section(out / "MODEL_CARD.md", CARD_SECTION, card_section(student, r["ckpt"], manifest["files"]))
    print(json.dumps({"out": str(out), "files": {f["name"]: f["bytes"] for f in r["files"]}, "check": r["check"]},
                     indent=1))


if __name__ == "__main__":
    main()
