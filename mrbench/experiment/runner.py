"""``mrbench experiment run``: compute the cells of a spec, resumable and shardable.

Layout of the run folder ``DIR``::

    data/<dataset>/                      the synthetic dataset (mrbench synth)
    masked/<dataset>/<strategy>-m<margin>/   masked variants of the evaluation split (mrbench mask)
    runs/<dataset>/<cell>/               training run, checkpoints and prediction files of a model cell
    cells/<dataset>/<cell>/              the cell's result: queries.parquet, then cell.json (written last)

A cell is done when ``cell.json`` is there with the settings it was computed with; a run that is
killed redoes at most the cell it was in (a training run continues from its last epoch). A cell
recorded with other settings than the spec's is refused (the spec changed: remove the cell's
folder to recompute it). Dataset preparation takes a blocking lock per dataset, so shards that
share a folder (``--shard K/N`` on several processes or nodes) wait for each other instead of
building it twice. ``report`` reads ``cells/`` alone (:mod:`mrbench.experiment.report`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrbench.errors import MrbenchError
from mrbench.experiment.measures import COLUMNS, query_measures
from mrbench.experiment.spec import MASK_DETECTOR, Cell, DatasetSpec, ExperimentSpec, cell_settings
from mrbench.io import atomic_write_bytes, atomic_write_text, differing_settings
from mrbench.masking.variant import MANIFEST, Variant

CELL_FILE = "cell.json"
QUERIES_FILE = "queries.parquet"
EXPERIMENT_FILE = "experiment.json"
#: relative training cost of one epoch over the training split, for the time estimate only
_MODEL_COST = {"moment_detr": 0.9, "qd_detr": 1.0, "cg_detr": 1.6, "bam_detr": 1.8, "snag": 1.1, "tddetr": 2.2}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class RunSummary:
    cells: int
    computed: int
    skipped: int
    seconds: float
    failed: list[str]


def write_experiment_record(spec: ExperimentSpec, out: Path) -> None:
    """``experiment.json``: what the report needs of the spec (titles, dataset labels and settings,
    the order of models), so that it rebuilds from ``experiment.json`` and ``cells/`` alone."""
    models = list(dict.fromkeys(c.name for c in spec.cells if c.kind == "model"))
    record = {
        "name": spec.name, "title": spec.title, "description": spec.description, "split": spec.split,
        "ood_split": spec.ood_split, "preset": spec.preset, "train_sets": list(spec.train_sets),
        "datasets": [{"name": d.name, "label": d.label, "synth": dict(sorted(d.synth.items())),
                      "masks": [m.name for m in d.masks]} for d in spec.datasets],
        "models": models, "baselines": list(spec.baselines), "cells": len(spec.cells),
    }
    atomic_write_text(out / EXPERIMENT_FILE, json.dumps(record, indent=1) + "\n")


def cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.dataset / cell.slug


def read_cell(folder: Path) -> dict[str, Any] | None:
    """The cell record of ``folder`` (None when the cell is not done)."""
    path = folder / CELL_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MrbenchError(f"{path}: unreadable cell record ({exc}); remove the cell's folder to recompute it") from None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        raise MrbenchError(f"{path}: not a cell record (no 'settings'); remove the cell's folder to recompute it")
    return record


def is_done(out: Path, spec: ExperimentSpec, cell: Cell) -> bool:
    """Whether the cell has a result computed with the spec's settings (other settings: an error)."""
    record = read_cell(cell_dir(out, cell))
    if record is None:
        return False
    differ = differing_settings(cell_settings(spec, cell), record["settings"])
    if differ:
        raise MrbenchError(f"{cell_dir(out, cell) / CELL_FILE}: computed with other settings ({', '.join(differ)}) "
                           "than the spec's; remove the cell's folder to recompute it, or use another --out")
    return True


