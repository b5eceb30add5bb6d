"""A dataset directory: what ``mrbench synth`` and ``mrbench mask`` write and the models read.

Layout::

    DIR/dataset.json                       name, clip_len, max_clips, feature types/dims, splits
    DIR/annotations/<split>.jsonl          community JSONL, one query per line
    DIR/features/<video_type>/<vid>.npz    key "features" [n_clips, dim]
    DIR/features/clip_text_features/qid<qid>.npz
    DIR/truth.parquet                      (synthetic data only) the planted cues per query
    DIR/manifest.json                      (masked variants only) what was masked, checksums

``DIR/features`` is a plain feature root, so existing model code reads it by pointing its
``--v_feat_dirs``/``--t_feat_dir`` at ``DIR/features/<type>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mrbench.data.features import TEXT_TYPE, FeatureStore, PackedStore, open_store
from mrbench.data.schema import Annotations, read_annotations
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    MAX_CLIP_LEN,
    MAX_CLIPS,
    MAX_FEATURE_DIM,
    MIN_CLIP_LEN,
    atomic_write_text,
    finite_number,
    read_text,
    safe_name,
)

DATASET_FILE = "dataset.json"


@dataclass
class DatasetInfo:
    """Contents of ``dataset.json``."""

    name: str
    clip_len: float
    video_features: dict[str, int]
    text_features: dict[str, int] = field(default_factory=lambda: {TEXT_TYPE: 0})
    splits: list[str] = field(default_factory=list)
    max_clips: int | None = None
    kind: str = "dataset"  # "dataset", "synthetic" or "masked"
    extra: dict = field(default_factory=dict)


class DatasetDir:
    """Paths and metadata of one dataset directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def features_root(self) -> Path:
        return self.root / "features"

    def annotation_path(self, split: str) -> Path:
        """``annotations/<split>.jsonl``; ``split`` must be a plain name."""
        return self.root / "annotations" / f"{safe_name(split, 'split')}.jsonl"

    def info(self) -> DatasetInfo:
        path = self.root / DATASET_FILE
        if not path.is_file():
            raise MrbenchError(f"{self.root} is not an mrbench dataset directory (no {DATASET_FILE})")
        try:
            data = json.loads(read_text(path, what="dataset description"))
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"invalid JSON ({exc})"[:200], file=path) from None
        return _dataset_info(data, path)

    def write_info(self, info: DatasetInfo) -> None:
        atomic_write_text(self.root / DATASET_FILE, json.dumps(asdict(info), indent=2, sort_keys=True) + "\n")

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "annotations").glob("*.jsonl"))

    def load(self, split: str, require_windows: bool = True) -> Annotations:
        path = self.annotation_path(split)
        if not path.is_file():
            raise MrbenchError(f"{self.root} has no split {split!r} (splits: {', '.join(self.splits()) or 'none'})")
        return read_annotations(path, require_windows=require_windows)

    def store(self) -> FeatureStore | PackedStore:
        """The feature store (packed if ``features/index.parquet`` exists)."""
        return open_store(self.features_root)


def _dataset_info(data: object, path: Path) -> DatasetInfo:
    """Validate ``dataset.json``'s content: field names and types, plain names for the feature
    types and splits (they become paths), a clip length and feature sizes in range."""
    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object", file=path)
    known = set(DatasetInfo.__dataclass_fields__)
    for key in ("name", "clip_len", "video_features"):
        if key not in data:
            raise ValidationError("missing field", file=path, field=key)
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise ValidationError(f"unknown field (allowed: {', '.join(sorted(known))})", file=path, field=str(unknown[0]))
    if not isinstance(data["name"], str):
        raise ValidationError("must be a string", file=path, field="name")
    if not finite_number(data["clip_len"]) or not MIN_CLIP_LEN <= data["clip_len"] <= MAX_CLIP_LEN:
        raise ValidationError(f"must be a number of seconds in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}]", file=path,
                              field="clip_len")
    for key in ("video_features", "text_features"):
        value = data.get(key, {})
        if not isinstance(value, dict) or not all(
            isinstance(dim, int) and not isinstance(dim, bool) and 0 <= dim <= MAX_FEATURE_DIM for dim in value.values()
        ):
            raise ValidationError(f"must map feature types to sizes in [0, {MAX_FEATURE_DIM}]", file=path, field=key)
        for name in value:
            safe_name(name, key, file=path)
    splits = data.get("splits", [])
    if not isinstance(splits, list):
        raise ValidationError("must be a list of split names", file=path, field="splits")
    for split in splits:
        safe_name(split, "splits", file=path)
    max_clips = data.get("max_clips")
    if max_clips is not None and (isinstance(max_clips, bool) or not isinstance(max_clips, int)
                                  or not 0 < max_clips <= MAX_CLIPS):
        raise ValidationError(f"must be null or an integer in [1, {MAX_CLIPS}]", file=path, field="max_clips")
    if not isinstance(data.get("kind", "dataset"), str) or not isinstance(data.get("extra", {}), dict):
        raise ValidationError("kind must be a string and extra an object", file=path)
    return DatasetInfo(**data)


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / DATASET_FILE).is_file()
