#!/usr/bin/env bash
# One lent GPU window, one command (issue 12): data with every core, stage 1 AR, stage 2 adaptation into the
# context_only denoiser, a checkpoint every minute packed as float16 weights under $OUT, int8 ONNX pair export, a
# quick held-out eval, everything that must come back packed and checked. The logic and every flag's help are in
# scripts/gpu_window.py (`cd models/recipe && python -m scripts.gpu_window --help`). Run from anywhere:
#     bash models/recipe/gpu_window.sh --device cuda --out "$OUT"      # on the device machine, 9 minutes
#     bash models/recipe/gpu_window.sh --device cpu --dry-run          # CPU dry run, tiny config, 2 minutes (CI)
# Relative paths in the arguments are read from models/recipe/ (the stages run there as `python -m scripts.X`).
# The device tool's exact call (its carry list, each stage's expected time) is in models/README.md.
# PYTHON picks the interpreter (default: the repository's .venv when there is one, else python3: the device
# machine's python3 is its torch 2.x CUDA build).
set -euo pipefail
cd "$(dirname "$0")"
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x ../../.venv/bin/python ]; then PY=$(cd ../.. && pwd)/.venv/bin/python
else PY=python3
fi
export PYTHONUNBUFFERED=1
exec "$PY" -m scripts.gpu_window --python "$PY" "$@"
