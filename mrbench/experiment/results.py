"""The cells of an experiment run, loaded for the report: records, per-query measures, titles,
and the roles of the datasets (no cue, positive control, default, the flank series)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mrbench.errors import MrbenchError
from mrbench.experiment.runner import CELL_FILE, EXPERIMENT_FILE, QUERIES_FILE

PAPER = "masked:noise-m3"  # the paper's protocol: noise, 3 s margin, scored against the original windows
BASELINE_TITLES = {"position_prior": "Blind: position prior", "length_prior": "Blind: length prior",
                   "uniform_random": "Blind: uniform random", "whole_video": "Blind: whole video",
                   "mask_detector": "Mask detector (query-blind)"}
#: points of standard mAP above the best blind baseline for a model to count as having learned a control
LEARNED = 5.0
BLIND = ("position_prior", "length_prior", "uniform_random", "whole_video")


@dataclass
class Results:
    """The cells of a run: their records and their per-query measures."""

    experiment: dict[str, Any]
    cells: pd.DataFrame  # one row per cell
    values: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)  # (cell, eval) -> by qid

    def has(self, cell: str, evaluation: str) -> bool:
        return (cell, evaluation) in self.values

    def column(self, cell: str, evaluation: str, column: str) -> np.ndarray:
        return self.values[(cell, evaluation)][column].to_numpy(dtype=float)

    def model_cells(self, dataset: str | None = None, model: str | None = None) -> pd.DataFrame:
        frame = self.cells[self.cells["kind"] == "model"]
        if dataset is not None:
            frame = frame[frame["dataset"] == dataset]
        if model is not None:
            frame = frame[frame["name"] == model]
        return frame

    def baseline_cell(self, dataset: str, name: str) -> str | None:
        frame = self.cells[(self.cells["kind"] == "baseline") & (self.cells["dataset"] == dataset)
                           & (self.cells["name"] == name)]
        return None if frame.empty else str(frame["key"].iloc[0])

    def seed_mean(self, keys: list[str], evaluation: str, column: str) -> np.ndarray | None:
        """Per-query values averaged over the cells ``keys`` (the seeds of one model)."""
        arrays = [self.column(k, evaluation, column) for k in keys if self.has(k, evaluation)]
        return np.mean(arrays, axis=0) if arrays else None

    def datasets(self) -> list[dict[str, Any]]:
        present = set(self.cells["dataset"])
        return [d for d in self.experiment["datasets"] if d["name"] in present]

    def label(self, dataset: str) -> str:
        return next((d["label"] for d in self.experiment["datasets"] if d["name"] == dataset), dataset)

    def title(self, name: str) -> str:
        frame = self.cells[self.cells["name"] == name]
        titles = [t for t in frame["title"] if isinstance(t, str) and t]
        return titles[0] if titles else BASELINE_TITLES.get(name, name)

    def models(self, dataset: str | None = None) -> list[str]:
        present = set(self.model_cells(dataset)["name"])
        return [m for m in self.experiment["models"] if m in present]


def load_results(folder: str | Path) -> Results:
    """The cells under ``folder/cells`` and ``folder/experiment.json``."""
    folder = Path(folder)
    record_path = folder / EXPERIMENT_FILE
    if not record_path.is_file():
        raise MrbenchError(f"{folder} has no {EXPERIMENT_FILE}: not an experiment run folder (mrbench experiment run)")
    try:
        experiment = json.loads(record_path.read_text(encoding="utf-8"))
        for key in ("name", "title", "split", "ood_split", "preset", "train_sets", "datasets", "models", "baselines",
                    "cells"):
            experiment[key]  # noqa: B018 -- presence check
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MrbenchError(f"{record_path}: not an experiment record ({type(exc).__name__}: {exc})") from None
    rows, values = [], {}
    for path in sorted((folder / "cells").glob(f"*/*/{CELL_FILE}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            settings = record["settings"]
            key = f"{settings['dataset']}/{path.parent.name}"
            rows.append({"key": key, "dataset": str(settings["dataset"]), "kind": str(settings["kind"]),
                         "name": str(settings["name"]), "seed": int(settings["seed"]), "title": str(record.get("title", "")),
                         "seconds": float(record.get("seconds", math.nan)),
                         "samples_per_s": float(record.get("samples_per_s", math.nan))})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MrbenchError(f"{path}: not a cell record ({type(exc).__name__}: {exc})") from None
        queries = path.parent / QUERIES_FILE
        try:
            frame = pd.read_parquet(queries, columns=["eval", "qid", "ap", "iou", "ap_span", "iou_span", "in_mask"])
        except (OSError, ValueError, KeyError) as exc:
            raise MrbenchError(f"{queries}: not a cell's per-query table ({type(exc).__name__}: {exc})") from None
        for evaluation, part in frame.groupby("eval", sort=True):
            values[(key, str(evaluation))] = part.set_index("qid").sort_index()
    if not rows:
        raise MrbenchError(f"{folder / 'cells'} holds no finished cell")
    cells = pd.DataFrame(rows)
    order = {d["name"]: i for i, d in enumerate(experiment["datasets"])}
    names = {n: i for i, n in enumerate([*experiment["models"], *experiment["baselines"]])}
    cells["_d"] = cells["dataset"].map(order).fillna(len(order))
    cells["_n"] = cells["name"].map(names).fillna(len(names))
    cells = cells.sort_values(["_d", "_n", "seed"], kind="stable").drop(columns=["_d", "_n"]).reset_index(drop=True)
    return Results(experiment, cells, values)



@dataclass
class Table:
    """One result table: a frame (numbers, for csv/parquet) and its markdown text."""

    name: str
    title: str
    frame: pd.DataFrame
    markdown: str
    note: str = ""



def flank_series(raw: pd.DataFrame) -> list[str]:
    """Datasets whose only planted cue is the flank (strength 0 included), by strength."""
    chosen = []
    for name, part in raw.groupby("dataset", sort=False):
        synth = part["synth"].iloc[0]
        if (synth.get("rho_scene", 0.9) == 0 and synth.get("rho_position", 0.5) == 0
                and synth.get("content", 0.5) == 0.5):
            chosen.append((float(synth.get("rho_flank", 0.9)), name))
    return [name for _, name in sorted(chosen)]



def find_dataset(results: Results, test: Callable[[dict[str, Any]], bool]) -> str | None:
    """The first dataset of the run whose synth settings pass ``test``."""
    return next((d["name"] for d in results.datasets() if test(d["synth"])), None)


def is_no_cue(synth: dict[str, Any]) -> bool:
    """Every cue at strength 0, the moments with content."""
    return all(synth.get(k, 1) == 0 for k in ("rho_scene", "rho_flank", "rho_position")) and synth.get("content", 0.5) > 0


def is_positive_control(synth: dict[str, Any]) -> bool:
    """Moments without content of their own: only context can find them."""
    return synth.get("content", 0.5) == 0


def is_default(synth: dict[str, Any]) -> bool:
    """The generator's default cues."""
    return not any(k in synth for k in ("rho_scene", "rho_flank", "rho_position", "content"))
