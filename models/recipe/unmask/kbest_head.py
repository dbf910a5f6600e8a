"""The K-best head of a denoiser graph (models/README.md, "K-best head"): ONNX graph surgery that ends the graph's
`logits` output [B,P,V] in top_logits [B,P,K] float32, top_ids [B,P,K] int32 and log_z [B,P] float32, and the check
of those outputs against the logits of the same run.

Not a stage of its own: scripts/export_onnx.py appends the head to every denoiser graph it writes, and
scripts/export_head.py adds it to an existing model folder in place (from models/recipe/):
    python -m scripts.export_head ../unmask-coder-base
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUTPUTS = ("top_logits", "top_ids", "log_z")
META_KEYS = ("unmask.top_k", "unmask.banned_ids")
PREFIX = "kbest_"  # every node, initializer and intermediate tensor of the head
LOG_Z_RTOL = 1e-4  # log_z against a float64 logsumexp of the same logits, relative to max(1, |log_z|)


def opset_version(model_proto) -> int:
    """The model's opset of the default ONNX domain."""
    for entry in model_proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("kbest_head: the model imports no default-domain opset")


def clamp_top_k(k: int, vocab_size: int, n_banned: int) -> int:
    """K for a vocabulary: at most the ids the head may list, so a list is never padded with banned ids."""
    allowed = vocab_size - n_banned
    if k < 1 or allowed < 1:
        raise ValueError(f"kbest_head: top-k {k} with {allowed} allowed ids of {vocab_size}")
    return min(k, allowed)


def has_head(model_proto) -> bool:
    names = {o.name for o in model_proto.graph.output}
    return any(n in names for n in OUTPUTS) or any(p.key in META_KEYS for p in model_proto.metadata_props)


def banned_from_metadata(meta: dict[str, str]) -> list[int]:
    """The head's banned ids from a graph's own metadata: every id of `unmask.special_ids` but `unmask.eos_id`."""
    eos = int(meta["unmask.eos_id"])
    return sorted({int(v) for v in json.loads(meta["unmask.special_ids"]).values()} - {eos})


def _set_meta(model_proto, key: str, value: str) -> None:
    for p in model_proto.metadata_props:
        if p.key == key:
            p.value = value
            return
    model_proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def strip_kbest_head(model_proto) -> bool:
    """Removes a K-best head (its `kbest_*` nodes and initializers, the three outputs and the two metadata keys) in
    place, leaving the graph as it was before append_kbest_head. Returns whether there was one."""
    g = model_proto.graph
    if not has_head(model_proto):
        return False
    kept_nodes = [n for n in g.node if not n.name.startswith(PREFIX)]
    kept_init = [i for i in g.initializer if not i.name.startswith(PREFIX)]
    kept_out = [o for o in g.output if o.name not in OUTPUTS]
    kept_meta = [p for p in model_proto.metadata_props if p.key not in META_KEYS]
    for field, kept in ((g.node, kept_nodes), (g.initializer, kept_init), (g.output, kept_out),
                        (model_proto.metadata_props, kept_meta)):
        del field[:]
        field.extend(kept)
    return True


