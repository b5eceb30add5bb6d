"""Benchmark of ``mrbench synth``: generation time and how strongly the planted cues show.

Prints
* the wall time of the default dataset (``mrbench synth --out DIR``: 2000/500/500/500 queries,
  dims 256/128) and of a QVHighlights-shaped one (``--annotations
  ../shared/data/qvhighlights/highlight_train_release.jsonl --dims qvh``, 7218 queries) with the
  peak resident memory of that run;
* the context-only probe's concept accuracy (nearest centroid and softmax regression, trained on
  ``train``) on ``val`` at cue strengths 0, 0.5 and 0.9 and on ``val_ood``, and the blind
  position prior's R1@0.5 on ``val`` and ``val_ood`` at each strength.

Usage: ``python benchmarks/bench_synth.py [--skip-qvh] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QVH_TRAIN = Path(os.environ.get("MRBENCH_SHARED", REPO.parent / "shared")) / "data/qvhighlights/highlight_train_release.jsonl"


def timed_cli(args: list[str]) -> tuple[float, float]:
    """Run ``mrbench synth ARGS`` in a child process: (wall seconds, child peak RSS in MiB)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mrbench", "synth", "--quiet", *args], check=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak


def du(path: Path) -> float:
    """Size of a directory tree in MiB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-qvh", action="store_true", help="Skip the QVHighlights-shaped run.")
    parser.add_argument("--work", type=Path, default=None, help="Scratch directory (default: a temp dir).")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_synth_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cores available: {len(os.sched_getaffinity(0))}")

    default_dir = work / "default"
    shutil.rmtree(default_dir, ignore_errors=True)
    wall, peak = timed_cli(["--out", str(default_dir)])
    print(f"default dataset (3500 queries, dims 256/128): {wall:.1f} s, {du(default_dir):.0f} MiB, peak RSS {peak:.0f} MiB")
    shutil.rmtree(default_dir)
    two_k = work / "two_k"
    wall, _ = timed_cli(["--out", str(two_k), "--n-train", "2000", "--n-val", "0", "--n-ood", "0"])
    print(f"2000 queries at default dims: {wall:.1f} s")
    shutil.rmtree(two_k)

    if not args.skip_qvh:
        if QVH_TRAIN.is_file():
            qvh = work / "qvh"
            shutil.rmtree(qvh, ignore_errors=True)
            wall, peak = timed_cli(["--out", str(qvh), "--annotations", str(QVH_TRAIN), "--dims", "qvh"])
            print(f"QVHighlights-shaped train (7218 queries, dims 2304/512): {wall:.1f} s, "
                  f"{du(qvh) / 1024:.1f} GiB, peak RSS {peak:.0f} MiB")
            shutil.rmtree(qvh)
        else:
            print(f"QVHighlights-shaped run skipped: {QVH_TRAIN} is absent")

    from mrbench.data.dataset import DatasetDir
    from mrbench.data.synth import SynthConfig, generate
    from mrbench.probes import context_probe, position_prior_r1

    print("\ncue strength rho (scene = flank = position); K = 24 concepts, chance ~ 1/24 = 0.042")
    print(f"{'rho':>4} {'probe val':>10} {'probe ood':>10} {'softmax val':>12} {'softmax ood':>12} "
          f"{'prior R1@.5 val':>16} {'prior R1@.5 ood':>16}")
    for rho in (0.0, 0.5, 0.9):
        path = work / f"rho{rho}"
        shutil.rmtree(path, ignore_errors=True)
        config = SynthConfig(n_train=2000, n_val=500, n_ood=500, rho_scene=rho, rho_flank=rho, rho_position=rho)
        generate(config, path, progress=False)
        centroid = context_probe(path, "train", ("val", "val_ood"))
        softmax = context_probe(path, "train", ("val", "val_ood"), method="softmax")
        data = DatasetDir(path)
        train = data.load("train").records
        prior = [position_prior_r1(train, data.load(s).records) for s in ("val", "val_ood")]
        print(f"{rho:>4} {centroid['val']:>10.3f} {centroid['val_ood']:>10.3f} {softmax['val']:>12.3f} "
              f"{softmax['val_ood']:>12.3f} {prior[0]:>16.3f} {prior[1]:>16.3f}")
        shutil.rmtree(path)
    if not args.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
