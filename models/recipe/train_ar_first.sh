#!/usr/bin/env bash
# The AR-first recipe on this machine's CPU (issue 11): stage 1 trains a causal model with fill-in-the-middle (PSM and
# SPM, loss on every token), stage 2 adapts its weights into the context_only denoiser the extension runs (same
# parameters; attention becomes context_only, each position predicts its own token). Run in the background:
#     setsid nohup bash models/recipe/train_ar_first.sh > models/recipe/runs/ar-first.log 2>&1 &
# The stages run from models/recipe/ (`python -m scripts.train_pretrain`): paths below are relative to it.
# Environment (all optional):
#   NAME          run-name prefix (default cpu-arfirst); stage 1 goes to runs/$NAME-ar, stage 2 to runs/$NAME-mdm
#   AR_MINUTES    stage 1 wall minutes (default 85); 0 skips stage 1 (then AR_INIT must name the AR checkpoint)
#   MDM_MINUTES   stage 2 wall minutes (default 40); 0 skips stage 2 (a session that only grows the causal model)
#   AR_INIT       checkpoint stage 1 continues from (a later session resumes from the committed weights, e.g.
#                 weights/<name>-ar.pt); empty: stage 1 starts from scratch
#   MDM_INIT      checkpoint stage 2 continues from (a committed denoiser); empty: stage 2 starts from stage 1's model
#   THREADS       torch threads (default 2: both cores)
#   SIZE          base (4 x 256, default: the CPU lineage up to session 10) or window (6 x 384: the GPU window's size,
#                 the shipped model since session 11)
#   MDM_LR        stage 2's peak learning rate (default 1e-3)
#   P_REST        stage 2's share of rest-of-line spans (default 0.3; 0: none, as before session 8)
#   P_RELATED     stage 2's share of infill canvases with snippets of other files of the package before the text
#                 (--p-related; the exported model then declares unmask.related_context and the extension fills it)
#   AR_SCHEDULE   stage 1's lr schedule (default wsd: warmup-stable-decay; it also writes runs/$NAME-ar/stable.pt, the
#                 model at the peak lr that the next session continues from: AR_INIT=weights/<name>-ar-stable.pt)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(cd ../.. && pwd)/.venv/bin/python}
NAME=${NAME:-cpu-arfirst}
AR_MINUTES=${AR_MINUTES:-85}
MDM_MINUTES=${MDM_MINUTES:-40}
THREADS=${THREADS:-2}
AR_SCHEDULE=${AR_SCHEDULE:-wsd}
# tcmalloc: glibc's malloc hands the step's large tensors (the [B,T,V] logits are 134 MB) back to the kernel and
# faults them in again every step; measured here, 20 AR steps took 74 CPU-s with glibc (21 s of it in the kernel)
# and 39 CPU-s with tcmalloc (2 s in the kernel); jemalloc was slower than glibc.
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
[ -e "$TCMALLOC" ] && export LD_PRELOAD=$TCMALLOC
# Stage 2's share of rest-of-line spans (--p-rest): session 8 adapted the same causal model twice at equal CPU time
# (~36 min), without and with 0.3: held-out weights-only first-line exact 4.2% -> 5.5%, degenerate 10.8% -> 8.8%.
P_REST=${P_REST:-0.3}
P_RELATED=${P_RELATED:-0}
case "${SIZE:-base}" in
  base) SIZE=(--n-layer 4 --d-model 256 --n-head 4 --d-ff 1024 --max-seq-len 256 --batch-size 16) ;;
  window) SIZE=(--n-layer 6 --d-model 384 --n-head 6 --d-ff 1536 --max-seq-len 256 --batch-size 16) ;;
  *) echo "train_ar_first.sh: SIZE must be base or window" >&2; exit 2 ;;
esac

AR_CKPT=${AR_INIT:-}
if [ "$AR_MINUTES" != 0 ]; then
  "$PY" -m scripts.train_pretrain --objective ar --run-name "$NAME-ar" "${SIZE[@]}" --threads "$THREADS" --max-minutes "$AR_MINUTES" \
      --lr 2e-3 --warmup-steps 100 --schedule "$AR_SCHEDULE" --fim-rate 0.5 --spm-rate 0.5 --p-line 0.5 ${AR_INIT:+--init-from "$AR_INIT"}
  AR_CKPT=runs/$NAME-ar/ckpt.pt
fi
if [ "$MDM_MINUTES" != 0 ]; then
  "$PY" -m scripts.train_pretrain --objective mdm --attention context_only --run-name "$NAME-mdm" "${SIZE[@]}" --threads "$THREADS" \
      --max-minutes "$MDM_MINUTES" --lr "${MDM_LR:-1e-3}" --warmup-steps 100 --p-rest "$P_REST" --p-related "$P_RELATED" --init-from "${MDM_INIT:-$AR_CKPT}"
fi
