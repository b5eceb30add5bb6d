"""A masked variant on disk: found, loaded and validated in one place.

A variant is a folder with ``manifest.json`` (docs/contracts.md); several seeds of one masking
are the ``seed<k>/`` folders of a parent, taken in natural seed order (``seed2`` before
``seed10``). :func:`read_manifest` is the one parser of ``manifest.json``: every field it holds
is checked (types, ranges, names that become paths stay names, listed files stay inside the
variant) and errors name the file and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    MAX_CLIP_LEN,
    MAX_CLIPS,
    MIN_CLIP_LEN,
    finite_number,
    path_inside,
    read_text,
    safe_name,
)
from mrbench.masking.strategies import STRATEGIES

MANIFEST = "manifest.json"
#: what every manifest ``mrbench mask`` writes holds (a scoring-only manifest needs ``queries``)
MANIFEST_KEYS = ("source", "split", "strategy", "margin", "seed", "clip_len", "queries", "files")
QUERY_KEYS = ("vid", "source_vid", "n_clips", "masked_clips")
_SEED_DIR = re.compile(r"seed(\d+)")


def seed_dirs(out: str | os.PathLike[str], seeds: Sequence[int]) -> list[Path]:
    """Where ``mrbench mask`` writes the variants of ``seeds``: ``OUT`` for one seed,
    ``OUT/seed<k>`` for several (the contract)."""
    out = Path(out)
    return [out] if len(seeds) == 1 else [out / f"seed{s}" for s in seeds]


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders the digit runs of ``name`` as numbers (``seed2`` < ``seed10``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Variant:
    """One masked variant: the folder ``path`` holding ``manifest.json``."""

    path: Path

    @classmethod
    def find(cls, path: str | os.PathLike[str], marker: str = MANIFEST) -> list[Variant]:
        """``path`` itself when it holds ``marker``, else its ``seed*/`` folders that hold one, in
        natural seed order; :class:`MrbenchError` when there is neither."""
        path = Path(path)
        if (path / marker).is_file():
            return [cls(path)]
        seeds = sorted((p for p in path.glob("seed*") if (p / marker).is_file()), key=lambda p: natural_key(p.name))
        if not seeds:
            raise MrbenchError(f"{path} is not a masked variant (no {marker}, no seed*/{marker})")
        return [cls(p) for p in seeds]

    @classmethod
    def find_all(cls, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Variant]:
        """:meth:`find` over one path or several, in the order given."""
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        return [variant for item in items for variant in cls.find(item)]

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The manifest, every field it holds validated (:func:`read_manifest`, partial)."""
        return read_manifest(self.path, complete=False)

    @property
    def split(self) -> str:
        split = self.manifest.get("split")
        if split is None:
            raise ValidationError("missing field", file=self.manifest_path, field="split")
        return split

    @property
    def clip_len(self) -> float | None:
        """The clip length (s) the variant was built with; ``None`` when the manifest has none."""
        value = self.manifest.get("clip_len")
        return None if value is None else float(value)

    @property
    def annotations(self) -> Path:
        """The variant's annotation file (the original windows), which must exist."""
        path = self.path / "annotations" / f"{self.split}.jsonl"
        if not path.is_file():
            raise MrbenchError(f"{self.path}: manifest split {self.split!r} has no annotation file {path}")
        return path

    def masked_windows(self, qid: object) -> list[list[float]]:
        """The masked regions of query ``qid`` in seconds; an error naming the manifest, the qid and
        the field when the manifest has none for it."""
        entry = self.manifest["queries"].get(str(qid))
        region = entry.get("masked_windows") if isinstance(entry, dict) else None
        if not _number_pairs(region):
            raise ValidationError("no masked_windows (a list of [start, end] numbers) for this query",
                                  file=self.manifest_path, qid=qid, field="queries")
        return region


def _number_pairs(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(w, list) and len(w) == 2 and all(finite_number(v) for v in w) for w in value
    )


