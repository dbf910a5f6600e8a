#!/usr/bin/env bash
# The whole recipe on a tiny config, end to end on CPU in a few minutes (part of CI): smoke corpus, small-vocabulary
# tokenizer, masked-diffusion and AR pretraining, export to runs/smoke/model/ (int8 + fp32 ONNX, parity fixture), a
# context_only model exported as the cached-context pair to runs/smoke/model-ctx/, a small eval, distillation and RL,
# the recipe's unit tests, then the GPU window's CPU dry run (gpu_window.sh). Run from anywhere:
#     bash models/recipe/run_cpu.sh
# Every stage runs from models/recipe/ as `python -m scripts.<stage>`; the paths below are relative to it.
# PYTHON picks the interpreter (default: the repository's .venv); THREADS the torch threads (default 1).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(cd ../.. && pwd)/.venv/bin/python}
THREADS=${THREADS:-1}
OUT=runs/smoke
DATA=data
rm -rf "$OUT"
mkdir -p "$OUT"

# 1. Data: the smoke corpus and its small-vocabulary tokenizer.
"$PY" -m scripts.data_corpus --smoke
"$PY" -m scripts.data_tokenizer --smoke

# 2. Train. A 2-layer, 64-wide model on 128-token canvases: enough to exercise every code path, not to learn much.
TINY=(--n-layer 2 --d-model 64 --n-head 2 --d-ff 256 --max-seq-len 128 --batch-size 8 --lr 3e-3 --warmup-steps 10
      --max-steps 60 --eval-every 30 --eval-examples 16 --log-every 10 --threads "$THREADS"
      --corpus-dir $DATA/corpus-smoke --tokenizer $DATA/tokenizer-smoke/tokenizer.json --runs-dir "$OUT")
"$PY" -m scripts.train_pretrain --objective mdm --run-name mdm "${TINY[@]}"
"$PY" -m scripts.train_pretrain --objective ar --run-name ar "${TINY[@]}" --schedule wsd
test -s "$OUT/ar/stable.pt"  # warmup-stable-decay leaves the peak-lr model a later session continues from

# How fast this CPU trains (fp32 and bf16 autocast, the --cpu-precision every stage takes), on the tiny size.
"$PY" -m scripts.train_bench --threads "$THREADS" --size 2x64 --max-seq-len 128 --batch-sizes 4 --steps 2 \
    --peak-seconds 0.2 --corpus-dir $DATA/corpus-smoke --tokenizer $DATA/tokenizer-smoke/tokenizer.json

# 3. Export.
"$PY" -m scripts.export_onnx --ckpt "$OUT/mdm/ckpt.pt" --out "$OUT/model" --id unmask-smoke --fp32 \
    --corpus-dir $DATA/corpus-smoke
# A context_only denoiser exports as the cached-context pair (context and step graphs, models/README.md); a short run
# (saving its optimizer state, so that path runs too) is enough to exercise the export and test/unit/parity.test.ts.
"$PY" -m scripts.train_pretrain --objective mdm --attention context_only --run-name mdm-ctx "${TINY[@]}" \
    --max-steps 30 --eval-every 30 --save-optimizer
"$PY" -m scripts.export_onnx --ckpt "$OUT/mdm-ctx/ckpt.pt" --out "$OUT/model-ctx" --id unmask-smoke-ctx --fp32 \
    --corpus-dir $DATA/corpus-smoke

# 4. Eval.
"$PY" -m scripts.eval_heldout --ckpt "$OUT/mdm/ckpt.pt" --ar-ckpt "$OUT/ar/ckpt.pt" \
    --test $DATA/corpus-smoke/test.jsonl.gz --corpus-dir $DATA/corpus-smoke --tasks-file "$OUT/tasks.jsonl" \
    --per-cell 2 --tasks 8 --steps 2,8 --strategies random,confidence --focus confidence:8 --nll-batches 1 \
    --batch-size 8 --threads "$THREADS" --out "$OUT/eval.json" --markdown "$OUT/eval.md"

# 5. Post-training: DiDi-Instruct distillation of the tiny teacher and the discriminator's export next to the student;
# coupled-GRPO on the tiny teacher, with the verifiable rewards.
"$PY" -m scripts.train_distill --teacher "$OUT/mdm/ckpt.pt" --run-name distill --runs-dir "$OUT" \
    --corpus-dir $DATA/corpus-smoke --device cpu --threads "$THREADS" --batch-size 4 --pool-size 16 --pool-batch 16 \
    --teacher-steps 8 --disc-warmup 2 --max-steps 6 --log-every 2 --eval-every 6 --eval-examples 16
"$PY" -m scripts.export_disc --run "$OUT/distill" --out "$OUT/student" --fp32 --corpus-dir $DATA/corpus-smoke
# Reward-guided sampling (issue 13 item 2) with that discriminator, next to the unguided rows, on the eval's tasks.
"$PY" -m scripts.eval_heldout --ckpt "$OUT/mdm/ckpt.pt" --disc "$OUT/distill/disc.pt" --corpus-dir $DATA/corpus-smoke \
    --tasks-file "$OUT/tasks.jsonl" --tasks 8 --steps 4 --strategies confidence --nll-batches 0 --batch-size 8 \
    --threads "$THREADS" --out "$OUT/eval-guided.json" --markdown "$OUT/eval-guided.md"
grep -q '"mdm-guided"' "$OUT/eval-guided.json"
"$PY" -m scripts.train_rl --init-from "$OUT/mdm/ckpt.pt" --run-name rl --runs-dir "$OUT" \
    --train $DATA/corpus-smoke/train.jsonl.gz --valid $DATA/corpus-smoke/valid.jsonl.gz --pool-per-cell 4 \
    --eval-per-cell 1 --max-tested 0 --max-span-tokens 16 --prompts-per-step 2 --group-size 4 --max-steps 2 \
    --eval-every 2 --threads "$THREADS" --test-workers 1 --device cpu

# The recipe's unit tests (tests/: eval metrics and AR-ness, distillation, RL rewards and losses, the reward stage's
# data, losses and a short train + export --disc on a tiny teacher, the cached-context export, the GPU window's
# parallel tokenising, carry and pack, token healing and the copy lookup against the TypeScript fixtures).
"$PY" -m unittest discover -q -s tests -t .

# The GPU window's CPU dry run (issue 12): the one command a lent GPU runs, on a tiny model in a 2-minute budget,
# every stage and every output checked (it exits non-zero when a check fails).
PYTHON="$PY" bash gpu_window.sh --device cpu --dry-run --work "$OUT/window" --out "$OUT/window/out"
# A second window continues the first one's denoiser (--mdm-init, a path relative to models/recipe/ as the docs give it):
# no stage 1, stage 2 from those weights, then the same export, eval, pack and checks.
PYTHON="$PY" bash gpu_window.sh --device cpu --dry-run --budget-minutes 1.5 --mdm-init "$OUT/window/weights/mdm.pt" \
    --work "$OUT/window-next" --out "$OUT/window-next/out"
grep -q "no stage 1; stage 2 continues" "$OUT/window-next/out/window.log"
echo "run_cpu.sh: done; model in models/recipe/$OUT/model, cached-context model in models/recipe/$OUT/model-ctx," \
     "student in models/recipe/$OUT/student"
