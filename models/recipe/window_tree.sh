#!/usr/bin/env bash
# Makes room for a GPU window's carry. The device tool sends the working tree (tracked files and untracked ones git
# does not ignore) plus the carried folder, 64 MiB in all; the shipped model (~33 MB) and the committed weights
# (~28 MB each) alone fill most of it, and a window reads neither. `hide` moves those tracked files out of the tree
# (to /tmp/unmask-window-hold) except the weights named after it, which travel (a second window continues them with
# --mdm-init); `restore` moves them back (`git checkout -- models` would restore them too). Both print what travels.
#     bash models/recipe/window_tree.sh hide [models/recipe/weights/<file>.pt ...]
#     bash models/recipe/window_tree.sh restore
# models/README.md, "A GPU window", has the whole procedure.
set -euo pipefail
cd "$(dirname "$0")/../.."
HOLD=/tmp/unmask-window-hold

size() {
  local tree carry
  # (tracked files moved out fail stat: they do not travel, so they do not count)
  tree=$( (git ls-files -z | xargs -0 stat -c %s 2>/dev/null || true) | awk '{s+=$1} END {printf "%.1f", s/1048576}')
  carry=$(du -sm models/recipe/data/window 2>/dev/null | cut -f1 || echo 0)
  echo "window_tree: tree ${tree} MiB + carry models/recipe/data/window ${carry:-0} MiB (the device tool takes 64 MiB)"
}

case "${1:-}" in
  hide)
    shift
    keep=" $* "
    mkdir -p "$HOLD"
    for f in models/*/*.onnx models/*/parity.json models/recipe/weights/*.pt; do
      [ -f "$f" ] || continue
      case "$keep" in *" $f "*) continue ;; esac
      mkdir -p "$HOLD/$(dirname "$f")"
      mv "$f" "$HOLD/$f"
    done
    size
    ;;
  restore)
    if [ -d "$HOLD" ]; then
      (cd "$HOLD" && find . -type f -print0) | while IFS= read -r -d '' f; do
        mkdir -p "$(dirname "$f")"
        mv "$HOLD/$f" "$f"
      done
      rm -rf "$HOLD"
    fi
    git status --short -- models | grep '^ D' && { echo "window_tree: files still missing (git checkout -- models)"; exit 1; }
    size
    ;;
  *)
    echo "usage: window_tree.sh hide [weights to keep...] | restore" >&2
    exit 2
    ;;
esac
