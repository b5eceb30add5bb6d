"""Training throughput of a reference model on a synthetic dataset (CPU by default).

    python benchmarks/train_throughput.py [--model qd_detr] [--preset tiny] [--n-train 512]
        [--epochs 3] [--threads 0] [--device cpu] [--data DIR] [--set key=value ...]

Makes (or reuses, with ``--data``) a ``mrbench synth`` dataset, trains for ``--epochs`` and
prints, per epoch, seconds, training samples/s and evaluation seconds, then the whole run's wall
time (dataset loading, checkpoints and evaluation included).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qd_detr")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--data", type=Path, default=None, help="existing dataset directory")
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-val", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the preset's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    import torch

    from mrbench.data.synth import SynthConfig, generate
    from reference_models import resolve_config
    from reference_models.core.config import parse_overrides
    from reference_models.train import train

    work = Path(tempfile.mkdtemp(prefix="mrbench_bench_"))
    data = args.data
    if data is None:
        data = work / "data"
        start = time.perf_counter()
        generate(SynthConfig(n_train=args.n_train, n_val=args.n_val, n_ood=0, seed=0), data, progress=False)
        print(f"synth: {args.n_train} train / {args.n_val} val queries in {time.perf_counter() - start:.1f} s")
    overrides = {"train.epochs": args.epochs, "train.progress": False, **parse_overrides(args.overrides)}
    if args.threads:
        overrides["train.threads"] = args.threads
    config = resolve_config(args.model, args.preset, overrides)
    start = time.perf_counter()
    train(config, data, work / "run", device=args.device)
    wall = time.perf_counter() - start
    print(f"model {args.model}, preset {args.preset}, device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'epoch':>5} {'train s':>8} {'samples/s':>10} {'eval s':>7} {'loss':>8}")
    for line in (work / "run" / "log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        print(f"{entry['epoch']:>5} {entry['epoch_s']:>8.2f} {entry['samples_per_s']:>10.1f} "
              f"{entry.get('eval_s', float('nan')):>7.2f} {entry['train']['loss']:>8.3f}")
    print(f"wall time (loading, training, evaluation, checkpoints): {wall:.1f} s")


if __name__ == "__main__":
    main()
