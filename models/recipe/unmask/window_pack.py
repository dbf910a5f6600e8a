"""What comes back from a GPU window: the pack under $OUT within the device tool's return limits, its unpacking here,
and the checks every window output must pass (gpu_window.py uses all three; `gpu_window.py --check OUT` and
`--unpack DIR` are the commands).

The limits: at most 8 files of 16 MiB each, 64 MiB together, at most 2 folders down, names of letters, digits, '.',
'_' and '-'. The pack is one tar (members under `window/`) split into parts `OUT/pack/window.tar.NN` of at most
--part-mib, beside `OUT/summary.json` and `OUT/window.log`; `cat pack/window.tar.* | tar -x` unpacks it anywhere.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
import threading
from pathlib import Path


MiB = 1 << 20
# The return limits of the device tool: at most 8 files of 16 MiB each, 64 MiB together, 2 folders down.
MAX_FILES, MAX_FILE_MIB, MAX_TOTAL_MIB, MAX_DEPTH = 8, 16, 64, 2
NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Packer:
    """Writes OUT/pack/window.tar.NN (parts of --part-mib) and OUT/summary.json; rewritten whole on every call, so
    OUT always holds one consistent, complete pack (a kill leaves at most one stray .tmp part)."""

    def __init__(self, out: Path, part_mib: float, return_mib: float):
        self.out, self.part = out, int(part_mib * MiB)
        self.max_parts = min(MAX_FILES - 3, int(return_mib * MiB) // self.part)  # summary, log, one .tmp
        self.budget = self.max_parts * self.part
        self.lock = threading.Lock()
        (out / "pack").mkdir(parents=True, exist_ok=True)

    def write(self, items: list[tuple[str, Path]], summary: dict) -> dict:
        """items: (name inside the pack, file) in priority order; a name ending in '/' packs a whole folder, all
        or nothing. Returns what went in and what was left out."""
        with self.lock:
            chosen, left_out, total = [], [], 0
            for name, path in items:
                files = ([(name + f.relative_to(path).as_posix(), f) for f in sorted(path.rglob("*")) if f.is_file()]
                         if name.endswith("/") else [(name, path)])
                if not files or not all(f.exists() for _, f in files):
                    left_out.append({"name": name, "why": "missing"})
                    continue
                size = sum(f.stat().st_size + 1024 for _, f in files) + 1024  # tar headers and padding
                if total + size > self.budget:
                    left_out.append({"name": name, "why": f"{size / MiB:.1f} MiB does not fit the return limit",
                                     "bytes": size})
                    continue
                chosen += files
                total += size
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                for name, f in chosen:
                    tar.add(f, arcname=f"window/{name}")
            data = buf.getvalue()
            parts = [data[i:i + self.part] for i in range(0, len(data), self.part)] or [b""]
            pack = self.out / "pack"
            for i, chunk in enumerate(parts):
                _atomic_write(pack / f"window.tar.{i:02d}", chunk)
            for stale in pack.glob("window.tar.*"):
                if stale.suffix[1:].isdigit() and int(stale.suffix[1:]) >= len(parts):
                    stale.unlink()
            summary = {**summary, "pack": {"parts": len(parts), "bytes": len(data),
                                           "files": [n for n, _ in chosen], "left_out": left_out,
                                           "unpack": "cat pack/window.tar.* | tar -x  (or gpu_window.py --unpack)"}}
            _atomic_write(self.out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
            return summary["pack"]


def trim_log(out: Path, limit: int = MiB) -> None:
    """Keeps OUT/window.log under `limit` bytes (its head and tail)."""
    f = out / "window.log"
    if f.exists() and f.stat().st_size > limit:
        data = f.read_bytes()
        _atomic_write(f, data[: limit // 4] + b"\n[... cut ...]\n" + data[-(limit // 2):])


# ---------------------------------------------------------------------------------------------------------------
# Checking what comes back
# ---------------------------------------------------------------------------------------------------------------


def join_parts(root: Path) -> bytes:
    parts = sorted(root.rglob("window.tar.[0-9][0-9]"), key=lambda p: p.name)
    if not parts:
        raise FileNotFoundError(f"no window.tar.NN parts under {root}")
    return b"".join(p.read_bytes() for p in parts)


def unpack(root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(join_parts(root)), mode="r:") as tar:
        for m in tar.getmembers():
            if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                raise ValueError(f"refusing pack member {m.name!r}")
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return dest / "window"


def check_out(out: Path, need_model: bool = True, need_eval: bool = True, need_mdm: bool = True) -> list[str]:
    """Every check a window's $OUT must pass; returns the failures (empty: all good). With need_mdm False (a window
    stopped during stage 1), the stage 1 weights will do."""
    bad = []
    files = [f for f in out.rglob("*") if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    if len(files) > MAX_FILES:
        bad.append(f"{len(files)} files under {out} (at most {MAX_FILES})")
    if total > MAX_TOTAL_MIB * MiB:
        bad.append(f"{total / MiB:.1f} MiB under {out} (at most {MAX_TOTAL_MIB})")
    for f in files:
        rel = f.relative_to(out)
        if f.stat().st_size > MAX_FILE_MIB * MiB:
            bad.append(f"{rel}: {f.stat().st_size / MiB:.1f} MiB (at most {MAX_FILE_MIB})")
        if len(rel.parts) - 1 > MAX_DEPTH:
            bad.append(f"{rel}: more than {MAX_DEPTH} folders down")
        if not all(NAME_OK.match(part) for part in rel.parts):
            bad.append(f"{rel}: a name outside letters, digits, '.', '_' and '-'")
    if not (out / "summary.json").exists():
        bad.append("summary.json missing")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            root = unpack(out, Path(tmp))
        except Exception as e:  # noqa: BLE001
            return bad + [f"pack does not unpack: {e}"]
        w = root / "weights" / "mdm.pt"
        if not w.exists() and not need_mdm and (root / "weights" / "ar.pt").exists():
            w = root / "weights" / "ar.pt"
        if not w.exists():
            bad.append("weights/mdm.pt missing from the pack")
        else:
            try:
                from unmask import checkpoint
                from unmask.model import build_model

                ck = checkpoint.read(w)
                m = build_model(ck["config"])
                m.load_state_dict(ck["model"])
                dtypes = {str(v.dtype) for v in ck["model"].values() if v.is_floating_point()}
                if dtypes != {"torch.float16"}:
                    bad.append(f"weights/{w.name} holds {dtypes}, not float16 only")
                if w.name == "mdm.pt" and ck["config"].get("attention") != "context_only":
                    bad.append("weights/mdm.pt is not a context_only denoiser")
            except Exception as e:  # noqa: BLE001
                bad.append(f"weights/{w.name} does not load into the model: {e}")
        if need_model:
            model = root / "model"
            for name in ("manifest.json", "context.int8.onnx", "step.int8.onnx", "tokenizer.json", "parity.json"):
                if not (model / name).exists():
                    bad.append(f"model/{name} missing from the pack")
            for name in ("context.int8.onnx", "step.int8.onnx"):
                if (model / name).exists():
                    err = onnx_loads(model / name)
                    if err:
                        bad.append(f"model/{name}: {err}")
        if need_eval:
            e = root / "eval" / "eval.json"
            try:
                data = json.loads(e.read_text())
                if not data:
                    bad.append("eval/eval.json is empty")
            except Exception as ex:  # noqa: BLE001
                bad.append(f"eval/eval.json: {ex}")
    return bad


def onnx_loads(path: Path) -> str | None:
    """None when the graph loads in onnxruntime (or, without it, passes onnx's checker); else why not."""
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {o.name for o in sess.get_outputs()}
        meta = sess.get_modelmeta().custom_metadata_map
        if meta.get("unmask.graph") == "step" and not {"top_logits", "top_ids", "log_z"} <= names:
            return "the step graph has no K-best head"
        return None
    except ImportError:
        pass
    except Exception as e:  # noqa: BLE001
        return f"onnxruntime refuses it: {e}"
    try:
        import onnx

        onnx.checker.check_model(str(path))
        return None
    except Exception as e:  # noqa: BLE001
        return f"onnx refuses it: {e}"
