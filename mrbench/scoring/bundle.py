"""Bundles, the earlier packaging of metadata plus standard and masked-variant predictions.

The packaging format is the submission entry folder (``submission.yaml`` and one prediction file
per seed, :mod:`mrbench.leaderboard.submission`), which ``mrbench score ENTRY_DIR`` and the
leaderboard read. Bundles stay readable (``mrbench score BUNDLE``, ``mrbench.score(bundle)``)
because docs/scoring.md published them; :class:`Bundle` is also how :func:`mrbench.score` takes
predictions and their metadata together in memory.

A bundle is a JSON file, or a directory holding ``bundle.json``::

    {"mrbench_bundle": 1,
     "meta": {"dataset": "qvhighlights", "split": "val", "model": "QD-DETR",
              "features": "slowfast+clip", "seed": 2024},
     "predictions": "preds.jsonl"            # or the list of prediction objects itself
     "masked": [{"name": "seed0", "predictions": "masked_seed0.jsonl"}, ...],   # optional
     "variant": "path/to/masked/variant"}   # optional, for the center-in-mask diagnostic

Relative paths are relative to the bundle's directory and must stay inside it (symlinks
resolved). Files are read when scored, within bounds set by the ground truth. Inline predictions
are reported in errors as ``BUNDLE[predictions]:<item number>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrbench.errors import ValidationError
from mrbench.io import atomic_write_text, ensure_inside, read_text
from mrbench.scoring.predictions import Records, read_records

#: Predictions of a bundle: a file to read (when scoring) or ``(label, records)`` given inline.
PredictionInput = Path | tuple[str, Records]

BUNDLE_KEY = "mrbench_bundle"
BUNDLE_FILE = "bundle.json"
META_KEYS = ("dataset", "split", "model", "features", "seed")


@dataclass
class Bundle:
    """A parsed bundle: metadata, the standard predictions and zero or more masked ones."""

    path: Path
    meta: dict[str, Any]
    predictions: PredictionInput
    masked: list[PredictionInput] = field(default_factory=list)
    variant: Path | None = None


def is_bundle(path: str | os.PathLike) -> bool:
    """True for a directory with ``bundle.json`` or a ``.json`` file whose object has the bundle key."""
    path = Path(path)
    if path.is_dir():
        return (path / BUNDLE_FILE).is_file()
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", "ignore")
    return f'"{BUNDLE_KEY}"' in head or head.lstrip().startswith("{")


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Read and check a bundle (file or directory); errors name the bundle and the field."""
    path = Path(path)
    file = path / BUNDLE_FILE if path.is_dir() else path
    if not file.is_file():
        raise ValidationError("no such bundle file", file=file)
    try:
        data = json.loads(read_text(file, what="bundle"))
    except ValueError as exc:
        raise ValidationError(f"invalid JSON ({exc})"[:200], file=file) from None
    except RecursionError:
        raise ValidationError("invalid JSON (nested too deeply)", file=file) from None
    if not isinstance(data, dict) or BUNDLE_KEY not in data:
        raise ValidationError(f"not an mrbench bundle (no '{BUNDLE_KEY}' key)", file=file)
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ValidationError("must be an object", file=file, field="meta")
    base = file.parent
    if "predictions" not in data:
        raise ValidationError("missing field", file=file, field="predictions")
    predictions = _records(data["predictions"], base, f"{file}[predictions]", file, "predictions")
    masked_entries = data.get("masked", [])
    if not isinstance(masked_entries, list):
        raise ValidationError("must be a list", file=file, field="masked")
    masked = []
    for index, entry in enumerate(masked_entries):
        if not isinstance(entry, dict) or "predictions" not in entry:
            raise ValidationError(f"entry {index} must be an object with 'predictions'", file=file, field="masked")
        label = f"{file}[masked][{index}]"
        masked.append(_records(entry["predictions"], base, label, file, f"masked[{index}].predictions"))
    variant = data.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise ValidationError("must be a path (string)", file=file, field="variant")
    variant_dir = ensure_inside(base / variant, base, "variant", file=file) if variant else None
    return Bundle(file, meta, predictions, masked, variant_dir)


def _records(value: Any, base: Path, label: str, file: Path, field_name: str) -> PredictionInput:
    if isinstance(value, str) and value:
        return ensure_inside(base / value, base, field_name, file=file)
    if isinstance(value, list):
        return read_records(value, name=label)
    raise ValidationError("must be a JSONL path or a list of prediction objects", file=file, field=field_name)


def write_bundle(
    path: str | os.PathLike,
    meta: dict[str, Any],
    predictions: Sequence[dict[str, Any]],
    masked: Sequence[Sequence[dict[str, Any]]] = (),
    variant: str | None = None,
) -> Path:
    """Write a single-file bundle with inline predictions (atomically); returns its path. For
    programs written against bundles; new packages are entry folders
    (:func:`mrbench.leaderboard.entries.write_entry`)."""
    data: dict[str, Any] = {BUNDLE_KEY: 1, "meta": dict(meta), "predictions": list(predictions)}
    if masked:
        data["masked"] = [{"name": f"masked{i}", "predictions": list(m)} for i, m in enumerate(masked)]
    if variant is not None:
        data["variant"] = variant
    atomic_write_text(path, json.dumps(data) + "\n")
    return Path(path)
