"""Exports a checkpoint to a shipped model folder per models/README.md: int8 ONNX (+ fp32 with --fp32), tokenizer.json,
manifest.json, parity.json and the model card's generated sections.

    python export.py --ckpt runs/cpu-mdm/ckpt.pt --out ../unmask-coder-base --id unmask-coder-base [--top-k 64]
    python export.py --add-head ../unmask-coder-base        # (re)write the K-best head of an exported folder's graphs

ONNX graph: inputs input_ids [B,T] int64 and positions [B,P] int64, outputs logits [B,P,V] float32 and the K-best
head (kbest_head.py): top_logits [B,P,K] float32, top_ids [B,P,K] int32, log_z [B,P] float32 (B, T, P dynamic;
K = --top-k, clamped to the ids the sampler may commit), opset 17, metadata `unmask.*` with `unmask.top_k` and
`unmask.banned_ids` (every special id but end-of-span); the runtime reads and validates the metadata, and
manifest.json repeats it under "facts". `--add-head DIR` writes the head in place on the denoiser graphs a folder's
manifest lists (the single graph or the step graph, fp32 and int8; the context graph has no vocabulary projection),
replacing the head a graph has (an older folder gets the current head; a second run writes the same bytes), takes the banned ids from each graph's `unmask.special_ids` and `unmask.eos_id`, and rewrites only the
files' sha256 and bytes and the two new facts in manifest.json (and the card's file table); it then checks the head
on parity.json as below.

int8 (`unmask.quantization = int8-dynamic-reduce-range`): every MatMul with a constant weight W [K,N] becomes
DynamicQuantizeLinear(x) -> MatMulInteger(xq, Wq, x_zero) -> Cast -> Mul(x_scale * w_scale[N]) (the pattern onnxruntime
fuses into MatMulIntegerToFloat), with symmetric per-column 7-bit weights in [-64, 64] so u8 x s8 pair sums cannot
overflow the int16 accumulators of AVX2 CPUs without VNNI. The tied vocabulary projection keeps a single fp32
embedding in the fp32 file (torch constant-folds a transposed copy; it is replaced by a Gemm with transB=1), and in
the int8 file becomes an int8 embedding table (per-row scales) for the Gather plus its transposed int8 copy for the
projection.

A checkpoint trained with `--attention context_only` exports as two graphs instead (the cached-context denoiser,
models/README.md; modules in cached.py): context.int8.onnx (input_ids [B,T] int64, span_mask [B,T] bool ->
past_key, past_value [L,B,H,T,Dh] float32), run once per request, and step.int8.onnx (span_ids [B,S] int64,
span_pos [B,S] int64, past_key, past_value [L,Bc,H,T,Dh], context_mask [Bc,T] bool, out_idx [B,P] int64 -> logits
[B,P,V] and the K-best head; Bc = B or 1), run per denoising step; context.onnx and step.onnx with --fp32. Both
carry the metadata below plus `unmask.graph` ("context" or "step") and `unmask.cache` (JSON: layout, layers, heads,
head_dim); manifest.json names them under "cached_context". The export refuses to write them unless the PyTorch
two-module computation matches the checkpoint's own forward on every parity case.

parity.json (checked by test/unit/parity.test.ts): {"format": 1, "tolerance": {...}, "cases": [{"name", "input_ids"
[B][T], "positions" [B][P], "holes" [[start, length], ...] (the span layout shared by the rows; positions lie in it),
"top1" [B][P] (argmax of the PyTorch fp32 logits at every position), "logits_at" [K] (indices into each row of
positions), "logits" [B][K][V] (PyTorch fp32 logits there)}]}. The logits are the checkpoint's full forward with the
holes as span_mask. An fp32 ONNX must match "logits" with relative L2 error < tolerance.fp32_rel_l2; an int8 ONNX
must agree with "top1" on at least tolerance.int8_top1 of the positions.

When onnxruntime is at hand (the Python package, else onnxruntime-node through ort_session.py), the export runs every
graph it wrote on the parity cases and reports the top-1 agreement and the logits' relative L2 error, and it fails
unless the K-best head matches the same run's logits: top_logits equal to the K largest allowed logits, top_ids their
ids (ties may differ only between equal logits), log_z the logsumexp within 1e-4 (relative).
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import common
import kbest_head
import ort_session
from cached import ContextEncoder, SpanStep, cached_logits
from kbest_head import append_kbest_head
from model import count_params

FORMAT = 1
QUANT_NAME = "int8-dynamic-reduce-range"
W_QMAX = 64  # 7-bit weights: 255 * 64 * 2 = 32640 fits an int16 accumulator


class OnnxDenoiser(torch.nn.Module):
    """The exported signature: (input_ids [B,T], positions [B,P]) -> logits [B,P,V]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, positions):
        return self.model(input_ids, positions)


