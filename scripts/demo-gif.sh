#!/usr/bin/env bash
# Assembles the README's animated capture, docs/demo.gif, from the frames `node scripts/e2e.mjs --capture`
# saves in test-output/e2e/frames/ (real VS Code in code-server, the shipped model): typing, the ghost text, Tab,
# then the unmasking-order panel stepping through a joint fill. Needs ImageMagick (apt-get install imagemagick).
#
#   node esbuild.mjs && node scripts/e2e.mjs --capture --only 'ghost text|unmasking' && bash scripts/demo-gif.sh
set -euo pipefail
cd "$(dirname "$0")/.."
frames=test-output/e2e/frames
out=docs/demo.gif
width=${DEMO_GIF_WIDTH:-840}
[ -d "$frames" ] && ls "$frames"/*.png >/dev/null 2>&1 || { echo "demo-gif: no frames in $frames (run scripts/e2e.mjs --capture)"; exit 1; }
command -v convert >/dev/null && convert -version 2>/dev/null | grep -q ImageMagick || { echo "demo-gif: needs ImageMagick (apt-get install imagemagick)"; exit 1; }
mkdir -p "$(dirname "$out")"
args=()
last=$(ls "$frames"/*.png | tail -1)
for f in "$frames"/*.png; do
  # Hundredths of a second each frame stays: long on the ghost text and the last step, short while typing.
  case "$(basename "$f")" in
    *ghost-before*) d=100 ;;
    *ghost-typing*) d=40 ;;
    *ghost-shown*) d=300 ;;
    *ghost-accepted*) d=150 ;;
    *order-step*) d=70 ;;
    *) d=100 ;;
  esac
  [ "$f" = "$last" ] && d=300
  args+=(-delay "$d" "$f")
done
# The editor area only: the workbench's Explorer (the left 350 of 1400 pixels) says nothing about Unmask.
convert "${args[@]}" -crop 1050x900+350+0 +repage -resize "${width}x" -dither None -colors 96 -layers Optimize -loop 0 "$out"
echo "demo-gif: $out ($(ls "$frames"/*.png | wc -l) frames, $(du -k "$out" | cut -f1) KB)"
