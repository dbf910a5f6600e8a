"""The ONNX export of a checkpoint, per models/README.md: graph tracing, int8 quantization, metadata, the parity
cases and their check with onnxruntime. Runs nothing on its own: scripts/export_onnx.py writes a model folder with
it, scripts/export_head.py (re)writes the K-best head of one, scripts/export_disc.py exports the discriminator.

ONNX graph: inputs input_ids [B,T] int64 and positions [B,P] int64, outputs logits [B,P,V] float32 and the K-best
head (kbest_head.py): top_logits [B,P,K] float32, top_ids [B,P,K] int32, log_z [B,P] float32 (B, T, P dynamic;
K = --top-k, clamped to the ids the sampler may commit), opset 17, metadata `unmask.*` with `unmask.top_k` and
`unmask.banned_ids` (every special id but end-of-span); the runtime reads and validates the metadata, and
manifest.json repeats it under "facts". `export_head DIR` writes the head in place on the denoiser graphs a folder's
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

import inspect
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from unmask import common, kbest_head, ort_session
from unmask.cached import ContextEncoder, SpanStep, cached_logits
from unmask.kbest_head import append_kbest_head

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
    torch.onnx.export(OnnxDenoiser(model).eval(), (ids, pos), str(path), opset_version=opset,
                      input_names=["input_ids", "positions"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "B", 1: "T"}, "positions": {0: "B", 1: "P"},
                                    "logits": {0: "B", 1: "P"}},
                      do_constant_folding=True, **exporter_kwargs())


def exporter_kwargs() -> dict:
    """torch.onnx.export's extra arguments: the TorchScript exporter (`dynamo=False` where torch 2.x has the flag),
    the path measured on torch 1.13 and 2.x alike. Every graph of the recipe (denoiser, cached pair,
    discriminator) is exported with it."""
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        return {"dynamo": False}
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
                      do_constant_folding=True, **exporter_kwargs())
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
                      do_constant_folding=True, **exporter_kwargs())


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
    facts = {
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
    if cfg.get("related_context"):  # trained with snippets of other files before its text (train_pretrain --p-related)
        facts["unmask.related_context"] = json.dumps(cfg["related_context"])
    return facts


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
# The model folder's graphs
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