def export_fp32(model, path: Path, opset: int) -> None:
    ids = torch.randint(16, model.config["vocab_size"], (2, 48))
    pos = torch.tensor([[3, 5, 7, 11], [0, 2, 40, 47]])
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: the path measured on torch 1.13 and 2.x alike
    torch.onnx.export(OnnxDenoiser(model).eval(), (ids, pos), str(path), opset_version=opset,
                      input_names=["input_ids", "positions"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "B", 1: "T"}, "positions": {0: "B", 1: "P"},
                                    "logits": {0: "B", 1: "P"}},
                      do_constant_folding=True, **kwargs)


def _exporter_kwargs() -> dict:
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        return {"dynamo": False}  # the TorchScript exporter, as export_fp32
    return {}


def export_cached_fp32(model, context_path: Path, step_path: Path, opset: int) -> None:
    """The context and step graphs of a context_only checkpoint (cached.py). The step graph is traced with a cache of
    batch 1 and two rows, the shape the runtime feeds; its Bc axis stays dynamic, so a cache of B rows runs too."""
    T, holes = 48, [(10, 8), (30, 4)]
    ids = torch.randint(16, model.config["vocab_size"], (1, T))
    span_pos = torch.tensor([p for s, n in holes for p in range(s, s + n)])
    span_mask = torch.zeros(1, T, dtype=torch.bool)
    span_mask[0, span_pos] = True
    encoder, step = ContextEncoder(model).eval(), SpanStep(model).eval()
    with torch.no_grad():
        past_key, past_value = encoder(ids, span_mask)
    torch.onnx.export(encoder, (ids, span_mask), str(context_path), opset_version=opset,
                      input_names=["input_ids", "span_mask"], output_names=["past_key", "past_value"],
                      dynamic_axes={"input_ids": {0: "B", 1: "T"}, "span_mask": {0: "B", 1: "T"},
                                    "past_key": {1: "B", 3: "T"}, "past_value": {1: "B", 3: "T"}},
                      do_constant_folding=True, **_exporter_kwargs())
    S = len(span_pos)
    span_ids = torch.randint(16, model.config["vocab_size"], (2, S))
    out_idx = torch.tensor([[0, 3, 9], [1, 2, 11]])
    torch.onnx.export(step, (span_ids, span_pos.expand(2, S), past_key, past_value, ~span_mask, out_idx),
                      str(step_path), opset_version=opset,
                      input_names=["span_ids", "span_pos", "past_key", "past_value", "context_mask", "out_idx"],
                      output_names=["logits"],
                      dynamic_axes={"span_ids": {0: "B", 1: "S"}, "span_pos": {0: "B", 1: "S"},
                                    "past_key": {1: "Bc", 3: "T"}, "past_value": {1: "Bc", 3: "T"},
                                    "context_mask": {0: "Bc", 1: "T"}, "out_idx": {0: "B", 1: "P"},
                                    "logits": {0: "B", 1: "P"}},
                      do_constant_folding=True, **_exporter_kwargs())


