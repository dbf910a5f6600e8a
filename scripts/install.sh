#!/usr/bin/env bash
# One-command install for a fresh Debian machine (Node 20 present): system packages, npm dependencies, the Python
# environment of the training recipe, and the real VS Code (code-server) used by the end-to-end tests.
# Usage: bash scripts/install.sh            (add --no-e2e to skip code-server, --no-python to skip the recipe venv)
set -euo pipefail
cd "$(dirname "$0")/.."

want_e2e=1; want_python=1
for arg in "$@"; do
  case "$arg" in
    --no-e2e) want_e2e=0 ;;
    --no-python) want_python=0 ;;
    *) echo "unknown flag: $arg" >&2; exit 2 ;;
  esac
done

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
[ "$want_python" = 1 ] && packages+=(python3-torch python3-onnx python3-numpy python3-venv python3-pip libopenblas0-openmp libtcmalloc-minimal4)
[ "$want_e2e" = 1 ] && packages+=(chromium libkrb5-dev ripgrep)
if [ ${#packages[@]} -gt 0 ]; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# onnxruntime-node's install script would download CUDA binaries; the CPU/WebGPU binaries ship in the package.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund

if [ "$want_python" = 1 ] && [ ! -x .venv/bin/python ]; then
  # Debian's torch 1.13 (CPU), onnx and numpy, plus the Hugging Face tokenizers wheel from pip's configured index.
  /usr/bin/python3 -m venv --system-site-packages .venv
  # --retries 0: pip tries pypi.org first where only its local index is reachable; do not wait on retries.
  .venv/bin/pip install -q --retries 0 tokenizers
fi

if [ "$want_e2e" = 1 ]; then
  bash scripts/e2e-setup.sh
fi
echo "install: done"