def append_kbest_head(model_proto, k: int, banned_ids) -> None:
    """Appends the head after the `logits` output, in place: logits + bias (-inf at banned ids) -> TopK (largest,
    sorted: ties to the lower id, as the ONNX spec orders them) -> top_logits and int64 ids -> Cast -> top_ids, and
    log_z = m + log(sum(exp(masked - m))) with m the first top logit (the row's maximum). `logits` stays an output.
    Writes `unmask.top_k` and `unmask.banned_ids` (ascending JSON list) into the metadata. Refuses a graph that
    already has a head (strip_kbest_head removes one).

    Why not ReduceLogSumExp: onnxruntime's CPU kernel for it is a scalar loop; measured on the shipped step graph
    (2-core CPU, S=32, P=16) it took 11 of 44 ms a step at 16 rows, while Sub, Exp and ReduceSum are vectorised and
    reuse the maximum TopK already found: a step got 22-27% faster at 1, 4 and 16 rows."""
    g = model_proto.graph
    if has_head(model_proto):
        raise ValueError("kbest_head: the graph already has a K-best head")
    logits = next((o for o in g.output if o.name == "logits"), None)
    if logits is None:
        raise ValueError("kbest_head: the graph has no `logits` output")
    dims = logits.type.tensor_type.shape.dim
    if len(dims) != 3 or not dims[2].dim_value:
        raise ValueError("kbest_head: `logits` is not [B, P, V] with a fixed V")
    V = int(dims[2].dim_value)
    banned = sorted({int(i) for i in banned_ids})
    if any(not 0 <= i < V for i in banned):
        raise ValueError(f"kbest_head: banned ids {banned} outside the vocabulary of {V}")
    if not 1 <= k <= V - len(banned):
        raise ValueError(f"kbest_head: top-k {k} is not in [1, {V - len(banned)}] (clamp_top_k)")
    if opset_version(model_proto) < 13:  # ReduceSum and Squeeze take their axes as an input from opset 13 on
        raise ValueError(f"kbest_head: opset {opset_version(model_proto)} is older than 13")
    taken = {i.name for i in g.initializer} | {o for n in g.node for o in n.output} | {i.name for i in g.input}
    clash = sorted(n for n in taken if n.startswith(PREFIX) or n in OUTPUTS)
    if clash:
        raise ValueError(f"kbest_head: the graph already names {clash}")

    bias = np.zeros(V, np.float32)
    bias[banned] = -np.inf
    g.initializer.extend([numpy_helper.from_array(bias, "kbest_bias"),
                          numpy_helper.from_array(np.array([k], np.int64), "kbest_k"),
                          numpy_helper.from_array(np.array([0], np.int64), "kbest_first"),
                          numpy_helper.from_array(np.array([1], np.int64), "kbest_second"),
                          numpy_helper.from_array(np.array([-1], np.int64), "kbest_axes")])

    def node(op, inputs, output, **attrs):  # named after its first output, under the head's prefix
        outputs = [output] if isinstance(output, str) else output
        name = outputs[0] if outputs[0].startswith(PREFIX) else PREFIX + outputs[0]
        return helper.make_node(op, inputs, outputs, name=name, **attrs)

    nodes = []
    nodes.append(node("Add", ["logits", "kbest_bias"], "kbest_masked"))  # [B, P, V], -inf at banned ids
    nodes.append(node("TopK", ["kbest_masked", "kbest_k"], ["top_logits", "kbest_ids64"], axis=-1, largest=1,
                      sorted=1))  # [B, P, K] descending
    nodes.append(node("Cast", ["kbest_ids64"], "top_ids", to=TensorProto.INT32))
    # log_z [B, P]: the max-shifted logsumexp; the maximum is the first top logit, [B, P, 1].
    nodes.append(node("Slice", ["top_logits", "kbest_first", "kbest_second", "kbest_axes"], "kbest_max"))
    nodes.append(node("Sub", ["kbest_masked", "kbest_max"], "kbest_shifted"))
    nodes.append(node("Exp", ["kbest_shifted"], "kbest_exp"))
    nodes.append(node("ReduceSum", ["kbest_exp", "kbest_axes"], "kbest_sum", keepdims=1))
    nodes.append(node("Log", ["kbest_sum"], "kbest_log_sum"))
    nodes.append(node("Add", ["kbest_log_sum", "kbest_max"], "kbest_log_z_keepdims"))
    nodes.append(node("Squeeze", ["kbest_log_z_keepdims", "kbest_axes"], "log_z"))
    g.node.extend(nodes)

    def dim(d):  # the logits output's own B and P: a name, a fixed size or unknown
        return d.dim_param or (d.dim_value if d.dim_value else None)

    B, P = dim(dims[0]), dim(dims[1])
    g.output.extend([helper.make_tensor_value_info("top_logits", TensorProto.FLOAT, [B, P, k]),
                     helper.make_tensor_value_info("top_ids", TensorProto.INT32, [B, P, k]),
                     helper.make_tensor_value_info("log_z", TensorProto.FLOAT, [B, P])])
    _set_meta(model_proto, "unmask.top_k", str(k))
    _set_meta(model_proto, "unmask.banned_ids", json.dumps(banned))