def estimated_cost(spec: ExperimentSpec, cell: Cell) -> float:
    """Relative cost of a cell (for the progress bar's time estimate)."""
    dataset = spec.dataset(cell.dataset)
    masks = len(dataset.masks)
    if cell.kind == "baseline":
        return 2.0 + (10.0 * masks if cell.name == MASK_DETECTOR else 0.2 * masks)
    name, *strategies = cell.name.split("+")
    try:
        epochs = next((float(s.split("=", 1)[1]) for s in reversed(spec.train_sets)
                       if s.split("=", 1)[0].strip() == "train.epochs"), 5.0)
    except ValueError:  # the trainer reports a bad value when the cell runs
        epochs = 5.0
    n_train = float(dataset.synth.get("n_train", 2000))
    per_epoch = _MODEL_COST.get(name, 1.5) * (2.0 if strategies and name != "tddetr" else 1.0) * n_train / 90.0
    return 15.0 + epochs * per_epoch + 4.0 * (masks + 2)


@contextlib.contextmanager
def _waiting_lock(path: Path) -> Iterator[None]:
    """A blocking, advisory lock on ``path`` (released by the system if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def prepare_dataset(out: Path, dataset: DatasetSpec, split: str) -> tuple[Path, dict[str, Path]]:
    """The dataset folder and its masked variants (built once; completed when interrupted)."""
    from mrbench.pipeline import make_dataset, make_masked

    data = out / "data" / dataset.name
    variants = {m.name: out / "masked" / dataset.name / m.name for m in dataset.masks}
    with _waiting_lock(out / "locks" / f"{dataset.name}.lock"):
        make_dataset(data, dict(dataset.synth), resume=True)
        for mask in dataset.masks:
            if (variants[mask.name] / MANIFEST).is_file():  # complete (its recorded paths may predate a move)
                continue
            make_masked(data, split, variants[mask.name], strategy=mask.strategy, margin=mask.margin, resume=True)
    return data, variants


def _table(evals: dict[str, dict[str, np.ndarray]]) -> bytes:
    """``queries.parquet``: one row per (evaluation, query)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {"eval": [], **{c: [] for c in COLUMNS}}
    for name, measures in evals.items():
        columns["eval"].extend([name] * len(measures["qid"]))
        columns["qid"].extend(str(q) for q in measures["qid"])
        for column in COLUMNS[1:]:
            columns[column].extend(np.asarray(measures[column]).tolist())
    table = pa.table({"eval": pa.array(columns["eval"], pa.string()), "qid": pa.array(columns["qid"], pa.string()),
                      **{c: pa.array(columns[c], pa.bool_() if c == "in_mask" else pa.float64()) for c in COLUMNS[1:]}})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _model_predictions(spec: ExperimentSpec, cell: Cell, data: Path, variants: dict[str, Path],
                       run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the cell's model (continued when interrupted) and predict every evaluation."""
    from mrbench.pipeline import ModelSpec, predict_run, train_run

    model = ModelSpec.parse(cell.name)
    begin = time.perf_counter()
    checkpoint = train_run(model, data, run, preset=spec.preset,
                           overrides=[*spec.train_sets, f"train.seed={cell.seed}"], resume=True)
    info: dict[str, Any] = {"train_seconds": round(time.perf_counter() - begin, 1), "title": model.title()}
    log = run / "log.jsonl"
    epochs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []
    rates = [e.get("samples_per_s") for e in epochs if isinstance(e.get("samples_per_s"), (int, float))]
    if rates:
        info["samples_per_s"] = round(float(np.median(rates)), 1)
    predictions: dict[str, Any] = {}
    for split in (spec.split, spec.ood_split):
        predictions[split] = predict_run(checkpoint, data, split, run / f"preds_{split}.jsonl")
    for name, variant in variants.items():
        predictions[f"masked:{name}"] = predict_run(checkpoint, data, spec.split, run / f"preds_{name}.jsonl",
                                                    variant=variant)
    return predictions, info


def _baseline_predictions(spec: ExperimentSpec, cell: Cell, data: Path,
                          variants: dict[str, Path]) -> dict[str, Any]:
    """A query-blind baseline on every evaluation (a feature-blind one predicts the same on a
    masked variant as on the split; the mask detector runs on the masked variants only)."""
    if cell.name == MASK_DETECTOR:
        from mrbench.mask_detector import predict_mask_detector

        return {f"masked:{name}": predict_mask_detector(variant) for name, variant in variants.items()}
    from mrbench.baselines import predict_baseline
    from mrbench.data.dataset import DatasetDir

    source = DatasetDir(data)
    clip_len = float(source.info().clip_len)
    train = source.load("train").records
    predictions: dict[str, Any] = {}
    for split in (spec.split, spec.ood_split):
        predictions[split] = predict_baseline(cell.name, source.load(split).records, clip_len=clip_len, train=train,
                                              seed=cell.seed)
    for name in variants:
        predictions[f"masked:{name}"] = predictions[spec.split]
    return predictions


def run_cell(spec: ExperimentSpec, out: Path, cell: Cell) -> dict[str, Any]:
    """Compute one cell and write its result; returns the cell record."""
    from mrbench.scoring.groundtruth import load_ground_truth

    begin = time.perf_counter()
    dataset = spec.dataset(cell.dataset)
    data, variants = prepare_dataset(out, dataset, spec.split)
    clip_len = float(json.loads((data / "dataset.json").read_text(encoding="utf-8"))["clip_len"])
    info: dict[str, Any] = {}
    if cell.kind == "model":
        predictions, info = _model_predictions(spec, cell, data, variants, out / "runs" / cell.dataset / cell.slug)
    else:
        predictions = _baseline_predictions(spec, cell, data, variants)
    truth = {split: load_ground_truth(data / "annotations" / f"{split}.jsonl", clip_len=clip_len)
             for split in (spec.split, spec.ood_split)}
    evals: dict[str, dict[str, np.ndarray]] = {}
    for name, preds in predictions.items():
        if name.startswith("masked:"):  # the variant's own labels: recontext moves the moment
            variant = variants[name.split(":", 1)[1]]
            labels = load_ground_truth(Variant(variant).annotations, clip_len=clip_len)
            evals[name] = query_measures(preds, labels, variant)
        else:
            evals[name] = query_measures(preds, truth[name])
    folder = cell_dir(out, cell)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / QUERIES_FILE, _table(evals))
    record = {"cell": cell.key, "settings": cell_settings(spec, cell), **info,
              "seconds": round(time.perf_counter() - begin, 1)}
    atomic_write_text(folder / CELL_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def run_experiment(spec: ExperimentSpec, out: Path, *, shard: tuple[int, int] = (1, 1),
                   echo: Callable[[str], None] = _stderr, progress: bool = True) -> RunSummary:
    """Compute every cell of shard ``shard`` of ``spec`` that is not done yet, in ``out``."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    write_experiment_record(spec, out)
    cells = spec.shard(*shard, cost=lambda cell: estimated_cost(spec, cell))
    todo = [cell for cell in cells if not is_done(out, spec, cell)]
    costs = {cell: estimated_cost(spec, cell) for cell in todo}
    echo(f"experiment {spec.name}: shard {shard[0]}/{shard[1]} has {len(cells)} cells, "
         f"{len(cells) - len(todo)} done, {len(todo)} to compute")
    begin = time.perf_counter()
    failed: list[str] = []
    bar = tqdm(total=round(sum(costs.values())), unit="cost", disable=not progress, file=sys.stderr,
               bar_format="{l_bar}{bar}| {percentage:3.0f}% [{elapsed}<{remaining}]")
    try:
        for index, cell in enumerate(todo, 1):
            bar.set_description(f"[{index}/{len(todo)}] {cell.key}")
            error = out / "errors" / f"{cell.dataset}--{cell.slug}.txt"
            try:
                record = run_cell(spec, out, cell)
            except Exception as exc:  # one failing cell must not stop the others: recorded, redone on resume
                error.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(error, "".join(traceback.format_exception(exc)))
                failed.append(cell.key)
                bar.write(f"FAILED {cell.key}: {type(exc).__name__}: {exc} (traceback in {error})")
                continue
            error.unlink(missing_ok=True)
            bar.update(round(costs[cell]))
            bar.write(f"done {cell.key} in {record['seconds']:.0f} s")
    finally:
        bar.close()
    seconds = time.perf_counter() - begin
    echo(f"shard {shard[0]}/{shard[1]}: {len(todo) - len(failed)} cells computed in {seconds / 60:.1f} min")
    return RunSummary(len(cells), len(todo) - len(failed), len(cells) - len(todo), seconds, failed)