def read_manifest(directory: str | os.PathLike[str], *, complete: bool = True) -> dict[str, Any]:
    """Read and validate ``DIR/manifest.json``: the one check of its shape.

    ``complete`` (``mask verify``, ``mask --resume``): every field ``mrbench mask`` writes must be
    there. Otherwise (scoring) only ``queries`` is required. Either way every field present has
    its type and range, and every name or file in it stays inside the variant. Errors name the
    file and the field (and the qid).
    """
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(read_text(path, what="manifest"))
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"invalid JSON ({exc})"[:200], file=path) from None

    def fail(message: str, field: str, qid: object = None) -> ValidationError:
        return ValidationError(message, file=path, field=field, qid=qid)

    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object", file=path)
    required = MANIFEST_KEYS if complete else ("queries",)
    missing = [k for k in required if k not in data]
    if missing:
        raise fail(f"missing keys {', '.join(missing)}" if complete else "missing field", missing[0])
    if "split" in data:
        safe_name(data["split"], "split", file=path)
    if "strategy" in data and data["strategy"] not in STRATEGIES:
        raise fail(f"must be one of {', '.join(STRATEGIES)}", "strategy")
    if "margin" in data and (not finite_number(data["margin"]) or data["margin"] < 0):
        raise fail("must be a number >= 0", "margin")
    if "clip_len" in data and (not finite_number(data["clip_len"])
                               or not MIN_CLIP_LEN <= data["clip_len"] <= MAX_CLIP_LEN):
        raise fail(f"must be a number of seconds in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}]", "clip_len")
    if "seed" in data and (isinstance(data["seed"], bool) or not isinstance(data["seed"], int) or data["seed"] < 0):
        raise fail("must be a non-negative integer", "seed")
    if "source" in data and (not isinstance(data["source"], dict)
                             or (complete and not isinstance(data["source"].get("features"), str))):
        raise fail("must be an object with the source feature root" if complete else "must be an object", "source")
    types = data.get("types")
    if types is not None and (not isinstance(types, list) or not types):
        raise fail("must be a list of feature types", "types")
    for name in types or ():
        safe_name(name, "types", file=path)
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise fail("must map relative paths to sha256 digests", "files")
    for rel in files:
        path_inside(directory, *str(rel).split("/"), field="files", file=path)
    if not isinstance(data["queries"], dict):
        raise fail("must be an object of queries" if complete else "missing field", "queries")
    for key, entry in data["queries"].items():
        _check_query(entry, complete, lambda message, k=key: fail(message, "queries", k))
    return data


def _check_query(entry: object, complete: bool, fail: Callable[[str], ValidationError]) -> None:
    """One entry of a manifest's ``queries``: names, clip count and clip ranges in range."""
    if not isinstance(entry, dict):
        raise fail("must be an object")
    if complete and not all(k in entry for k in QUERY_KEYS):
        raise fail(f"must be an object with {', '.join(QUERY_KEYS[:-1])} and {QUERY_KEYS[-1]}")
    for key in ("vid", "source_vid", "context_vid", "donor_vid"):
        if key in entry:
            try:
                safe_name(entry[key], key)
            except ValidationError as exc:
                raise fail(f"{key} {exc.reason}") from None
    n_clips = entry.get("n_clips", MAX_CLIPS)
    if isinstance(n_clips, bool) or not isinstance(n_clips, int) or not 0 < n_clips <= MAX_CLIPS:
        raise fail(f"n_clips must be an integer in [1, {MAX_CLIPS}]")

    def clip_ranges(value: object, what: str) -> list[list[int]]:
        if not isinstance(value, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(type(v) is int for v in r) and 0 <= r[0] <= r[1] <= n_clips
            for r in value
        ):
            raise fail(f"{what} must be [first, last) clip ranges within n_clips")
        return value

    masked = clip_ranges(entry["masked_clips"], "masked_clips") if "masked_clips" in entry else []
    if complete and "masked_windows" in entry and not _number_pairs(entry["masked_windows"]):
        raise fail("masked_windows must be a list of [start, end] numbers")
    if "moment_clips" in entry:
        clip_ranges([entry["moment_clips"]], "moment_clips")
    if "donor_offsets" in entry:
        offsets = entry["donor_offsets"]
        if not isinstance(offsets, list) or len(offsets) != len(masked) or not all(
            type(v) is int and 0 <= v <= MAX_CLIPS for v in offsets
        ):
            raise fail("donor_offsets must hold one clip offset per masked range")
    if ("context_vid" in entry) != ("moment_clips" in entry) or ("donor_vid" in entry) != ("donor_offsets" in entry):
        raise fail("context_vid comes with moment_clips, donor_vid with donor_offsets")