def reference(logits: np.ndarray, k: int, banned) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the head computes, in numpy: logits [..., V] -> (top values [..., K], their ids [..., K] with ties to the
    lower id, float64 logsumexp [...]), banned ids excluded."""
    masked = logits.astype(np.float32).copy()
    masked[..., list(banned)] = -np.inf
    ids = np.argsort(-masked, axis=-1, kind="stable")[..., :k]
    values = np.take_along_axis(masked, ids, -1)
    wide = masked.astype(np.float64)
    top = wide.max(-1, keepdims=True)
    log_z = (top + np.log(np.exp(wide - top).sum(-1, keepdims=True)))[..., 0]
    return values, ids, log_z


def check_head(logits: np.ndarray, top_logits: np.ndarray, top_ids: np.ndarray, log_z: np.ndarray, banned,
               where: str) -> dict:
    """Checks a run's head outputs against its own `logits` output; raises with `where` on the first failure.

    top_logits must equal the K largest masked logits exactly (the head adds 0 to them) and each must be the logit of
    its id, the ids distinct and allowed; ids may differ from the reference's only between equal logits. log_z must
    be the logsumexp within LOG_Z_RTOL. Returns the measured errors."""
    k = top_logits.shape[-1]
    if top_ids.dtype != np.int32 or top_logits.dtype != np.float32 or log_z.dtype != np.float32:
        raise RuntimeError(f"{where}: head dtypes {top_logits.dtype}, {top_ids.dtype}, {log_z.dtype}; expected "
                           "float32, int32, float32")
    if top_ids.shape != top_logits.shape or log_z.shape != logits.shape[:-1] or top_ids.shape[:-1] != log_z.shape:
        raise RuntimeError(f"{where}: head shapes {top_logits.shape}, {top_ids.shape}, {log_z.shape} for logits "
                           f"{logits.shape}")
    values, ids, ref_log_z = reference(logits, k, banned)
    ids64 = top_ids.astype(np.int64)
    if ((ids64 < 0) | (ids64 >= logits.shape[-1])).any():
        raise RuntimeError(f"{where}: top_ids outside the vocabulary")
    if np.isin(ids64, list(banned)).any():
        raise RuntimeError(f"{where}: top_ids lists a banned id")
    if (np.sort(ids64, -1)[..., 1:] == np.sort(ids64, -1)[..., :-1]).any():
        raise RuntimeError(f"{where}: top_ids lists an id twice at a position")
    gathered = np.take_along_axis(logits, ids64, -1)
    value_diff = float(np.abs(top_logits.astype(np.float64) - values).max())
    own_diff = float(np.abs(top_logits.astype(np.float64) - gathered).max())
    if value_diff != 0.0 or own_diff != 0.0:
        raise RuntimeError(f"{where}: top_logits differ from the top-{k} of the logits by {value_diff:g} and from "
                           f"the logits of top_ids by {own_diff:g}")
    rel = float((np.abs(log_z.astype(np.float64) - ref_log_z) / np.maximum(1.0, np.abs(ref_log_z))).max())
    if not rel <= LOG_Z_RTOL:
        raise RuntimeError(f"{where}: log_z differs from the logsumexp of the logits by {rel:.2e} (relative)")
    return {"top_logits_max_abs_diff": max(value_diff, own_diff), "ids_agreement": float((ids64 == ids).mean()),
            "log_z_max_rel_err": rel}
