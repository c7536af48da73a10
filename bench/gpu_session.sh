#!/usr/bin/env bash
# Issue 9, item 5: train the committed MNIST runs on a lent GPU in ONE device call, then bring them back.
#
# Here, once (gzipped MNIST in .gpu/, git-ignored; it travels with the working tree, ~12 MB):
#     make gpu-data
# Then one call of the device tool (its budget is 15 minutes in all, a call at most 10):
#     run(command="bash bench/gpu_session.sh", carry=[".gpu"], timeout_s=590)
# Back under the reply's files_at: device.txt, gan.log, vae.log, and mnist-gan.tar.gz / mnist-vae.tar.gz (the
# run folders, evaluated). Unpack over checkpoints/ only if the numbers beat the committed runs.
#
# The device image has python3 with torch, torchvision, safetensors, scikit-learn, torchmetrics and tqdm
# (device/KINDS.md) and nothing can be fetched there, so nothing is installed. Budgets (seconds) are
# environment variables; the defaults leave about a minute of the call for start-up and copying.
# Locally, for a dry run on the CPU: PY=.venv/bin/python DEVICE=cpu GAN_S=20 VAE_S=10 EVAL_SAMPLES=500 \
#     OUT=/tmp/gpu-out bash bench/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
GAN_S=${GAN_S:-270}
VAE_S=${VAE_S:-120}
EVAL_SAMPLES=${EVAL_SAMPLES:-10000}
OUT=${OUT:-/tmp/gpu-out}
RUNS=$(mktemp -d)
DATA=$(mktemp -d)
mkdir -p "$OUT" "$DATA/MNIST/raw"
export PYTHONUNBUFFERED=1
quiet() { tr '\r' '\n' | grep -v -e 'step/s' -e 's/step' -e 'stage/s' -e 's/stage' -e '^ *$' || true; }  # no bars

[ -d .gpu/MNIST/raw ] || { echo "no .gpu/MNIST/raw: run 'make gpu-data' here and carry .gpu" >&2; exit 2; }
for f in .gpu/MNIST/raw/*.gz; do gunzip -c "$f" > "$DATA/MNIST/raw/$(basename "$f" .gz)"; done
{ nvidia-smi -L 2>/dev/null || true; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } \
    | tee "$OUT/device.txt"

# the committed recipe (150 epochs, cosine learning rate, the 20-mode latent mixture by default), with a time
# budget in place of the CPU's 110 minutes; the best epoch by the per-epoch check
"$PY" -m core train --model gan --epochs "${GAN_EPOCHS:-150}" --lr-schedule cosine --time-budget "$GAN_S" --keep-best \
    --device "$DEVICE" \
    --data-dir "$DATA" --quality checkpoints/mnist-classifier --out "$RUNS/mnist-gan" 2>&1 \
    | quiet | tail -60 > "$OUT/gan.log"
"$PY" -m core train --model vae --epochs 50 --lr-schedule cosine --time-budget "$VAE_S" --device "$DEVICE" \
    --data-dir "$DATA" --quality checkpoints/mnist-classifier --out "$RUNS/mnist-vae" 2>&1 \
    | quiet | tail -60 > "$OUT/vae.log"
for run in mnist-gan mnist-vae; do
    "$PY" -m core evaluate "$RUNS/$run" --classifier checkpoints/mnist-classifier --data-dir "$DATA" \
        --samples "$EVAL_SAMPLES" 2>&1 | quiet | tail -40 >> "$OUT/${run#mnist-}.log"
    tar -czf "$OUT/$run.tar.gz" -C "$RUNS" "$run"
done
ls -la "$OUT"
