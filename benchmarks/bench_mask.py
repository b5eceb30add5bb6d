"""Masking throughput versus a plain copy of the same files, and peak memory.

Builds a QVHighlights-shaped feature tree (default 500 videos x 75 clips x SlowFast 2304 +
CLIP 512, float32, one query per video with 1-3 windows) in a temporary directory on the disk
under test, then times:

- ``copy``: ``shutil.copyfile`` of every video feature file into a new directory (same disk);
- ``mask --workers N``: the whole masking job (plan, read, mask, write with fsync, sha256,
  annotations, manifest) in a fresh process, for each N in ``--workers``.

Throughput is source feature bytes / wall seconds (the masked variant writes the same amount).
Both run with a warm page cache (the tree was just written) and start after ``os.sync()`` (no
backlog of dirty pages to throttle the writer); each figure is the best of ``--repeats``
rounds, copy and masking alternating. CPU seconds (user + system, workers included) are printed too:
on a busy machine they are the steadier figure. Peak memory: ``ru_maxrss`` of the masking
process and of its largest worker, and the tracemalloc peak of one extra, untimed in-process
(``--workers 1``) run.

    python benchmarks/bench_mask.py [--videos 500] [--workers 1,2] [--strategy noise] [--repeats 3]
                                    [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mrbench.data.features import FeatureStore
from mrbench.data.schema import Query, write_annotations

TYPES = {"slowfast_features": 2304, "clip_features": 512}

_CHILD = r"""
import json, resource, sys, time, tracemalloc
from mrbench.masking import build_variant, source_from_file
annotations, features, out, workers, strategy, trace = sys.argv[1:7]
if trace == "1":
    tracemalloc.start()
def cpu():
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage), usage
source = source_from_file(annotations, 2.0, features, split="val")
start, cpu_start = time.perf_counter(), cpu()[0]
build_variant(source, out, strategy=strategy, workers=int(workers))
seconds = time.perf_counter() - start
cpu_end, usage = cpu()
print(json.dumps({"seconds": seconds, "cpu": cpu_end - cpu_start,
                  "traced_peak": tracemalloc.get_traced_memory()[1] if trace == "1" else None,
                  "rss_self_kb": usage[0].ru_maxrss, "rss_workers_kb": usage[1].ru_maxrss}))
"""


def build_tree(root: Path, n_videos: int, n_clips: int = 75) -> tuple[Path, int]:
    """Features, text features and one annotated query per video; returns (annotations, bytes)."""
    rng = np.random.default_rng(0)
    store = FeatureStore(root / "features")
    records = []
    for i in range(n_videos):
        vid = f"video{i:05d}_0.0_150.0"
        for feature_type, dim in TYPES.items():
            store.write_video(feature_type, vid, rng.standard_normal((n_clips, dim), dtype=np.float32))
        store.write_text(i, rng.standard_normal((12, 512), dtype=np.float32))
        starts = sorted(rng.choice(np.arange(0, 140, 2), size=int(rng.integers(1, 4)), replace=False))
        windows, last = [], -1
        for s in starts:
            if s > last:
                end = int(min(150, s + 2 * rng.integers(1, 12)))
                windows.append([int(s), end])
                last = end
        records.append(Query(qid=i, query=f"query {i}", vid=vid, duration=150, windows=windows))
    write_annotations(root / "val.jsonl", records)
    size = sum(p.stat().st_size for t in TYPES for p in (root / "features" / t).iterdir())
    return root / "val.jsonl", size


def time_copy(features: Path, dest: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of copying every video feature file."""
    os.sync()
    start, cpu = time.perf_counter(), time.process_time()
    for feature_type in TYPES:
        (dest / feature_type).mkdir(parents=True)
        for path in (features / feature_type).iterdir():
            shutil.copyfile(path, dest / feature_type / path.name)
    return time.perf_counter() - start, time.process_time() - cpu


def run_mask(annotations: Path, features: Path, out: Path, workers: int, strategy: str,
             trace: bool = False) -> dict:
    os.sync()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(annotations), str(features), str(out),
                           str(workers), strategy, "1" if trace else "0"],
                          check=True, capture_output=True, text=True)
    shutil.rmtree(out)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--strategy", default="noise")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="Where to put the temporary tree (default: system temp).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="mrbench-bench-mask-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        annotations, size = build_tree(root, args.videos)
        mb = size / 1e6
        print(f"tree: {args.videos} videos x 75 clips x (2304 + 512) float32 = {mb:.0f} MB "
              f"(built in {time.perf_counter() - t0:.1f} s) under {root}")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        workers_list = [int(w) for w in args.workers.split(",")]
        copies: list[tuple[float, float]] = []
        runs: dict[int, list[dict]] = {w: [] for w in workers_list}
        for _ in range(args.repeats):
            copies.append(time_copy(root / "features", root / "copy"))
            shutil.rmtree(root / "copy")
            for workers in workers_list:
                runs[workers].append(run_mask(annotations, root / "features", root / "masked", workers,
                                              args.strategy))
        traced = run_mask(annotations, root / "features", root / "masked", 1, args.strategy, trace=True)
        copy_seconds, copy_cpu = min(copies)
        copy_rate = mb / copy_seconds
        print(f"copy (shutil.copyfile):     {copy_seconds:6.2f} s {copy_rate:7.1f} MB/s   "
              f"CPU {copy_cpu:5.2f} s ({mb / copy_cpu:.0f} MB per CPU-s)")
        for workers, stats_list in runs.items():
            stats = min(stats_list, key=lambda s: s["seconds"])
            rate = mb / stats["seconds"]
            print(f"mask {args.strategy} --workers {workers}:    {stats['seconds']:6.2f} s {rate:7.1f} MB/s "
                  f"= {rate / copy_rate:.2f} x copy   CPU {stats['cpu']:5.2f} s ({mb / stats['cpu']:.0f} MB per "
                  f"CPU-s); peak RSS main {max(s['rss_self_kb'] for s in stats_list) / 1e3:.0f} MB, "
                  f"largest worker {max(s['rss_workers_kb'] for s in stats_list) / 1e3:.0f} MB")
        print(f"tracemalloc peak of an in-process run: {traced['traced_peak'] / 1e6:.1f} MB "
              f"(the tree: {mb:.0f} MB)")

if __name__ == "__main__":
    main()
