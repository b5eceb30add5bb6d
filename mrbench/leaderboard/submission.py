"""Submission entries: the ``submission.yaml`` schema and the ground-truth store (read, not scored).

Layout of a submissions directory::

    submissions/<entry>/submission.yaml            metadata (schema below)
    submissions/<entry>/preds_seed<k>.jsonl        standard predictions, one file per seed
    submissions/<entry>/preds_masked_seed<k>.jsonl predictions on the masked variant, per seed
                                                   (either may be gzip-compressed: .jsonl.gz)
    submissions/_datasets/<name>/source.yaml       what the dataset is and how it was made
    submissions/_datasets/<name>/dataset.json      DatasetInfo of the source dataset
    submissions/_datasets/<name>/annotations/<split>.jsonl            ground truth
    submissions/_datasets/<name>/<variant>/{dataset.json, manifest.json, annotations/<split>.jsonl}

``_datasets`` holds the ground truth every entry is scored against: for generated (synthetic)
datasets the generated annotation files and the masked variant's manifest, without features, so
that ``mrbench leaderboard build`` needs neither the features nor a regeneration. Directories whose
names start with ``_`` or ``.`` are not entries. An entry folder is the one packaging format of
predictions, masked predictions and metadata (``mrbench score ENTRY_DIR`` reads it too).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    MAX_CLIP_LEN,
    MIN_CLIP_LEN,
    ReadLimits,
    ensure_inside,
    finite_number,
    path_inside,
    read_text,
    safe_name,
    short_repr,
)
from mrbench.leaderboard.table import STRATEGIES, is_strict_https_url
from mrbench.scoring.keys import COLUMN_PROFILES

SUBMISSION_FILE = "submission.yaml"
DATASETS_DIR = "_datasets"
SOURCE_FILE = "source.yaml"
DEFAULT_PREDICTIONS = "preds_seed{seed}.jsonl"
DEFAULT_MASKED = "preds_masked_seed{seed}.jsonl"
KINDS = ("baseline", "model")
_ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: Longest text a field may hold (names and notes are shown in tables and plots).
MAX_TEXT_FIELD = 2000
#: submission.yaml and source.yaml are small; anything larger is refused unread.
YAML_LIMITS = ReadLimits(1 << 20, why="the bound for a metadata file")


@dataclass(frozen=True)
class Field:
    """One key of ``submission.yaml``: whether it is required and what it holds."""

    required: bool
    kind: str  # "str", "name", "url", "bool", "date", "seeds", "strlist", "kind", "pattern", "strategies"
    help: str


#: The ``submission.yaml`` schema (key -> definition); unknown keys are errors.
SCHEMA: dict[str, Field] = {
    "name": Field(True, "str", "display name, e.g. 'TD-DETR (tiny preset)'"),
    "model": Field(True, "str", "model identifier, e.g. tddetr"),
    "strategies": Field(False, "strategies", f"strategies the model was trained with ({', '.join(STRATEGIES)}); "
                        "the row is compared with the entry of the same model without them"),
    "kind": Field(True, "kind", "'model' or 'baseline'"),
    "paper": Field(False, "url", "link to the paper (https URL) or null"),
    "code": Field(False, "url", "link to the code (https URL) or null"),
    "features": Field(True, "strlist", "feature types used (video and text), [] for blind baselines"),
    "dataset": Field(True, "name", "dataset name: a directory under submissions/_datasets/"),
    "split": Field(True, "name", "the split the predictions are for"),
    "seeds": Field(True, "seeds", "training seeds, one prediction file each"),
    "predictions": Field(False, "pattern", f"file name pattern with {{seed}} (default {DEFAULT_PREDICTIONS})"),
    "masked_predictions": Field(False, "pattern", f"pattern for the masked variant (default {DEFAULT_MASKED}); null for none"),
    "masked_variant": Field(False, "name", "variant directory under the dataset (default 'masked')"),
    "date": Field(True, "date", "date of the run, YYYY-MM-DD"),
    "submitted_by": Field(True, "str", "who ran it"),
    "test_answers_used": Field(True, "bool", "whether the evaluated split's answers were used to select anything"),
    "self_scored": Field(True, "bool", "whether the submitter scored against public ground truth themselves"),
    "selected_on_training_data": Field(False, "bool", "whether the checkpoint was selected on a split sharing queries "
                                       "or videos with its training split (train.allow_split_overlap)"),
    "notes": Field(False, "str", "free text"),
}


@dataclass(frozen=True)
class Submission:
    """A validated entry."""

    entry_id: str
    root: Path
    name: str
    model: str
    kind: str
    features: tuple[str, ...]
    dataset: str
    split: str
    seeds: tuple[int, ...]
    date: str
    submitted_by: str
    test_answers_used: bool
    self_scored: bool
    predictions: str = DEFAULT_PREDICTIONS
    masked_predictions: str | None = DEFAULT_MASKED
    masked_variant: str = "masked"
    paper: str | None = None
    code: str | None = None
    notes: str | None = None
    selected_on_training_data: bool = False
    strategies: tuple[str, ...] = ()

    @property
    def yaml_path(self) -> Path:
        return self.root / SUBMISSION_FILE

    def prediction_path(self, seed: int) -> Path:
        """Standard predictions of one seed (a file of the entry's own directory)."""
        return path_inside(self.root, self.predictions.format(seed=seed), field="predictions", file=self.yaml_path)

    def masked_path(self, seed: int) -> Path | None:
        """Masked-variant predictions of one seed (``None`` when the entry has none)."""
        if self.masked_predictions is None:
            return None
        return path_inside(self.root, self.masked_predictions.format(seed=seed), field="masked_predictions",
                           file=self.yaml_path)

    def metadata(self) -> dict[str, Any]:
        """The yaml fields (for tables and the long-form results)."""
        return {
            "entry": self.entry_id,
            "name": self.name,
            "model": self.model,
            # only when set, so that the tables and results of every other entry stay as they were
            **({"strategies": list(self.strategies)} if self.strategies else {}),
            "kind": self.kind,
            "paper": self.paper,
            "code": self.code,
            "features": list(self.features),
            "dataset": self.dataset,
            "split": self.split,
            "seeds": list(self.seeds),
            "date": self.date,
            "submitted_by": self.submitted_by,
            "test_answers_used": self.test_answers_used,
            # only when set, so that the tables and results of every other entry stay as they were
            **({"selected_on_training_data": True} if self.selected_on_training_data else {}),
            "self_scored": self.self_scored,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class DatasetRef:
    """A ground-truth store under ``submissions/_datasets/<name>``."""

    name: str
    root: Path
    title: str
    columns: str
    clip_len: float
    provenance: dict[str, Any] = field(default_factory=dict)

    def gt_path(self, split: str) -> Path:
        """``annotations/<split>.jsonl`` of the store, never outside it."""
        return path_inside(self.root, "annotations", f"{safe_name(split, 'split')}.jsonl", field="split")

    def variant_dir(self, variant: str) -> Path:
        """A masked variant's directory in the store, never outside it."""
        return path_inside(self.root, variant, field="masked_variant")


# --------------------------------------------------------------------------------------------
# yaml with line numbers


def load_yaml_with_lines(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse a yaml mapping; also return the 1-based line of each top-level key."""
    text = read_text(path, YAML_LIMITS, what="YAML file")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        raise ValidationError("invalid YAML (nested too deeply)", file=path) from None
    except ValueError as exc:  # not a YAMLError: e.g. an integer of more than 4300 digits
        raise ValidationError(f"invalid YAML ({exc})"[:200], file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(f"invalid YAML ({problem})", file=path, line=line) from None
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ValidationError("expected a mapping of fields at the top level", file=path)
    lines = {key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}
    return data, lines


def check_value(name: str, spec: Field, value: Any, fail: Any) -> Any:
    """Validate and normalize one field; ``fail(message)`` builds the error."""
    if value is None:
        if spec.required:
            raise fail("must not be empty")
        return None
    if spec.kind in ("str", "name", "url", "pattern"):
        if not isinstance(value, str) or not value.strip():
            raise fail(f"must be a non-empty string, got {short_repr(value)}")
        if len(value) > MAX_TEXT_FIELD:
            raise fail(f"must be at most {MAX_TEXT_FIELD} characters, got {len(value)}")
        if spec.kind == "name":
            try:
                safe_name(value, name)
            except ValidationError as exc:
                raise fail(exc.reason) from None
        if spec.kind == "url" and not is_strict_https_url(value):
            raise fail(f"must be an https URL of plain characters (no spaces, quotes, brackets or "
                       f"parentheses), got {short_repr(value)}")
        if spec.kind == "pattern":
            if "/" in value or "\\" in value or value.startswith("."):
                raise fail(f"must be a plain file name inside the entry, got {short_repr(value)}")
            if "{" in value.replace("{seed}", "") or "}" in value.replace("{seed}", ""):
                raise fail(f"may only use the placeholder {{seed}}, got {short_repr(value)}")
            example = value.format(seed=0)
            try:
                safe_name(example, name)
            except ValidationError as exc:
                raise fail(exc.reason) from None
            if not value.endswith((".jsonl", ".jsonl.gz")):
                raise fail(f"must name a .jsonl or .jsonl.gz file, got {short_repr(value)}")
        return value
    if spec.kind == "kind":
        if value not in KINDS:
            raise fail(f"must be one of {', '.join(KINDS)}, got {short_repr(value)}")
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise fail(f"must be true or false, got {short_repr(value)}")
        return value
    if spec.kind == "date":
        if isinstance(value, _dt.datetime):
            value = value.date()
        if isinstance(value, _dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return _dt.date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise fail(f"must be a date YYYY-MM-DD, got {short_repr(value)}")
    if spec.kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT_FIELD for v in value):
            raise fail(f"must be a list of strings, got {short_repr(value)}")
        return tuple(value)
    if spec.kind == "strategies":
        if not isinstance(value, list) or not all(isinstance(v, str) and v in STRATEGIES for v in value):
            raise fail(f"must be a list of strategies ({', '.join(STRATEGIES)}), got {short_repr(value)}")
        if len(set(value)) != len(value):
            raise fail(f"has repeated strategies: {short_repr(value)}")
        return tuple(value)
    if spec.kind == "seeds":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in value)
        ):
            raise fail(f"must be a non-empty list of non-negative integers below 2**63, got {short_repr(value)}")
        if len(set(value)) != len(value):
            raise fail(f"has repeated seeds: {value!r}")
        return tuple(value)
    raise AssertionError(spec.kind)


def load_submission(entry_dir: str | os.PathLike[str]) -> Submission:
    """Read and validate ``<entry_dir>/submission.yaml`` (schema only; files are checked by
    :func:`mrbench.leaderboard.runs.check_submission`). Errors name the file, the line and the field."""
    root = Path(entry_dir)
    path = root / SUBMISSION_FILE
    if not _ENTRY_ID.match(root.name):
        raise ValidationError(
            f"entry directory name {root.name!r} must match {_ENTRY_ID.pattern} (lower case, digits, . _ -)",
            file=root,
        )
    ensure_inside(path, root, "entry", file=path)
    data, lines = load_yaml_with_lines(path)
    unknown = sorted(set(data) - set(SCHEMA), key=str)
    if unknown:
        key = unknown[0]
        raise ValidationError(
            f"unknown field (allowed: {', '.join(SCHEMA)})", file=path, line=lines.get(key), field=key
        )
    values: dict[str, Any] = {}
    for name, spec in SCHEMA.items():
        if name not in data:
            if spec.required:
                raise ValidationError(f"missing field ({spec.help})", file=path, field=name)
            continue

        def fail(message: str, _name: str = name) -> ValidationError:
            return ValidationError(message, file=path, line=lines.get(_name), field=_name)

        values[name] = check_value(name, spec, data[name], fail)
    if values.get("predictions") is None:
        values.pop("predictions", None)
    if "masked_predictions" in data and data["masked_predictions"] is None:
        values["masked_predictions"] = None
    elif values.get("masked_predictions") is None:
        values.pop("masked_predictions", None)
    if values.get("masked_variant") is None:
        values.pop("masked_variant", None)
    sub = Submission(entry_id=root.name, root=root, **values)
    for key in ("predictions", "masked_predictions"):
        pattern = getattr(sub, key)
        if pattern is not None and len(sub.seeds) > 1 and "{seed}" not in pattern:
            raise ValidationError(
                "must contain {seed} when there are several seeds", file=path, line=lines.get(key), field=key
            )
    if sub.masked_predictions is not None and sub.masked_predictions == sub.predictions:
        raise ValidationError(
            "must differ from 'predictions'", file=path, line=lines.get("masked_predictions"), field="masked_predictions"
        )
    return sub


def load_dataset_ref(submissions_root: str | os.PathLike[str], name: str) -> DatasetRef:
    """Read ``_datasets/<name>/source.yaml``: ``title``, ``columns`` (a column profile),
    ``clip_len`` and free-form ``provenance`` (how the ground truth was made)."""
    root = path_inside(Path(submissions_root) / DATASETS_DIR, safe_name(name, "dataset"), field="dataset")
    path = root / SOURCE_FILE
    if not path.is_file():
        raise MrbenchError(f"dataset {name!r} is not in {Path(submissions_root) / DATASETS_DIR} (no {path})")
    ensure_inside(path, root, "dataset", file=path)
    data, lines = load_yaml_with_lines(path)
    for key in ("title", "columns", "clip_len"):
        if key not in data:
            raise ValidationError("missing field", file=path, field=key)
    if data["columns"] not in COLUMN_PROFILES:
        raise ValidationError(
            f"must be one of {', '.join(COLUMN_PROFILES)}", file=path, line=lines.get("columns"), field="columns"
        )
    clip_len = data["clip_len"]
    if not finite_number(clip_len) or not MIN_CLIP_LEN <= clip_len <= MAX_CLIP_LEN:
        raise ValidationError(f"must be a number of seconds in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}]", file=path,
                              line=lines.get("clip_len"), field="clip_len")
    if not isinstance(data["title"], str) or not data["title"].strip() or len(data["title"]) > MAX_TEXT_FIELD:
        raise ValidationError(f"must be a non-empty string of at most {MAX_TEXT_FIELD} characters", file=path,
                              line=lines.get("title"), field="title")
    if not isinstance(data.get("provenance") or {}, dict):
        raise ValidationError("must be a mapping", file=path, line=lines.get("provenance"), field="provenance")
    return DatasetRef(
        name=name,
        root=root,
        title=str(data["title"]),
        columns=data["columns"],
        clip_len=float(clip_len),
        provenance=data.get("provenance") or {},
    )


def find_entries(submissions_root: str | os.PathLike[str]) -> list[Path]:
    """Entry directories under a submissions root, sorted by name."""
    root = Path(submissions_root)
    if not root.is_dir():
        raise MrbenchError(f"{root} is not a directory")
    entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    for entry in entries:
        ensure_inside(entry, root, "entry", file=entry)
    return entries


def resolve_files(sub: Submission, ref: DatasetRef) -> None:
    """Check that every file the entry names exists, inside the entry or the dataset store
    (symlinks resolved): predictions, ground truth, variant."""
    yaml_path = sub.yaml_path
    ensure_inside(ref.gt_path(sub.split), ref.root, "split", file=yaml_path)
    if not ref.gt_path(sub.split).is_file():
        raise ValidationError(
            f"dataset {ref.name!r} has no ground truth for this split ({ref.gt_path(sub.split)} is absent)",
            file=yaml_path,
            field="split",
        )
    for seed in sub.seeds:
        path = sub.prediction_path(seed)
        if not path.is_file():
            raise ValidationError(f"prediction file for seed {seed} is absent: {path}", file=yaml_path, field="predictions")
        masked = sub.masked_path(seed)
        if masked is not None and not masked.is_file():
            raise ValidationError(
                f"masked prediction file for seed {seed} is absent: {masked} (set masked_predictions: null if there are none)",
                file=yaml_path,
                field="masked_predictions",
            )
    if sub.masked_predictions is not None:
        variant = ref.variant_dir(sub.masked_variant)
        for rel in ("manifest.json", f"annotations/{sub.split}.jsonl"):
            ensure_inside(variant / rel, ref.root, "masked_variant", file=yaml_path)
        if not (variant / "manifest.json").is_file():
            raise ValidationError(
                f"dataset {ref.name!r} has no masked variant {sub.masked_variant!r} ({variant / 'manifest.json'} is absent)",
                file=yaml_path,
                field="masked_variant",
            )


def entry_root_of(entry_dir: Path) -> Path:
    """The submissions root an entry lives in (its parent directory)."""
    return entry_dir.resolve().parent
