#!/usr/bin/env bash
# The real run on NVIDIA GPUs: torch 2.x, CUDA, bf16 autocast, DDP over every local GPU with torchrun (the same
# stages as run_cpu.sh, run from models/recipe/ as `python -m scripts.<stage>`; paths below are relative to it).
# Trains the denoiser and the AR baseline for $MINUTES each, exports the denoiser to models/$ID/ (int8 + fp32 ONNX)
# and writes the eval table into its model card.
#     bash models/recipe/run_gpu.sh                      # the default 4 x 256 model (the CPU latency budget), 30 min
#     SIZE=large MINUTES=60 bash models/recipe/run_gpu.sh  # 8 x 512 for GPU users
# A lent window of about ten minutes (the device tool) runs gpu_window.sh instead: the AR-first recipe in one budgeted
# command whose outputs come back packed (models/README.md, "A GPU window").
# Environment: PYTHON (a torch 2.x CUDA interpreter with tokenizers, onnx, numpy; e.g. `python3 -m venv .venv-gpu &&
# .venv-gpu/bin/pip install torch tokenizers onnx numpy`), NGPU (default: all visible), SIZE (base | large), MINUTES,
# ID (model folder name), WORKERS (batch-building processes per GPU).
# Data: the corpus and tokenizer come from the CPU machine when the GPU machine cannot reach the registries:
# copy models/recipe/data/corpus/corpus.tar (it holds {train,valid,test}.jsonl.gz, < 64 MiB) and
# models/recipe/data/tokenizer/; this script unpacks the tar when the splits are missing.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(cd ../.. && pwd)/.venv/bin/python}
NGPU=${NGPU:-$(nvidia-smi -L | wc -l)}
SIZE=${SIZE:-base}
MINUTES=${MINUTES:-30}
WORKERS=${WORKERS:-4}
DATA=data

case "$SIZE" in
  # Batch is per GPU: 64 canvases x 256 tokens = 16k tokens per GPU per step.
  base)  CFG=(--n-layer 4 --d-model 256 --n-head 4 --d-ff 1024 --batch-size 64 --lr 2e-3); ID=${ID:-unmask-coder-base-gpu} ;;
  large) CFG=(--n-layer 8 --d-model 512 --n-head 8 --d-ff 2048 --batch-size 64 --lr 1e-3); ID=${ID:-unmask-coder-large} ;;
  *) echo "run_gpu.sh: SIZE must be base or large, not '$SIZE'" >&2; exit 2 ;;
esac
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'run_gpu.sh: torch sees no CUDA device')"

if [ ! -f $DATA/corpus/train.jsonl.gz ]; then
  if [ -f $DATA/corpus/corpus.tar ]; then tar -xf $DATA/corpus/corpus.tar -C $DATA/corpus; else "$PY" -m scripts.data_corpus; fi
fi
[ -f $DATA/tokenizer/tokenizer.json ] || "$PY" -m scripts.data_tokenizer
# Tokenise every split once here, with every core (data_tokens writes common.token_stream's cache), so the torchrun
# ranks do not race to build the same cache.
"$PY" -m scripts.data_tokens

COMMON=("${CFG[@]}" --max-seq-len 256 --warmup-steps 500 --max-minutes "$MINUTES" --eval-every 1000
        --eval-examples 1024 --log-every 50 --workers "$WORKERS" --compile --device cuda)
TORCHRUN=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$NGPU")
"${TORCHRUN[@]}" -m scripts.train_pretrain --objective mdm --run-name "gpu-mdm-$SIZE" "${COMMON[@]}"
"${TORCHRUN[@]}" -m scripts.train_pretrain --objective ar --run-name "gpu-ar-$SIZE" "${COMMON[@]}"

"$PY" -m scripts.export_onnx --ckpt "runs/gpu-mdm-$SIZE/ckpt.pt" --out "../$ID" --id "$ID" --fp32
"$PY" -m scripts.eval_heldout --ckpt "runs/gpu-mdm-$SIZE/ckpt.pt" --ar-ckpt "runs/gpu-ar-$SIZE/ckpt.pt" --device cuda \
    --card "../$ID/MODEL_CARD.md"
# DiDi-Instruct: distil the teacher into an 8-step student (<= 25 minutes on one H100), export student + discriminator.
"$PY" -m scripts.train_distill --teacher "runs/gpu-mdm-$SIZE/ckpt.pt" --run-name "gpu-distill-$SIZE" --device cuda
"$PY" -m scripts.export_disc --run "runs/gpu-distill-$SIZE" --out "../$ID-student" --fp32
# coupled-GRPO on the student, its de-coupled ablation on the same task pool, and RL on the teacher for comparison.
"$PY" -m scripts.train_rl --init-from "runs/gpu-distill-$SIZE/student.pt" --run-name "gpu-rl-$SIZE" --device cuda \
    --max-minutes 20
"$PY" -m scripts.train_rl --init-from "runs/gpu-distill-$SIZE/student.pt" --run-name "gpu-rl-$SIZE-dec" --decoupled \
    --pool "runs/gpu-rl-$SIZE/pool.jsonl" --device cuda --max-minutes 20
"$PY" -m scripts.train_rl --init-from "runs/gpu-mdm-$SIZE/ckpt.pt" --run-name "gpu-rl-$SIZE-teacher" \
    --pool "runs/gpu-rl-$SIZE/pool.jsonl" --device cuda --max-minutes 20
echo "run_gpu.sh: done; teacher in models/$ID, student in models/$ID-student"
