"""Read speed: per-video .npz files versus the packed store (memory-mapped arrays + Parquet index).

Builds a QVHighlights-shaped feature tree (75 clips x SlowFast 2304 + CLIP 512, float32) in a
temporary directory, packs it, and times random-order reads of every video from both layouts
(warm page cache for both, so the figure is the format's overhead, not the disk). "read" returns
the arrays; "read+use" also reduces them (touches every byte), as a training step would.

    python benchmarks/bench_packed_read.py [--videos 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mrbench.data.features import FeatureStore, PackedStore, pack_features

TYPES = {"slowfast_features": 2304, "clip_features": 512}


def build(root: Path, n_videos: int, n_clips: int = 75) -> list[str]:
    rng = np.random.default_rng(0)
    store = FeatureStore(root)
    vids = [f"video{i:05d}" for i in range(n_videos)]
    for vid in vids:
        for feature_type, dim in TYPES.items():
            store.write_video(feature_type, vid, rng.standard_normal((n_clips, dim), dtype=np.float32))
    return vids


def time_reads(store: FeatureStore | PackedStore, vids: list[str], use: bool, repeats: int) -> float:
    """Best-of-``repeats`` seconds per video read."""
    order = np.random.default_rng(1).permutation(len(vids))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        total = 0.0
        for index in order:
            arrays = store.load_video(vids[index], list(TYPES))
            if use:
                total += sum(float(a.sum()) for a in arrays.values())
        best = min(best, (time.perf_counter() - start) / len(vids))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vids = build(root / "npz", args.videos)
        start = time.perf_counter()
        pack_features(root / "npz", root / "packed", vids, types=list(TYPES))
        pack_seconds = time.perf_counter() - start
        per_file, packed = FeatureStore(root / "npz"), PackedStore(root / "packed")
        mb = args.videos * 75 * sum(TYPES.values()) * 4 / 1e6
        print(f"{args.videos} videos x 75 clips x (2304 + 512) float32 = {mb:.0f} MB; pack took {pack_seconds:.2f} s")
        print(f"{'mode':<10}{'npz ms/video':>14}{'packed ms/video':>17}{'speed-up':>10}")
        for use in (False, True):
            a = time_reads(per_file, vids, use, args.repeats)
            b = time_reads(packed, vids, use, args.repeats)
            print(f"{'read+use' if use else 'read':<10}{a * 1e3:>14.3f}{b * 1e3:>17.3f}{a / b:>9.1f}x")


if __name__ == "__main__":
    main()
