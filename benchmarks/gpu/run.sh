#!/usr/bin/env bash
# GPU benchmark of the reference models, one call on a lent GPU (SUITE=precision: about 6 minutes on
# an H200; SUITE=models has not run yet: cap it with RUN_TIMEOUT to fit a 10-minute call).
#
#   bash benchmarks/gpu/run.sh [ANNOTATION_DIR]
#
# 1. makes a QVHighlights-shaped synthetic dataset (the real train/val queries, videos, windows
#    and saliency; SlowFast 2304 + CLIP 512 video, 512-d text features) with `mrbench synth`;
# 2. trains each run of RUNS with the official QVHighlights preset (PRESET) for EPOCHS epochs (the split
#    resident on the GPU, validation scored every epoch), each under a wall-clock cap;
# 3. prints seconds per epoch, training samples/s, evaluation seconds, peak GPU memory and the
#    validation mAP after every epoch (benchmarks/gpu/summarize.py).
#
# RUNS is a space-separated list of NAME=MODEL[,KEY=VALUE...]: NAME is the run folder, MODEL the
# registered model, the KEY=VALUEs extra `--set`s of that run. Two suites are built in:
#   SUITE=models     (default) every reference model (tddetr, qd_detr, moment_detr, cg_detr,
#                    bam_detr, snag) at the preset's precision (SnAG: video-centric batches of 32
#                    videos, EMA weights evaluated; its 5 warm-up epochs outlast EPOCHS=3, which
#                    times the epochs all the same);
#   SUITE=precision  tddetr in fp32 (TF32 matmuls, train.amp=off) against bf16 autocast
#                    (train.amp=bf16), same seed and data: the measurement behind the presets'
#                    default precision (docs/tddetr.md).
#
# ANNOTATION_DIR holds highlight_train_release.jsonl and highlight_val_release.jsonl (default:
# $MRBENCH_SHARED/data/qvhighlights, else ../shared/data/qvhighlights). ../shared does not travel
# to a lent machine: copy the two files into an ignored folder of the checkout and pass it.
# Environment: PYTHON (default python3), WORK (default /tmp/mrbench_gpu_bench), EPOCHS (default 3),
# PRESET (default qvhighlights),
# RUN_TIMEOUT (seconds per run, default 600; a capped run keeps the epochs it finished),
# EXTRA_SETS (more `--set key=value` for every run, e.g. "--set train.compile=true"); the summary
# is also written to $OUT/summary.txt (and each run's log to $OUT/<name>_log.jsonl) when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
ANN=${1:-${MRBENCH_SHARED:-../shared}/data/qvhighlights}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/mrbench_gpu_bench}
EPOCHS=${EPOCHS:-3}
PRESET=${PRESET:-qvhighlights}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
case "${SUITE:-models}" in
  models) DEFAULT_RUNS="tddetr=tddetr qd_detr=qd_detr moment_detr=moment_detr cg_detr=cg_detr bam_detr=bam_detr snag=snag" ;;
  precision) DEFAULT_RUNS="tddetr.bf16=tddetr,train.amp=bf16 tddetr.fp32=tddetr,train.amp=off" ;;
  *) echo "SUITE must be models or precision, got ${SUITE}" >&2; exit 2 ;;
esac
RUNS=${RUNS:-$DEFAULT_RUNS}
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

names=()
for run in $RUNS; do
  name=${run%%=*}
  IFS=, read -r -a parts <<< "${run#*=}"
  model=${parts[0]}
  sets=()
  for kv in "${parts[@]:1}"; do sets+=(--set "$kv"); done
  names+=("$name")
  start=$(date +%s)
  # shellcheck disable=SC2086
  timeout "$RUN_TIMEOUT" "$PY" -m mrbench train-reference "$model" --data "$WORK/data" --out "$WORK/$name" \
    --preset "$PRESET" --set train.epochs="$EPOCHS" --set train.progress=false ${sets[@]+"${sets[@]}"} \
    ${EXTRA_SETS:-} || echo "$name: stopped (exit $?), keeping the epochs it finished"
  echo "$name: $(( $(date +%s) - start )) s wall (loading, training, evaluation, checkpoints)"
  if [[ -n "${OUT:-}" && -f "$WORK/$name/log.jsonl" ]]; then cp "$WORK/$name/log.jsonl" "$OUT/${name}_log.jsonl"; fi
done

"$PY" benchmarks/gpu/summarize.py "$WORK" "${names[@]}" | tee "${OUT:-$WORK}/summary.txt"
