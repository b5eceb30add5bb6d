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
from mrbench.errors import MrbenchError
from mrbench.io import atomic_write_text

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
        return self.root / "annotations" / f"{split}.jsonl"

    def info(self) -> DatasetInfo:
        path = self.root / DATASET_FILE
        if not path.is_file():
            raise MrbenchError(f"{self.root} is not an mrbench dataset directory (no {DATASET_FILE})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return DatasetInfo(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise MrbenchError(f"{path}: invalid dataset description ({exc})") from None

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


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / DATASET_FILE).is_file()
