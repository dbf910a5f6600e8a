"""CPU latency of candidate model sizes, for choosing the width and depth a GPU window trains (issue 12).

Run from models/recipe/:
    python -m scripts.eval_size_bench --sizes 4x256,8x256,6x320,6x384,8x384,8x512 --rounds 15

For each size LxD (L layers, width D, D/64 heads, MLP 4D) it trains a context_only denoiser for one step on the smoke
corpus with the real 8192-token tokenizer (random weights are enough: latency does not depend on them) and exports it
as the shipped int8 cached-context pair with the K-best head (export_onnx). Then node/size_bench.mjs times the model calls
of a 32-token, 8-step fill (one context pass, eight step calls fetching the head, as the engine makes them; 1 row and
the editor's 2 inline rows) through onnxruntime-node, every candidate once per round, in rotating order, for
--rounds rounds: on a machine that other work (training) loads, every candidate is slowed alike and the ratio to the
first size is what carries over. The engine's own overhead (sampler, messages) and the LSP round trip do not grow
with the model. --full-bench also runs the extension's benchmark (`node dist/bench.js --quick`, the 32-token / 8-step
row of `npm run bench`; build dist/ first) on each size, one after the other. Prints a table; writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from unmask.paths import NODE_DIR, RECIPE_DIR as HERE, REPO_DIR as REPO


def parse_size(s: str) -> tuple[int, int]:
    layers, width = s.lower().split("x")
    return int(layers), int(width)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, cwd=HERE, **kw)  # stages run from models/recipe/ (python -m)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="4x256,6x384,8x384,8x512", help="comma-separated LAYERSxWIDTH candidates")
    p.add_argument("--rounds", type=int, default=15, help="interleaved rounds of size_bench.mjs (one fill per size each)")
    p.add_argument("--full-bench", action="store_true",
                   help="also run the extension's benchmark (dist/bench.js --quick) on each size, one after another")
    p.add_argument("--runs", type=int, default=20, help="with --full-bench: its runs per configuration")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (the bench's --threads; 0: auto)")
    p.add_argument("--work", default=str(HERE / "runs" / "size-bench"), help="folder for the checkpoints and models")
    p.add_argument("--corpus-dir", default=str(HERE / "data" / "corpus-smoke"), help="corpus for the one step and parity")
    p.add_argument("--tokenizer", default=str(HERE / "data" / "tokenizer" / "tokenizer.json"),
                   help="the real tokenizer (its vocabulary sets the projection's cost)")
    p.add_argument("--python", default=sys.executable, help="interpreter for train_pretrain.py and export_onnx.py")
    p.add_argument("--node", default="node", help="Node.js binary")
    p.add_argument("--out", default=None, help="JSON results (default: WORK/size_bench.json)")
    args = p.parse_args(argv)
    work = Path(args.work).resolve()
    args.corpus_dir, args.tokenizer = os.path.abspath(args.corpus_dir), os.path.abspath(args.tokenizer)
    work.mkdir(parents=True, exist_ok=True)
    bench = REPO / "dist" / "bench.js"
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    dirs = []
    for layers, width in sizes:
        name = f"{layers}x{width}"
        run_dir, model_dir = work / name, work / f"model-{name}"
        ckpt = run_dir / "ckpt.pt"
        if not ckpt.exists():
            run([args.python, "-m", "scripts.train_pretrain", "--objective", "mdm", "--attention", "context_only",
                 "--run-name", name, "--runs-dir", str(work), "--n-layer", str(layers), "--d-model", str(width),
                 "--n-head", str(max(1, width // 64)), "--d-ff", str(4 * width), "--max-seq-len", "256",
                 "--batch-size", "2", "--max-steps", "1", "--eval-every", "1", "--eval-examples", "2",
                 "--log-every", "1", "--threads", "1", "--corpus-dir", args.corpus_dir, "--tokenizer", args.tokenizer,
                 "--token-cache", str(work / "tokens")], stdout=subprocess.DEVNULL)
        if not (model_dir / "manifest.json").exists():
            run([args.python, "-m", "scripts.export_onnx", "--ckpt", str(ckpt), "--out", str(model_dir), "--id",
                 f"size-{name}", "--corpus-dir", args.corpus_dir, "--no-card"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        dirs.append(model_dir)
    # The model calls of a 32-token, 8-step fill, all candidates in interleaved rounds (size_bench.mjs).
    got = run([args.node, str(NODE_DIR / "size_bench.mjs"), "--rounds", str(args.rounds), "--rows", "1,2",
               "--threads", str(args.threads), *map(str, dirs)], capture_output=True, text=True)
    fills = {Path(r["dir"]).name: r["median_ms"] for r in json.loads(got.stdout.strip().splitlines()[-1])["results"]}
    rows = []
    for (layers, width), model_dir in zip(sizes, dirs):
        name = f"{layers}x{width}"
        ckpt = work / name / "ckpt.pt"
        params = int(subprocess.run([args.python, "-c", (
            "import sys; from unmask import checkpoint; "
            "c = checkpoint.read(sys.argv[1]); print(sum(v.numel() for v in c['model'].values()))"),
            str(ckpt)], capture_output=True, text=True, check=True, cwd=HERE).stdout)
        row = {"size": name, "layers": layers, "width": width, "params": params,
               "onnx_bytes": {f.name: f.stat().st_size for f in sorted(model_dir.glob("*.onnx"))},
               "fill_ms": fills[model_dir.name]}
        if args.full_bench:  # the extension's own benchmark too (engine and LSP end to end), one model at a time
            if not bench.exists():
                raise SystemExit(f"size_bench: {bench} missing; run `npm run bench` once (it builds dist/bench.js)")
            out_json = work / f"bench-{name}.json"
            run([args.node, str(bench), "--model", str(model_dir), "--quick", "--runs", str(args.runs),
                 "--threads", str(args.threads), "--json", str(out_json)], stdout=subprocess.DEVNULL, cwd=REPO)
            data = json.loads(out_json.read_text())
            engine = next(r for r in data["engine"] if r["span"] == 32 and r["steps"] == 8)
            e2e = next((r for r in data.get("e2e", []) if r["span"] == 32 and r["steps"] == 8), {})
            row.update({"engine_p50_ms": round(engine["p50"], 1), "e2e_p50_ms": round(e2e["p50"], 1) if e2e else None})
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    print(f"\n| size | params | int8 pair MB | fill ms, 1 row | fill ms, 2 rows | vs {base['size']} (1 row) | "
          f"vs {base['size']} (2 rows) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        mb = sum(r["onnx_bytes"].values()) / 1e6
        f1, f2 = r["fill_ms"]["1"], r["fill_ms"]["2"]
        print(f"| {r['size']} | {r['params'] / 1e6:.1f}M | {mb:.1f} | {f1} | {f2} | "
              f"{f1 / base['fill_ms']['1']:.2f}x | {f2 / base['fill_ms']['2']:.2f}x |")
    out = Path(args.out) if args.out else work / "size_bench.json"
    out.write_text(json.dumps({"rows": rows, "rounds": args.rounds, "load": os.getloadavg()}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
