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
rounds, copy and masking alternating. Peak memory: ``ru_maxrss`` of the masking process and of its
worker processes, and the tracemalloc peak of the in-process (``--workers 1``) run.

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
annotations, features, out, workers, strategy = sys.argv[1:6]
workers = int(workers)
if workers == 1:
    tracemalloc.start()
source = source_from_file(annotations, 2.0, features, split="val")
start = time.perf_counter()
build_variant(source, out, strategy=strategy, workers=workers)
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1] if workers == 1 else None
print(json.dumps({"seconds": seconds, "traced_peak": traced,
                  "rss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rss_workers_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
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


def time_copy(features: Path, dest: Path) -> float:
    os.sync()
    start = time.perf_counter()
    for feature_type in TYPES:
        (dest / feature_type).mkdir(parents=True)
        for path in (features / feature_type).iterdir():
            shutil.copyfile(path, dest / feature_type / path.name)
    return time.perf_counter() - start


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
        workers_list = [int(w) for w in args.workers.split(",")]
        copy_times: list[float] = []
        runs: dict[int, list[dict]] = {w: [] for w in workers_list}
        for _ in range(args.repeats):
            copy_times.append(time_copy(root / "features", root / "copy"))
            shutil.rmtree(root / "copy")
            for workers in workers_list:
                out = root / f"masked_w{workers}"
                os.sync()
                proc = subprocess.run([sys.executable, "-c", _CHILD, str(annotations), str(root / "features"),
                                       str(out), str(workers), args.strategy],
                                      check=True, capture_output=True, text=True)
                runs[workers].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                shutil.rmtree(out)
        copy_rate = mb / min(copy_times)
        print(f"copy (shutil.copyfile):      {min(copy_times):6.2f} s  {copy_rate:8.1f} MB/s")
        for workers, stats_list in runs.items():
            stats = min(stats_list, key=lambda s: s["seconds"])
            rate = mb / stats["seconds"]
            traced = [s["traced_peak"] for s in stats_list if s["traced_peak"] is not None]
            traced_text = f", tracemalloc peak {max(traced) / 1e6:.1f} MB" if traced else ""
            print(f"mask {args.strategy} --workers {workers}:    {stats['seconds']:6.2f} s  {rate:8.1f} MB/s"
                  f"  ({rate / copy_rate:.2f} x copy); peak RSS: main "
                  f"{max(s['rss_self_kb'] for s in stats_list) / 1e3:.0f} MB, largest worker "
                  f"{max(s['rss_workers_kb'] for s in stats_list) / 1e3:.0f} MB{traced_text}")

if __name__ == "__main__":
    main()
