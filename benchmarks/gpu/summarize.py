"""Print the GPU benchmark table from the runs' ``log.jsonl`` files.

    python benchmarks/gpu/summarize.py WORK RUN [RUN ...]

Per run (a folder of WORK; ``tddetr.bf16`` is a run of model ``tddetr``): seconds per epoch (each
epoch, and the mean of the epochs after the first, which pays for warm-up), training samples/s,
evaluation seconds, peak GPU memory, and the validation MR-full-mAP after the last epoch, next to
the anchor timings of the original code on an H100; then the validation mAP after every epoch,
so that runs of one model (e.g. two precisions) can be compared epoch by epoch.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

#: the original releases on an H100 80GB, same input (issue 6): s/epoch, eval s
ANCHORS = {"tddetr": (119.5, 11.2), "qd_detr": (32.0, 8.3)}


def main(work: Path, runs: list[str]) -> None:
    curves = []
    print(f"{'run':<12} {'epoch s (each)':<24} {'steady s':>8} {'samples/s':>9} {'eval s':>7} "
          f"{'peak GB':>7} {'val mAP':>7} {'anchor s/ep':>11} {'speed-up':>8}")
    for run in runs:
        log = work / run / "log.jsonl"
        if not log.is_file():
            print(f"{run:<12} no log ({log})")
            continue
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        epochs = [e["epoch_s"] for e in entries]
        steady = statistics.mean(epochs[1:]) if len(epochs) > 1 else epochs[0]
        rate = statistics.mean(e["samples_per_s"] for e in entries[1:] or entries)
        evals = [e["eval_s"] for e in entries if "eval_s" in e]
        peak = max(e.get("peak_mem_gb", 0.0) for e in entries)
        metric = entries[-1].get("eval", {}).get("MR-full-mAP", float("nan"))
        anchor = ANCHORS.get(run.split(".")[0], (float("nan"), float("nan")))[0]
        each = ", ".join(f"{s:.1f}" for s in epochs)
        curve = ", ".join(f"{e.get('eval', {}).get('MR-full-mAP', float('nan')):.2f}" for e in entries)
        curves.append(f"{run:<12} {curve}")
        print(f"{run:<12} {each:<24} {steady:>8.2f} {rate:>9.0f} {statistics.mean(evals) if evals else float('nan'):>7.2f} "
              f"{peak:>7.2f} {metric:>7.2f} {anchor:>11.1f} {anchor / steady:>7.1f}x")
    if curves:
        print("\nvalidation MR-full-mAP after each epoch")
        print("\n".join(curves))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
