#!/usr/bin/env bash
# GPU benchmark of the reference models, one call on a lent GPU (under 8 minutes on an H100).
#
#   bash benchmarks/gpu/run.sh [ANNOTATION_DIR]
#
# 1. makes a QVHighlights-shaped synthetic dataset (the real train/val queries, videos, windows
#    and saliency; SlowFast 2304 + CLIP 512 video, 512-d text features) with `mrbench synth`;
# 2. trains TD-DETR and QD-DETR for 3 epochs each with the official QVHighlights presets
#    (bf16 autocast, the split resident on the GPU, validation scored every epoch);
# 3. prints seconds per epoch, training samples/s, evaluation seconds and peak GPU memory.
#
# ANNOTATION_DIR holds highlight_train_release.jsonl and highlight_val_release.jsonl (default:
# $MRBENCH_SHARED/data/qvhighlights, else ../shared/data/qvhighlights). ../shared does not travel
# to a lent machine: copy the two files into an ignored folder of the checkout and pass it.
# Environment: PYTHON (default python3), WORK (default /tmp/mrbench_gpu_bench), EXTRA_SETS
# (more `--set key=value` for both runs, e.g. "--set train.compile=true"); the summary is also
# written to $OUT/summary.txt (and each run's log to $OUT/<model>_log.jsonl) when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANN=${1:-${MRBENCH_SHARED:-../shared}/data/qvhighlights}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/mrbench_gpu_bench}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
for f in highlight_train_release.jsonl highlight_val_release.jsonl; do
  [[ -f "$ANN/$f" ]] || { echo "missing $ANN/$f" >&2; exit 2; }
done
rm -rf "$WORK"
mkdir -p "$WORK"
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print("torch", torch.__version__, torch.cuda.get_device_name())'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

start=$(date +%s)
"$PY" -m mrbench synth --out "$WORK/data" --dims qvh --quiet \
  --annotations "$ANN/highlight_train_release.jsonl" --annotations "$ANN/highlight_val_release.jsonl"
echo "synth: $(( $(date +%s) - start )) s, $(du -sh "$WORK/data" | cut -f1)"

for model in tddetr qd_detr; do
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$PY" -m mrbench train-reference "$model" --data "$WORK/data" --out "$WORK/$model" --preset qvhighlights \
    --set train.epochs=3 --set train.progress=false ${EXTRA_SETS:-}
  echo "$model: $(( $(date +%s) - start )) s wall (loading, 3 epochs, evaluation, checkpoints)"
done

"$PY" benchmarks/gpu/summarize.py "$WORK" tddetr qd_detr | tee "${OUT:-$WORK}/summary.txt"
if [[ -n "${OUT:-}" ]]; then
  for model in tddetr qd_detr; do cp "$WORK/$model/log.jsonl" "$OUT/${model}_log.jsonl"; done
fi
