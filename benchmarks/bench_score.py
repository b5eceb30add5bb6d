"""Speed and memory of the scorer on real data: QVHighlights val (1550 queries, 10 windows and
75 saliency scores each) and Charades-STA test (3720 queries).

Prints, per case: in-process ``mrbench.score`` wall and CPU time (min and median of several
runs) with a phase breakdown, the whole ``mrbench score`` command (fresh Python process,
including start-up, imports and JSON parsing), and peak memory (tracemalloc in-process, max RSS
of the command). The reference evaluator (Moment-DETR standalone_eval) takes 11-14 s in-process
and about 16 s as a process for QVHighlights val on a 2-core machine
(shared/reference/metrics_and_data.md).

    python benchmarks/bench_score.py [--repeat 7] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "QVHighlights val": ("golden/qvh_val_preds.jsonl", "data/qvhighlights/highlight_val_release.jsonl"),
    "Charades-STA test": ("golden/charades_test_preds.jsonl", "data/charades_sta/charades_test_release.jsonl"),
}
REFERENCE_SECONDS = {"QVHighlights val": (11.0, 14.0)}


def timed(fn, repeat: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def command(pred: Path, gt: Path, out: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and max RSS (MiB) of one ``mrbench score`` process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mrbench", "score", str(pred), "--gt", str(gt), "--json", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mrbench score failed on {pred}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("MRBENCH_SHARED", REPO.parent / "shared")))
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import mrbench
    from mrbench.scoring import align_predictions, load_ground_truth, read_records
    from mrbench.scoring.core import compute_metrics
    from mrbench.scoring.groundtruth import _load_file

    def cold(pred: Path, gt: Path) -> None:
        _load_file.cache_clear()  # a first call: the ground-truth file is read too
        mrbench.score(pred, gt)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}; "
          f"seconds, min / median of {args.repeat} (CPU time is robust to other processes, wall is not)")
    for name, (pred_rel, gt_rel) in CASES.items():
        pred, gt = args.shared / pred_rel, args.shared / gt_rel
        if not pred.is_file() or not gt.is_file():
            print(f"{name}: skipped ({pred} or {gt} absent)")
            continue
        mrbench.score(pred, gt)  # warm the OS file cache
        walls, cpus = timed(lambda: cold(pred, gt), args.repeat)  # noqa: B023
        warm_walls, warm_cpus = timed(lambda: mrbench.score(pred, gt), args.repeat)  # noqa: B023
        truth = load_ground_truth(gt)
        records = read_records(pred)
        aligned = align_predictions(*records, truth)
        phases = {
            "read+validate GT": timed(lambda: _load_file.cache_clear() or load_ground_truth(gt), args.repeat)[1],  # noqa: B023
            "read predictions": timed(lambda: read_records(pred), args.repeat)[1],  # noqa: B023
            "validate+pack predictions": timed(lambda: align_predictions(*records, truth), args.repeat)[1],  # noqa: B023
            "metrics": timed(lambda: compute_metrics(aligned, truth), args.repeat)[1],  # noqa: B023
        }
        tracemalloc.start()
        cold(pred, gt)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        with tempfile.TemporaryDirectory() as tmp:
            runs = [command(pred, gt, Path(tmp) / "report.json") for _ in range(max(3, args.repeat // 2))]
        n_queries = len(truth)
        print(f"\n{name} ({n_queries} queries, {pred.stat().st_size / 1e6:.1f} MB of predictions)")
        print(f"  in-process mrbench.score   wall {min(walls):.3f} / {statistics.median(walls):.3f}   "
              f"cpu {min(cpus):.3f} / {statistics.median(cpus):.3f}")
        print(f"  ... GT file cached (repeat calls) wall {min(warm_walls):.3f} / {statistics.median(warm_walls):.3f}   "
              f"cpu {min(warm_cpus):.3f} / {statistics.median(warm_cpus):.3f}")
        print("    phases (CPU):")
        for phase, values in phases.items():
            print(f"      {phase:<25} {min(values):.3f} / {statistics.median(values):.3f}")
        wall_cmd = [r[0] for r in runs]
        cpu_cmd = [r[1] for r in runs]
        print(f"  whole command (subprocess) wall {min(wall_cmd):.3f} / {statistics.median(wall_cmd):.3f}   "
              f"cpu {min(cpu_cmd):.3f} / {statistics.median(cpu_cmd):.3f}")
        print(f"  peak memory: in-process {peak / 2**20:.1f} MiB (tracemalloc), "
              f"command max RSS {max(r[2] for r in runs):.1f} MiB")
        if name in REFERENCE_SECONDS:
            low, high = REFERENCE_SECONDS[name]
            wall, cpu = min(walls), min(cpus)
            print(f"  vs the reference's {low:.0f}-{high:.0f} s in-process: {low / wall:.0f}x-{high / wall:.0f}x by wall, "
                  f"{low / cpu:.0f}x-{high / cpu:.0f}x by CPU time")


if __name__ == "__main__":
    main()
