#!/usr/bin/env bash
# The GPU validity grid (experiments/validity-gpu.yaml) in one call on a lent GPU machine:
# SHARDS processes of `mrbench experiment run --shard K/SHARDS` side by side on the one GPU, each
# capped at LIMIT seconds; experiment.json, the finished cells and the failed cells' tracebacks come
# back as $OUT/results.tar.gz (unpack it and run `mrbench experiment report` on the folder).
#
#   SHARDS=12 LIMIT=480 bash benchmarks/gpu/experiment.sh [SPEC]
#
# A lent machine has torch but may lack some of mrbench's small dependencies and cannot download:
# wheels unpacked into DEPS/py<major><minor>/ (default tmp/devicedeps, an ignored folder to carry)
# go first on PYTHONPATH, e.g. for d in 310 311 312 313; do pip download --only-binary=:all:
# --no-deps --python-version $d --platform manylinux2014_x86_64 -d w$d orjson pyyaml tqdm click; done
# and unzip each wheel into tmp/devicedeps/py$d. The script stops at once if an import fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
SPEC=${1:-experiments/validity-gpu.yaml}
SHARDS=${SHARDS:-12}
LIMIT=${LIMIT:-480}
WORK=${WORK:-/tmp/mrbench_validity_gpu}
OUT=${OUT:-$WORK/out}
PY=${PYTHON:-python3}
DEPS=${DEPS:-tmp/devicedeps}/py$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
export PYTHONPATH="$PWD${DEPS:+:$PWD/$DEPS}${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK" "$OUT"
"$PY" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA")'
"$PY" -c 'import mrbench.experiment.runner, mrbench.mask_detector, reference_models, pyarrow, scipy' || {
  echo "missing dependencies (see the header of this script)"; exit 3; }
start=$(date +%s)
for k in $(seq 1 "$SHARDS"); do
  timeout "$LIMIT" "$PY" -m mrbench experiment run "$SPEC" --out "$WORK/run" --shard "$k/$SHARDS" --quiet \
    > "$WORK/shard$k.log" 2>&1 &
done
wait
echo "grid: $(( $(date +%s) - start )) s wall, $(find "$WORK/run/cells" -name cell.json 2>/dev/null | wc -l) cells done"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
# one archive: a lent machine sends back only a few files, none deep in folders
tar czf "$OUT/results.tar.gz" -C "$WORK/run" experiment.json cells $( [[ -d "$WORK/run/errors" ]] && echo errors )
tail -q -n 2 "$WORK"/shard*.log
grep -h FAILED "$WORK"/shard*.log | cut -c1-200 || true
