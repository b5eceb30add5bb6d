"""Leaderboard build timings on the committed submissions: a cold build (every run scored and
every file rendered), a rebuild with nothing new (in-process and as a whole command, Python
start-up included), and a rebuild after one prediction file changed.

    python benchmarks/bench_leaderboard.py [--submissions submissions] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mrbench.leaderboard.build import build

REPO = Path(__file__).resolve().parents[1]


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=Path, default=REPO / "submissions")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        shutil.copytree(args.submissions, subs)
        out = Path(tmp) / "leaderboards"
        runs = sum(1 for _ in subs.glob("*/preds_seed*"))
        cold = timed(lambda: build(subs, out, use_cache=False))
        warm = [timed(lambda: build(subs, out)) for _ in range(args.repeat)]
        command = [sys.executable, "-m", "mrbench", "leaderboard", "build", "--submissions", str(subs), "--out", str(out)]
        whole = [timed(lambda: subprocess.run(command, check=True, capture_output=True)) for _ in range(args.repeat)]
        entry = sorted(p for p in subs.iterdir() if p.is_dir() and not p.name.startswith("_"))[0]
        pred = sorted(entry.glob("preds_seed*"))[0]
        pred.write_bytes(pred.read_bytes())  # same bytes: nothing to rescore
        same = timed(lambda: build(subs, out))
        import gzip

        text = gzip.decompress(pred.read_bytes()) if pred.suffix == ".gz" else pred.read_bytes()
        lines = text.decode().splitlines()
        changed = "\n".join(reversed(lines)) + "\n"  # same predictions, another order: new bytes
        pred.write_bytes(gzip.compress(changed.encode(), mtime=0) if pred.suffix == ".gz" else changed.encode())
        one = timed(lambda: build(subs, out))

    print(f"submissions: {args.submissions} ({runs} scored runs)")
    print(f"cold build (score all, render all):       {cold:7.2f} s")
    print(f"rebuild, nothing new (in-process, median): {statistics.median(warm):7.3f} s")
    print(f"rebuild, nothing new (whole command):      {statistics.median(whole):7.3f} s")
    print(f"rebuild, file touched with the same bytes: {same:7.3f} s")
    print(f"rebuild, one prediction file rescored:     {one:7.2f} s  (same numbers: no re-render)")


if __name__ == "__main__":
    main()
