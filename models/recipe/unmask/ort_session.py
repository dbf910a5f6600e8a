"""onnxruntime sessions for the recipe's checks of exported graphs (export_onnx.py, test_cached.py): the Python
onnxruntime when it is installed, else onnxruntime-node (the runtime the extension uses) driven through
ort_serve.mjs, else none. Both answer `run(output_names, feeds) -> [numpy arrays]`, the Python API's call.

Not a stage of its own:
    sess = ort_session.open_session("models/unmask-coder-base/step.int8.onnx")  # None without either runtime
    logits, = sess.run(["logits"], {"span_ids": ..., ...})
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path
from typing import Optional, Union

import numpy as np

from unmask.paths import NODE_DIR, REPO_DIR as REPO

SERVER = NODE_DIR / "ort_serve.mjs"

# numpy dtypes <-> the tensor types ort_serve.mjs passes to onnxruntime-node.
TYPES = {np.dtype(np.int64): "int64", np.dtype(np.int32): "int32", np.dtype(np.float32): "float32",
         np.dtype(np.bool_): "bool"}
DTYPES = {name: dtype for dtype, name in TYPES.items()}


def python_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def node_available(node: str = "node") -> bool:
    return shutil.which(node) is not None and (REPO / "node_modules" / "onnxruntime-node").exists()


def open_session(model: Union[str, Path, bytes], node: str = "node"):
    """A session on an ONNX file (path) or a serialised model (bytes), or None when neither runtime is installed."""
    ort = python_onnxruntime()
    if ort is not None:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                    providers=["CPUExecutionProvider"])
    if node_available(node):
        return NodeSession(model, node)
    return None


def runtime_name(node: str = "node") -> Optional[str]:
    """Which runtime open_session uses, with its version, for reports; None when neither is installed."""
    ort = python_onnxruntime()
    if ort is not None:
        return ort.__version__
    if node_available(node):
        version = json.loads((REPO / "node_modules" / "onnxruntime-node" / "package.json").read_text())["version"]
        return f"{version} (onnxruntime-node)"
    return None


def _encode(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array)
    if array.dtype not in TYPES:
        raise TypeError(f"ort_session: unsupported input dtype {array.dtype}")
    return {"type": TYPES[array.dtype], "dims": list(array.shape),
            "data": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}


def _decode(tensor: dict) -> np.ndarray:
    dtype = DTYPES[tensor["type"]]
    raw = np.frombuffer(base64.b64decode(tensor["data"]), dtype=dtype.newbyteorder("<"))
    return raw.astype(dtype).reshape(tensor["dims"])  # a writable copy in native byte order


class NodeSession:
    """One model in one onnxruntime-node process (ort_serve.mjs), kept for every run of the session."""

    def __init__(self, model: Union[str, Path, bytes], node: str = "node"):
        self._tmp = None
        if isinstance(model, bytes):  # the server loads files: a serialised model goes through a temporary one
            fd, self._tmp = tempfile.mkstemp(suffix=".onnx")
            with os.fdopen(fd, "wb") as f:
                f.write(model)
            model = self._tmp
        # stderr goes to a file, not a pipe: warnings nobody reads would otherwise fill the pipe and block the server.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen([node, str(SERVER), str(Path(model).resolve())], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True, cwd=REPO)
        self._closer = weakref.finalize(self, NodeSession._close, self._proc, self._tmp, self._stderr)
        ready = self._proc.stdout.readline()
        if not ready:
            message = self._errors()
            self.close()
            raise RuntimeError(f"ort_session: onnxruntime-node could not load {model}: {message}")
        self.version = json.loads(ready)["version"]

    def _errors(self) -> str:
        self._proc.wait(timeout=30)
        self._stderr.seek(0)
        return self._stderr.read().strip()[-2000:]

    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        request = {"feeds": {name: _encode(np.asarray(v)) for name, v in feeds.items()},
                   "outputs": list(output_names)}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"ort_session: onnxruntime-node exited: {self._errors()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"ort_session: onnxruntime-node failed: {answer['error'][-2000:]}")
        return [_decode(answer["outputs"][name]) for name in output_names]

    def close(self) -> None:
        self._closer()

    @staticmethod
    def _close(proc: subprocess.Popen, tmp: Optional[str], stderr) -> None:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, stderr):
            if not stream.closed:
                stream.close()
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
