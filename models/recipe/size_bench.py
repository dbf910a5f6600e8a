"""CPU latency of candidate model sizes, for choosing the width and depth a GPU window trains (issue 12).

    .venv/bin/python models/recipe/size_bench.py --sizes 4x256,6x384,8x384,8x512 --runs 20

For each size LxD (L layers, width D, D/64 heads, MLP 4D) it trains a context_only denoiser for one step on the smoke
corpus with the real 8192-token tokenizer (random weights are enough: latency does not depend on them), exports it
as the shipped int8 cached-context pair with the K-best head (export.py), and runs the extension's own benchmark on
it (`node dist/bench.js --quick`, the 32-token / 8-step configuration of `npm run bench`; build dist/ first with
`npm run bench` once or `node esbuild.mjs`). Prints one row per size: parameters, file sizes, engine-only p50/p95 and
end-to-end (LSP) p50 of a 32-token fill at 8 steps, and the ratio to the first size. The machine may be loaded (by
training): compare the ratios, and repeat on an idle machine for absolute numbers. Writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def parse_size(s: str) -> tuple[int, int]:
    layers, width = s.lower().split("x")
    return int(layers), int(width)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="4x256,6x384,8x384,8x512", help="comma-separated LAYERSxWIDTH candidates")
    p.add_argument("--runs", type=int, default=20, help="bench runs per size (--runs of the bench)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (the bench's --threads; 0: auto)")
    p.add_argument("--work", default=str(HERE / "runs" / "size-bench"), help="folder for the checkpoints and models")
    p.add_argument("--corpus-dir", default=str(HERE / "data" / "corpus-smoke"), help="corpus for the one step and parity")
    p.add_argument("--tokenizer", default=str(HERE / "data" / "tokenizer" / "tokenizer.json"),
                   help="the real tokenizer (its vocabulary sets the projection's cost)")
    p.add_argument("--python", default=sys.executable, help="interpreter for pretrain.py and export.py")
    p.add_argument("--node", default="node", help="Node.js binary")
    p.add_argument("--out", default=None, help="JSON results (default: WORK/size_bench.json)")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bench = REPO / "dist" / "bench.js"
    if not bench.exists():
        raise SystemExit(f"size_bench: {bench} missing; run `npm run bench` once (it builds dist/bench.js)")
    rows = []
    for size in args.sizes.split(","):
        layers, width = parse_size(size)
        name = f"{layers}x{width}"
        run_dir, model_dir = work / name, work / f"model-{name}"
        ckpt = run_dir / "ckpt.pt"
        if not ckpt.exists():
            run([args.python, str(HERE / "pretrain.py"), "--objective", "mdm", "--attention", "context_only",
                 "--run-name", name, "--runs-dir", str(work), "--n-layer", str(layers), "--d-model", str(width),
                 "--n-head", str(max(1, width // 64)), "--d-ff", str(4 * width), "--max-seq-len", "256",
                 "--batch-size", "2", "--max-steps", "1", "--eval-every", "1", "--eval-examples", "2",
                 "--log-every", "1", "--threads", "1", "--corpus-dir", args.corpus_dir, "--tokenizer", args.tokenizer,
                 "--token-cache", str(work / "tokens")], stdout=subprocess.DEVNULL)
        if not (model_dir / "manifest.json").exists():
            run([args.python, str(HERE / "export.py"), "--ckpt", str(ckpt), "--out", str(model_dir), "--id",
                 f"size-{name}", "--corpus-dir", args.corpus_dir, "--no-card"], stdout=subprocess.DEVNULL)
        out_json = work / f"bench-{name}.json"
        t0 = time.time()
        run([args.node, str(bench), "--model", str(model_dir), "--quick", "--runs", str(args.runs),
             "--threads", str(args.threads), "--json", str(out_json)], stdout=subprocess.DEVNULL, cwd=REPO)
        data = json.loads(out_json.read_text())
        engine = next(r for r in data["engine"] if r["span"] == 32 and r["steps"] == 8)
        e2e = next((r for r in data.get("e2e", []) if r["span"] == 32 and r["steps"] == 8), {})
        files = {f.name: f.stat().st_size for f in model_dir.glob("*.onnx")}
        manifest = json.loads((model_dir / "manifest.json").read_text())
        params = json.loads(subprocess.run([args.python, "-c", (
            "import sys, torch; sys.path.insert(0, sys.argv[1]); import common; "
            "c = common.torch_load(sys.argv[2]); print(sum(v.numel() for v in c['model'].values()))"),
            str(HERE), str(ckpt)], capture_output=True, text=True, check=True).stdout)
        row = {"size": name, "layers": layers, "width": width, "params": params, "onnx_bytes": files,
               "engine_p50_ms": round(engine["p50"], 1), "engine_p95_ms": round(engine["p95"], 1),
               "e2e_p50_ms": round(e2e["p50"], 1) if e2e else None, "bench_seconds": round(time.time() - t0, 1),
               "facts": {k: manifest.get("facts", {}).get(k) for k in ("vocab_size", "attention")}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    print(f"\n| size | params | int8 pair MB | engine p50 ms | p95 ms | e2e p50 ms | p50 vs {base['size']} |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        mb = sum(r["onnx_bytes"].values()) / 1e6
        print(f"| {r['size']} | {r['params'] / 1e6:.1f}M | {mb:.1f} | {r['engine_p50_ms']} | {r['engine_p95_ms']} | "
              f"{r['e2e_p50_ms']} | {r['engine_p50_ms'] / base['engine_p50_ms']:.2f}x |")
    out = Path(args.out) if args.out else work / "size_bench.json"
    out.write_text(json.dumps({"rows": rows, "load": os.getloadavg()}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
