"""Writing submission entries and the ground-truth store (used by the CLI and ``mrbench demo``)."""

from __future__ import annotations

import datetime as _dt
import gzip
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mrbench.data.dataset import DatasetDir
from mrbench.errors import MrbenchError
from mrbench.io import (
    atomic_write_bytes,
    atomic_write_text,
    ensure_inside,
    jsonl_text,
    path_inside,
    safe_name,
)
from mrbench.leaderboard.submission import (
    DATASETS_DIR,
    DEFAULT_MASKED,
    DEFAULT_PREDICTIONS,
    SCHEMA,
    SOURCE_FILE,
    SUBMISSION_FILE,
)


def write_entry(
    submissions_root: str | os.PathLike[str],
    entry_id: str,
    meta: Mapping[str, Any],
    standard: Mapping[int, Iterable[Mapping[str, Any]]],
    masked: Mapping[int, Iterable[Mapping[str, Any]]] | None = None,
    *,
    compress: bool = True,
) -> Path:
    """Write ``<root>/<entry_id>/`` : ``submission.yaml`` (``meta`` plus ``seeds`` and the file
    patterns) and one prediction file per seed, gzip-compressed (``.jsonl.gz``, byte-stable:
    no timestamp) unless ``compress`` is false. Returns the entry directory."""
    entry = path_inside(submissions_root, entry_id, field="entry")
    seeds = sorted(standard)
    if masked is not None and sorted(masked) != seeds:
        raise MrbenchError(f"{entry_id}: masked predictions for seeds {sorted(masked)} but standard for {seeds}")
    fields = dict(meta)
    fields["seeds"] = seeds
    fields.setdefault("date", _dt.date.today().isoformat())
    suffix = ".gz" if compress else ""
    patterns = {"predictions": DEFAULT_PREDICTIONS + suffix, "masked_predictions": DEFAULT_MASKED + suffix}
    fields["predictions"] = patterns["predictions"]
    fields["masked_predictions"] = patterns["masked_predictions"] if masked is not None else None
    unknown = set(fields) - set(SCHEMA)
    if unknown:
        raise MrbenchError(f"{entry_id}: unknown submission fields {sorted(unknown)}")
    ordered = {key: fields[key] for key in SCHEMA if key in fields}
    if entry.exists():
        shutil.rmtree(entry)
    def put(pattern: str, seed: int, preds: Iterable[Mapping[str, Any]]) -> None:
        data = jsonl_text(preds).encode("utf-8")
        atomic_write_bytes(entry / pattern.format(seed=seed), gzip.compress(data, 9, mtime=0) if compress else data)

    for seed in seeds:
        put(patterns["predictions"], seed, standard[seed])
        if masked is not None:
            put(patterns["masked_predictions"], seed, masked[seed])
    atomic_write_text(entry / SUBMISSION_FILE, yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True))
    return entry


def export_dataset(
    submissions_root: str | os.PathLike[str],
    name: str,
    data_dir: str | os.PathLike[str],
    splits: Iterable[str],
    *,
    variants: Mapping[str, str | os.PathLike[str]] | None = None,
    title: str,
    columns: str = "qvhighlights",
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Copy the ground truth of a dataset directory (and its masked variants) into
    ``<root>/_datasets/<name>/``: ``dataset.json``, ``annotations/<split>.jsonl`` and, under
    ``<variant name>/`` for each of ``variants`` (name -> variant directory), the variant's
    ``dataset.json``, ``manifest.json`` and annotations. No features. Files already in the
    store and not named here are kept (another split, another variant)."""
    source = DatasetDir(data_dir)
    info = source.info()
    target = path_inside(Path(submissions_root) / DATASETS_DIR, name, field="dataset")
    files = [(source.root / "dataset.json", target / "dataset.json")]
    for split in splits:
        files.append((source.annotation_path(split), target / "annotations" / f"{safe_name(split, 'split')}.jsonl"))
    for variant_name, variant_dir in (variants or {}).items():
        safe_name(variant_name, "variant")
        masked = DatasetDir(variant_dir)
        for rel in ("dataset.json", "manifest.json"):
            files.append((masked.root / rel, target / variant_name / rel))
        for split in masked.splits():
            files.append((masked.annotation_path(split), target / variant_name / "annotations" / f"{split}.jsonl"))
    for src, dst in files:
        if not src.is_file():
            raise MrbenchError(f"cannot export ground truth: {src} is absent")
        atomic_write_bytes(ensure_inside(dst.parent, target.parent, "dataset") / dst.name, src.read_bytes())
    source_yaml = {
        "title": title,
        "columns": columns,
        "clip_len": float(info.clip_len),
        "provenance": dict(provenance or {}),
    }
    atomic_write_text(target / SOURCE_FILE, yaml.safe_dump(source_yaml, sort_keys=False, allow_unicode=True))
    return target


def make_baseline_entries(
    submissions_root: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str],
    dataset: str,
    split: str,
    masked_dir: str | os.PathLike[str] | None = None,
    masked_variant: str = "masked",
    seeds: Iterable[int] = (0, 1, 2),
    train_split: str = "train",
    date: str | None = None,
    submitted_by: str = "mrbench",
    suffix: str = "",
) -> list[Path]:
    """Write the blind-baseline entries (every one of :data:`mrbench.baselines.REGISTRY`) for ``split`` of the dataset in ``data_dir``
    (fitted on ``train_split`` only). Deterministic baselines get one seed, the random one
    every seed in ``seeds``."""
    from mrbench.baselines import REGISTRY, predict_baseline

    source = DatasetDir(data_dir)
    clip_len = float(source.info().clip_len)
    train = source.load(train_split).records
    queries = source.load(split).records
    masked = DatasetDir(masked_dir).load(split).records if masked_dir is not None else None
    written = []
    for name, baseline in REGISTRY.items():
        title, how = baseline.title, baseline.how
        run_seeds = sorted(seeds) if baseline.seeded else [0]
        standard, on_masked = {}, {}
        for seed in run_seeds:
            kwargs = {"clip_len": clip_len, "train": train, "seed": seed}
            standard[seed] = predict_baseline(name, queries, **kwargs)
            if masked is not None:
                on_masked[seed] = predict_baseline(name, masked, **kwargs)
        meta = {
            "name": title,
            "model": name,
            "kind": "baseline",
            "paper": None,
            "code": None,
            "features": [],
            "dataset": dataset,
            "split": split,
            "date": date or _dt.date.today().isoformat(),
            "submitted_by": submitted_by,
            "test_answers_used": False,
            "self_scored": False,
            "masked_variant": masked_variant,
            "notes": f"Blind baseline: {how}; fitted on the '{train_split}' split only; uses neither video nor query.",
        }
        entry_id = "baseline-" + name.replace("_", "-") + (f"-{suffix}" if suffix else "")
        written.append(write_entry(submissions_root, entry_id, meta, standard, on_masked if masked is not None else None))
    return written