def name_cache_dims(graph, cfg: dict) -> None:
    """Writes the cache outputs' shape [L, B, H, T, Dh] into the context graph (the exporter leaves H and Dh as
    generated symbols), so onnxruntime reports the fixed sizes and the runtime can check them against the step graph."""
    H = cfg["n_head"]
    sizes = [cfg["n_layer"], "B", H, "T", cfg["d_model"] // H]
    for output in graph.output:
        if output.name in ("past_key", "past_value"):
            for dim, size in zip(output.type.tensor_type.shape.dim, sizes):
                if isinstance(size, int):
                    dim.dim_value = size
                else:
                    dim.dim_param = size


def cache_metadata(cfg: dict, graph: str) -> dict[str, str]:
    """The metadata keys a cached-context graph adds to metadata(): which graph it is and the cache's shape."""
    return {"unmask.graph": graph,
            "unmask.cache": json.dumps({"layout": "[L,B,H,T,Dh]", "layers": cfg["n_layer"], "heads": cfg["n_head"],
                                        "head_dim": cfg["d_model"] // cfg["n_head"]})}


def initializers(graph) -> dict:
    return {i.name: i for i in graph.initializer}


def untie_transposed_embedding(graph, embed_name: str) -> None:
    """Replaces the MatMul on a constant-folded transposed copy of the embedding by Gemm(h, E, transB=1)."""
    inits = initializers(graph)
    emb = numpy_helper.to_array(inits[embed_name])
    for i, node in enumerate(list(graph.node)):
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        w = inits[node.input[1]]
        if list(w.dims) != [emb.shape[1], emb.shape[0]]:
            continue
        if not np.array_equal(numpy_helper.to_array(w), emb.T):
            continue
        gemm = helper.make_node("Gemm", [node.input[0], embed_name], list(node.output), name=node.name + "_tied",
                                transB=1)
        graph.node.remove(node)
        graph.node.insert(i, gemm)
        graph.initializer.remove(w)
        return
    raise RuntimeError("export: the vocabulary projection (a MatMul on the transposed embedding) was not found")


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w [K,N] float -> (int8 [K,N] in [-64,64], float32 scales [N]): symmetric, one scale per output column."""
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / W_QMAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -W_QMAX, W_QMAX).astype(np.int8)
    return q, scale


def quantized_matmul(x: str, out: str, wq_name: str, ws_name: str, prefix: str) -> list:
    """Nodes computing out = x @ dequant(Wq) via DynamicQuantizeLinear + MatMulInteger (fusable by onnxruntime)."""
    xq, xs, xz = f"{prefix}_xq", f"{prefix}_xs", f"{prefix}_xz"
    return [
        helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz], name=f"{prefix}_quant"),
        helper.make_node("MatMulInteger", [xq, wq_name, xz], [f"{prefix}_i32"], name=f"{prefix}_matmul"),
        helper.make_node("Cast", [f"{prefix}_i32"], [f"{prefix}_f32"], name=f"{prefix}_cast", to=TensorProto.FLOAT),
        helper.make_node("Mul", [xs, ws_name], [f"{prefix}_scale"], name=f"{prefix}_scale_mul"),
        helper.make_node("Mul", [f"{prefix}_f32", f"{prefix}_scale"], [out], name=f"{prefix}_out"),
    ]


def quantize_int8(model_proto, embed_name: str):
    """Returns a copy of the fp32 model with int8 weights (see the module docstring)."""
    m = onnx.ModelProto()
    m.CopyFrom(model_proto)
    g = m.graph
    inits = initializers(g)
    new_nodes, new_inits, drop = [], [], set()
    emb = numpy_helper.to_array(inits[embed_name])  # [V, D]
    for k, node in enumerate(g.node):
        p = f"q{k}"
        if node.op_type == "MatMul" and node.input[1] in inits and len(inits[node.input[1]].dims) == 2:
            wq, ws = quantize_columns(numpy_helper.to_array(inits[node.input[1]]))
            new_inits += [numpy_helper.from_array(wq, f"{p}_wq"), numpy_helper.from_array(ws, f"{p}_ws")]
            new_nodes += quantized_matmul(node.input[0], node.output[0], f"{p}_wq", f"{p}_ws", p)
            drop.add(node.input[1])
        elif node.op_type == "Gemm" and node.input[1] == embed_name:
            # Tied projection: h [N, D] @ E^T [D, V]; per-column scales of E^T = per-row scales of E.
            wq, ws = quantize_columns(emb.T)
            new_inits += [numpy_helper.from_array(wq, "embed_t_q"), numpy_helper.from_array(ws, "embed_t_s")]
            new_nodes += quantized_matmul(node.input[0], node.output[0], "embed_t_q", "embed_t_s", p)
        elif node.op_type == "Gather" and node.input[0] == embed_name:
            # Embedding lookup from an int8 table with one scale per row (full 8 bits: no accumulator here).
            amax = np.abs(emb).max(axis=1, keepdims=True)
            scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)  # [V, 1]
            q = np.clip(np.rint(emb / scale), -127, 127).astype(np.int8)
            new_inits += [numpy_helper.from_array(q, "embed_q"), numpy_helper.from_array(scale, "embed_s")]
            ids = node.input[1]
            new_nodes += [
                helper.make_node("Gather", ["embed_q", ids], [f"{p}_rows"], name=f"{p}_gather"),
                helper.make_node("Cast", [f"{p}_rows"], [f"{p}_rowsf"], name=f"{p}_cast", to=TensorProto.FLOAT),
                helper.make_node("Gather", ["embed_s", ids], [f"{p}_rs"], name=f"{p}_gather_scale"),
                helper.make_node("Mul", [f"{p}_rowsf", f"{p}_rs"], list(node.output), name=f"{p}_dequant"),
            ]
        else:
            new_nodes.append(node)
    drop.add(embed_name)
    del g.node[:]
    g.node.extend(new_nodes)
    kept = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    if any(embed_name in n.input for n in g.node):
        raise RuntimeError("export: the fp32 embedding is still used after quantization")
    return m


def metadata(ckpt: dict, quantization: str, data_summary: dict) -> dict[str, str]:
    cfg, sp = ckpt["config"], ckpt["special"]
    a = ckpt.get("args", {})
    training = {
        "kind": cfg["kind"], "n_layer": cfg["n_layer"], "d_model": cfg["d_model"], "n_head": cfg["n_head"],
        "d_ff": cfg["d_ff"], "vocab_size": cfg["vocab_size"], "max_seq_len": cfg["max_seq_len"],
        "attention": cfg["attention"], "rope_base": cfg["rope_base"], "params": ckpt.get("params"),
        "steps": ckpt["step"], "train_tokens": ckpt["train_tokens"], "train_seconds": round(ckpt["train_seconds"], 1),
        "batch_size": a.get("batch_size"), "lr": a.get("lr"), "device": ckpt.get("device"),
        "threads": a.get("threads"), "world": ckpt.get("world"), "torch": ckpt.get("torch"),
        "valid": ckpt.get("metrics"), "data": data_summary,
    }
    return {
        "unmask.format": str(FORMAT),
        "unmask.kind": cfg["kind"],
        "unmask.vocab_size": str(cfg["vocab_size"]),
        "unmask.max_seq_len": str(cfg["max_seq_len"]),
        "unmask.mask_id": str(sp["mask"]),
        "unmask.eos_id": str(sp["eos"]),
        "unmask.pad_id": str(sp["pad"]),
        "unmask.file_sep_id": str(sp["file"]),
        "unmask.lang_ids": json.dumps(common.lang_ids(sp)),
        "unmask.special_ids": json.dumps(sp),
        "unmask.span_buckets": json.dumps(list(cfg.get("span_buckets", common.SPAN_BUCKETS))),
        "unmask.attention": cfg["attention"],
        "unmask.quantization": quantization,
        "unmask.config": json.dumps(training),
    }


def set_metadata(model_proto, meta: dict[str, str]) -> None:
    del model_proto.metadata_props[:]
    for k, v in meta.items():
        model_proto.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    model_proto.producer_name = "unmask-recipe"


def corpus_sources(sources_path: Path, corpus_dir: Path) -> list[dict]:
    """The entries of sources.json that the corpus in corpus_dir was built from (its stats.json lists them; a smoke
    corpus holds only a few)."""
    if not sources_path.exists():
        return []
    src = json.loads(sources_path.read_text())["sources"]
    stats = Path(corpus_dir) / "stats.json"
    if stats.exists():
        names = set(json.loads(stats.read_text()).get("packages") or [s["name"] for s in src])
        src = [s for s in src if s["name"] in names]
    return src


def data_summary(src: list[dict]) -> dict:
    """A short summary of the sources: per split, packages, files, bytes, licences."""
    out = {}
    for s in src:
        # Training packages' files are split by file into train and valid; test packages are held out whole.
        key = {"train": "train + valid", "test": "test (held out)"}.get(s.get("split", "train"), s.get("split"))
        e = out.setdefault(key, {"packages": 0, "files": 0, "bytes": 0, "licences": {}})
        e["packages"] += 1
        e["files"] += int(s.get("files") or 0)
        e["bytes"] += int(s.get("bytes") or 0)
        lic = s.get("licence") or s.get("licence_declared") or "unknown"
        e["licences"][lic] = e["licences"].get(lic, 0) + 1
    return out


def sources_table(src: list[dict]) -> list[dict]:
    return [{k: s.get(k) for k in ("name", "version", "registry", "split", "licence", "files", "bytes")} for s in src]


# ---------------------------------------------------------------------------------------------------------------
# Parity fixture
# ---------------------------------------------------------------------------------------------------------------


def parity_cases(model, ckpt, tokenizer_path, corpus_dir, n_logits: int, seed: int = 7) -> list[dict]:
    """Infill canvases from the held-out test split: different T, one or two spans, a batch of two rows."""
    sp = ckpt["special"]
    try:
        stream = common.token_stream("test", corpus_dir, tokenizer_path)
        rng = np.random.default_rng(seed)

        def text_window(n):
            f = int(rng.integers(0, len(stream.starts)))
            s, L = int(stream.starts[f]) + 1, int(stream.lengths[f]) - 1
            off = s + int(rng.integers(0, max(1, L - n)))
            return int(stream.langs[f]), np.asarray(stream.tokens[off:off + n], np.int64)
    except FileNotFoundError:  # no corpus at hand: random ids still pin down the arithmetic
        rng = np.random.default_rng(seed)

        def text_window(n):
            return sp["lang:python"], rng.integers(16, ckpt["config"]["vocab_size"], n)

    def canvas(T, spans, committed=0):
        """A canvas with its spans masked; with committed = k, every k-th span position keeps its text token, as after
        some denoising steps (it is still a span position, but no longer a requested one)."""
        lang, w = text_window(T - 1)
        ids = np.concatenate([[lang], w])
        ids = np.pad(ids, (0, T - len(ids)), constant_values=sp["eos"])
        for start, length in spans:
            keep = ids[start:start + length].copy()
            ids[start:start + length] = sp["mask"]
            if committed:
                ids[start:start + length:committed] = keep[::committed]
        return ids

    # About 300 masked positions in all, so the int8 top-1 agreement is measured to within about a percent.
    specs = [("spans of 64 and 32, T=256", 1, 256, [(60, 64), (170, 32)], 0),
             ("two spans of 16 and 8, T=100", 1, 100, [(30, 16), (70, 8)], 0),
             ("batch of two canvases sharing T=64, span of 16", 2, 64, [(24, 16)], 0),
             ("batch of four canvases sharing T=192, span of 32", 4, 192, [(100, 32)], 0),
             ("span of 32 with every third position committed, T=128", 1, 128, [(50, 32)], 3)]
    cases = []
    for name, B, T, spans, committed in specs:
        ids = np.stack([canvas(T, spans, committed) for _ in range(B)])  # [B, T]
        pos = np.stack([np.flatnonzero(row == sp["mask"]) for row in ids])  # [B, P] (same span layout per row)
        span_mask = np.zeros((B, T), bool)
        for start, length in spans:
            span_mask[:, start:start + length] = True
        with torch.no_grad():
            logits = model(torch.from_numpy(ids), torch.from_numpy(pos),
                           span_mask=torch.from_numpy(span_mask)).float().numpy()  # [B, P, V]
        at = np.linspace(0, pos.shape[1] - 1, n_logits).round().astype(int)
        cases.append({"name": name, "input_ids": ids.tolist(), "positions": pos.tolist(),
                      "holes": [list(h) for h in spans], "top1": logits.argmax(-1).tolist(), "logits_at": at.tolist(),
                      "logits": [[[float(f"{v:.7g}") for v in logits[b, k]] for k in at] for b in range(B)]})
    return cases


def check_cached_modules(model, cases: list[dict], tolerance: float = 1e-5) -> float:
    """The worst relative L2 error of the PyTorch two-module computation (cached.py) against the checkpoint's own
    forward on the parity cases; raises when it exceeds `tolerance` (the graphs would compute something else)."""
    worst = 0.0
    for c in cases:
        with torch.no_grad():
            got = cached_logits(model, torch.tensor(c["input_ids"]), torch.tensor(c["positions"]),
                                c["holes"])[:, c["logits_at"], :].numpy()
        ref = np.asarray(c["logits"], np.float32)
        worst = max(worst, float(np.linalg.norm(got - ref) / np.linalg.norm(ref)))
    if worst > tolerance:
        raise RuntimeError(f"export: the cached-context modules differ from the model's forward (relative L2 {worst:.2e})")
    return worst


def run_cached(c: dict, context, step, outputs=("logits",)) -> list[np.ndarray]:
    """Runs one parity case through onnxruntime sessions of the context and step graphs, as the runtime does: the
    context graph once with batch 1 when every row shares row 0's context (else once per row), then the step graph
    over the span positions. Returns the step graph's `outputs` (logits [B, P, V] by default)."""
    ids, positions = np.asarray(c["input_ids"], np.int64), np.asarray(c["positions"], np.int64)
    B, T = ids.shape
    span_pos = np.concatenate([np.arange(s, s + n) for s, n in c["holes"]])
    span_mask = np.zeros(T, bool)
    span_mask[span_pos] = True
    shared = bool((ids[:, ~span_mask] == ids[:1, ~span_mask]).all())
    context_ids = ids[:1] if shared else ids
    masks = np.broadcast_to(span_mask, context_ids.shape).copy()
    past_key, past_value = context.run(["past_key", "past_value"], {"input_ids": context_ids, "span_mask": masks})
    index_in_span = np.full(T, -1, np.int64)
    index_in_span[span_pos] = np.arange(len(span_pos))
    return step.run(list(outputs), {"span_ids": ids[:, span_pos],
                                    "span_pos": np.broadcast_to(span_pos, (B, len(span_pos))).copy(),
                                    "past_key": past_key, "past_value": past_value, "context_mask": ~masks,
                                    "out_idx": index_in_span[positions]})


def check_with_onnxruntime(paths: dict, cases: list[dict], banned) -> dict:
    """Self-check when onnxruntime is at hand (ort_session.py: the Python package, else onnxruntime-node): per model
    (a path or serialised bytes, or a (context, step) pair of them for a cached-context denoiser), top-1 agreement
    with the fixture and the worst relative L2 error of the stored logits, reported; and the K-best head against the
    same run's logits with `banned` ids left out (kbest_head.check_head), which raises on any mismatch."""
    runtime = ort_session.runtime_name()
    if runtime is None:
        return {"skipped": "neither the python onnxruntime nor onnxruntime-node is installed"}
    report = {"onnxruntime": runtime}
    names = ["logits", *kbest_head.OUTPUTS]
    for label, path in paths.items():
        if isinstance(path, tuple):
            context, step = ort_session.open_session(path[0]), ort_session.open_session(path[1])

            def run(c):
                return run_cached(c, context, step, names)
        else:
            sess = ort_session.open_session(path)

            def run(c):
                return sess.run(names, {"input_ids": np.asarray(c["input_ids"], np.int64),
                                        "positions": np.asarray(c["positions"], np.int64)})
        agree = total = 0
        worst = 0.0
        head = {"top_logits_max_abs_diff": 0.0, "ids_agreement": 1.0, "log_z_max_rel_err": 0.0}
        for c in cases:
            out, top_logits, top_ids, log_z = run(c)
            agree += int((out.argmax(-1) == np.asarray(c["top1"])).sum())
            total += out.shape[0] * out.shape[1]
            ref = np.asarray(c["logits"], np.float32)
            got = out[:, c["logits_at"], :]
            worst = max(worst, float(np.linalg.norm(got - ref) / np.linalg.norm(ref)))
            h = kbest_head.check_head(out, top_logits, top_ids, log_z, banned, f"export: {label}, case {c['name']!r}")
            head = {"top_logits_max_abs_diff": max(head["top_logits_max_abs_diff"], h["top_logits_max_abs_diff"]),
                    "ids_agreement": min(head["ids_agreement"], h["ids_agreement"]),
                    "log_z_max_rel_err": max(head["log_z_max_rel_err"], h["log_z_max_rel_err"])}
        report[label] = {"top1_agreement": agree / total, "rel_l2": worst, "head": head}
    return report


# ---------------------------------------------------------------------------------------------------------------
# Model card
# ---------------------------------------------------------------------------------------------------------------


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
         f"Trained on {ckpt.get('world', 1)} x {device} for {hours:.2f} hours."),
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
        *([f"- Attention `context_only`: context tokens attend only to context, span tokens to everything, so the "
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
        "canvases. Context never masked. See `models/recipe/pretrain.py`.",
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
        *([f"| earlier runs | this run continued (`--init-from`) "
           + "; ".join(f"`{s['args'].get('run_name')}`: {s['step']} steps, {s['train_tokens']:,} tokens, "
                       f"{s['train_seconds']:.0f} s, peak lr {s['args'].get('lr')}, {stage_metric(s)}"
                       for s in stages[:-1])
           + f"; in all {total_tokens:,} tokens in {total_seconds:.0f} s |"] if len(stages) > 1 else []),
        "",
        "Reproduce:",
        "",
        "```sh",
        *[f"python models/recipe/pretrain.py {' '.join(cli_args(s['args']))}" for s in stages],
        f"python models/recipe/export.py --ckpt <run>/ckpt.pt --out models/{model_id} --id {model_id}",
        "```",
        "",
        "## Data",
        "",
        "Real source code fetched by exact name@version from Debian and the npm registry (`models/recipe/sources.json`, "
        "built by `models/recipe/corpus.py`): generated, minified, vendored and duplicate files dropped; whole "
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
    evaluation = "## Evaluation\n\nNot yet evaluated: `models/recipe/eval.py` writes this section.\n"
    if existing and "## Evaluation" in existing:
        evaluation = existing[existing.index("## Evaluation"):]
    return card + "\n" + evaluation.rstrip() + "\n"


def cli_args(a: dict) -> list[str]:
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


# ---------------------------------------------------------------------------------------------------------------


# The role of each file a model folder may hold, as manifest.json lists it.
ROLES = {"model.int8.onnx": "denoiser-int8", "model.onnx": "denoiser-fp32",
         "context.int8.onnx": "context-int8", "context.onnx": "context-fp32",
         "step.int8.onnx": "step-int8", "step.onnx": "step-fp32",
         "tokenizer.json": "tokenizer", "tokenizer_config.json": "tokenizer-config", "parity.json": "parity-fixture"}


def export_graph(model, ckpt: dict, out: Path, opset: int, summary: dict, top_k: int) -> dict:
    """The single denoiser graph of a full-attention checkpoint, with the K-best head: {file name: checked ONNX
    model}, fp32 and int8."""
    tmp = out / "model.fp32.tmp.onnx"
    export_fp32(model, tmp, opset)
    fp32 = onnx.load(str(tmp))
    tmp.unlink()
    untie_transposed_embedding(fp32.graph, "model.embed.weight")
    int8 = quantize_int8(fp32, "model.embed.weight")
    set_metadata(fp32, metadata(ckpt, "none", summary))
    set_metadata(int8, metadata(ckpt, QUANT_NAME, summary))
    for proto in (fp32, int8):
        append_kbest_head(proto, top_k, common.banned_ids(ckpt["special"]))
    onnx.checker.check_model(fp32)
    onnx.checker.check_model(int8)
    return {"model.int8.onnx": int8, "model.onnx": fp32}


def export_cached_graphs(model, ckpt: dict, out: Path, opset: int, summary: dict, top_k: int) -> dict:
    """The context and step graphs of a context_only checkpoint: {file name: checked ONNX model}, fp32 and int8.
    The context graph has no vocabulary projection, so only the step graph unties the transposed embedding and ends
    in the K-best head."""
    context_tmp, step_tmp = out / "context.fp32.tmp.onnx", out / "step.fp32.tmp.onnx"
    export_cached_fp32(model, context_tmp, step_tmp, opset)
    graphs = {}
    for graph, tmp in (("context", context_tmp), ("step", step_tmp)):
        fp32 = onnx.load(str(tmp))
        tmp.unlink()
        if graph == "step":
            untie_transposed_embedding(fp32.graph, "model.embed.weight")
        else:
            name_cache_dims(fp32.graph, ckpt["config"])
        int8 = quantize_int8(fp32, "model.embed.weight")
        set_metadata(fp32, {**metadata(ckpt, "none", summary), **cache_metadata(ckpt["config"], graph)})
        set_metadata(int8, {**metadata(ckpt, QUANT_NAME, summary), **cache_metadata(ckpt["config"], graph)})
        if graph == "step":
            for proto in (fp32, int8):
                append_kbest_head(proto, top_k, common.banned_ids(ckpt["special"]))
        onnx.checker.check_model(fp32)
        onnx.checker.check_model(int8)
        graphs[f"{graph}.int8.onnx"], graphs[f"{graph}.onnx"] = int8, fp32
    return graphs


# The manifest roles of the graphs that end in the vocabulary projection, and so in the K-best head.
HEAD_ROLES = ("denoiser-int8", "denoiser-fp32", "step-int8", "step-fp32")


def update_card_files(card: Path, files: list[dict]) -> None:
    """Rewrites the bytes and sha256 of `files` in the model card's file table (model_card's rows), if it has them."""
    if not card.exists():
        return
    text = card.read_text()
    for f in files:
        row = re.compile(rf"^\| `{re.escape(f['name'])}` \| \d+ \| `[0-9a-f]{{16}}\.\.\.` \|$", re.M)
        text = row.sub(f"| `{f['name']}` | {f['bytes']} | `{f['sha256'][:16]}...` |", text)
    card.write_text(text)


def add_head(folder: Path, top_k: int) -> dict:
    """`--add-head`: (re)writes the K-best head in place on the denoiser graphs that `folder`'s manifest lists (roles
    HEAD_ROLES), with the banned ids of each graph's own metadata and K = top_k clamped to its vocabulary; a head a
    graph already has is replaced (strip_kbest_head), so an older folder gets the current head and a second run writes
    the same bytes. Rewrites those files' sha256 and bytes and the two head facts in manifest.json, nothing else, and
    the card's file table; then checks the head on parity.json (check_with_onnxruntime). Returns what it did."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    targets = [f for f in manifest["files"] if f["role"] in HEAD_ROLES]
    if not targets:
        raise SystemExit(f"export: {manifest_path} lists no denoiser graph (roles {', '.join(HEAD_ROLES)})")
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
            raise SystemExit(f"export: the graphs of {folder} disagree on the head: {head_facts} vs {facts}")
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
    p.add_argument("--ckpt", default=None, help="checkpoint written by pretrain.py (required unless --add-head)")
    p.add_argument("--out", default=None,
                   help="model folder to write (created; files in it are replaced; required unless --add-head)")
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
    p.add_argument("--add-head", metavar="DIR", default=None,
                   help="instead of exporting: write the K-best head in place on the denoiser graphs of the exported "
                        "model folder DIR (replacing the head they have), update its manifest.json, check it, and exit")
    args = p.parse_args(argv)
    if args.add_head:
        print(json.dumps(add_head(Path(args.add_head), args.top_k), indent=1))
        return
    if not args.ckpt or not args.out:
        p.error("--ckpt and --out are required (or --add-head DIR)")

    torch.manual_seed(0)
    model, ckpt = common.load_checkpoint(args.ckpt)
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
                       "see models/recipe/export.py for the fields.",
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
