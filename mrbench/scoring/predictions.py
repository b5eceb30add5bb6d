"""Reading and validating prediction files (community JSONL) into arrays aligned with the GT.

One JSON object per line: ``qid``, ``pred_relevant_windows`` ``[[start, end, score], ...]``
(seconds, best first) and/or ``pred_saliency_scores`` (one float per clip). Other keys
(``query``, ``vid``, ...) are ignored. Errors name file, line, qid and field.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrbench.errors import ValidationError
from mrbench.io import ReadLimits, finite_number, json_lines, json_loads, limit_factor, read_text
from mrbench.scoring.groundtruth import GroundTruth

WINDOWS_KEY = "pred_relevant_windows"
SALIENCY_KEY = "pred_saliency_scores"
#: Predictions per query that any metric looks at (mAP keeps the first ten listed).
MAX_WINDOWS = 10

Records = list[tuple[int, Any]]

#: Bounds on a prediction file, per ground-truth query: published files hold about 2 KB per line
#: for 75 clips, so these leave a wide margin (``--size-limit-factor`` scales them).
LINE_CHARS_BASE = 65_536
LINE_CHARS_PER_CLIP = 64
BYTES_PER_QUERY = 16_384
EXTRA_LINES = 1_000


def prediction_limits(gt: GroundTruth, factor: float | None = None) -> ReadLimits:
    """Bounds on a prediction file for ground truth ``gt``: lines, characters per line and
    bytes after decompression grow with its queries and clips."""
    max_clips = int(gt.n_clips.max()) if len(gt) else 0
    line_chars = LINE_CHARS_BASE + LINE_CHARS_PER_CLIP * max_clips
    limits = ReadLimits(
        max_bytes=len(gt) * (BYTES_PER_QUERY + LINE_CHARS_PER_CLIP * max_clips) + (1 << 20),
        max_lines=2 * len(gt) + EXTRA_LINES,
        max_line_chars=line_chars,
        why=f"the bound for a ground truth of {len(gt)} queries of up to {max_clips} clips",
    )
    return limits.scaled(limit_factor(factor))


@dataclass
class PredictionSet:
    """One prediction file aligned with the ground truth.

    Rows follow the file's order, then the GT's missing queries (``present`` False, scored 0).
    ``gt_rows [Q]`` maps each row to its GT row. ``windows [Q, K, 3]`` keeps the first ``K <= 10``
    listed windows (``n_pred [Q]`` real ones). ``saliency [Q, C]`` is cut or zero-padded to each
    video's clips; ``saliency_argmax [Q]`` is the argmax of the raw list.
    """

    name: str
    gt_rows: np.ndarray
    present: np.ndarray
    windows: np.ndarray | None
    n_pred: np.ndarray | None
    saliency: np.ndarray | None
    saliency_argmax: np.ndarray | None
    n_missing: int

    @property
    def top1(self) -> np.ndarray:
        """``[Q, 2]`` the first listed window of every query (zeros where missing)."""
        assert self.windows is not None
        return self.windows[:, 0, :2]


def read_records(source: str | os.PathLike | Sequence[Any], name: str | None = None,
                 limits: ReadLimits | None = None) -> tuple[str, Records]:
    """``(name, [(line, object), ...])`` from a prediction file or an in-memory list of dicts.

    Files are JSONL (``.jsonl``, also gzipped as ``.jsonl.gz``) or a JSON array (``.json``,
    whose items are numbered like lines), read within ``limits`` (see :func:`prediction_limits`).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if path.is_dir():
            raise ValidationError("is a directory without bundle.json (not a submission bundle)", file=path)
        text = read_text(path, limits, what="prediction file")
        if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
            try:
                items = json_loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"invalid JSON ({exc.msg} at line {exc.lineno})", file=path) from None
            except RecursionError:
                raise ValidationError("invalid JSON (nested too deeply)", file=path) from None
            if limits is not None and limits.max_lines is not None and len(items) > limits.max_lines:
                raise limits.exceeded(f"{len(items)} items is more than the bound of {limits.max_lines}", file=path)
            return label, [(i + 1, obj) for i, obj in enumerate(items)]
        return label, parse_jsonl(text, label, limits)
    return name or "<predictions>", [(i + 1, obj) for i, obj in enumerate(source)]


def parse_jsonl(text: str, name: str, limits: ReadLimits | None = None) -> Records:
    """Parse JSONL text (any line ending, blank lines skipped); bad JSON names file and line."""
    return list(json_lines(text, name, limits))


#: Python types of JSON numbers (``true``/``false`` load as bool, which is an int subtype).
_NUMBER_TYPES = {int, float}


def align_predictions(
    name: str, records: Records, gt: GroundTruth, *, allow_missing: bool = False
) -> PredictionSet:
    """Validate ``records`` against ``gt`` and pack them into a :class:`PredictionSet`.

    Errors (:class:`ValidationError`): not an object, missing ``qid`` or prediction field, bad
    qid type, qid not in the GT, duplicate qid, windows that are not ``[start, end, score]`` of
    finite numbers with ``start <= end``, empty lists, non-finite saliency, and missing GT
    queries unless ``allow_missing``. A saliency list whose length differs from the video's
    clip count is cut or zero-padded as the reference does, with a warning.
    """
    if not records:
        raise ValidationError("no predictions", file=name)
    first = records[0][1]
    if not isinstance(first, dict):
        raise ValidationError("expected a JSON object", file=name, line=records[0][0])
    has_mr = WINDOWS_KEY in first
    has_hl = SALIENCY_KEY in first
    if not (has_mr or has_hl):
        raise ValidationError(f"needs '{WINDOWS_KEY}' and/or '{SALIENCY_KEY}'", file=name, line=records[0][0],
                              qid=first.get("qid"), field=WINDOWS_KEY)
    rows: list[int] = []
    seen: dict[Any, int] = {}
    windows: list[Any] = []
    window_counts: list[int] = []
    saliency: list[Any] = []
    saliency_counts: list[int] = []
    for line, obj in records:
        if not isinstance(obj, dict):
            raise ValidationError("expected a JSON object", file=name, line=line)
        if "qid" not in obj:
            raise ValidationError("missing field", file=name, line=line, field="qid")
        qid = obj["qid"]
        if isinstance(qid, bool) or not isinstance(qid, (int, str)):
            raise ValidationError(f"must be an int or a string, got {type(qid).__name__}",
                                  file=name, line=line, qid=qid, field="qid")
        row = gt.index.get(qid)
        if row is None:
            other = str(qid) if isinstance(qid, int) else (int(qid) if qid.lstrip("-").isdigit() else None)
            hint = f" (the ground truth has {other!r}: qid types must match)" if other in gt.index else ""
            raise ValidationError(f"qid is not in the ground truth {gt.source}{hint}",
                                  file=name, line=line, qid=qid, field="qid")
        if qid in seen:
            raise ValidationError(f"duplicate qid (first on line {seen[qid]})", file=name, line=line, qid=qid, field="qid")
        seen[qid] = line
        rows.append(row)
        if has_mr:
            value = obj.get(WINDOWS_KEY)
            if not isinstance(value, list) or not value:
                reason = "missing field" if value is None else "must be a non-empty list of [start, end, score]"
                raise ValidationError(reason, file=name, line=line, qid=qid, field=WINDOWS_KEY)
            windows.extend(value)
            window_counts.append(len(value))
        if has_hl:
            value = obj.get(SALIENCY_KEY)
            if not isinstance(value, list) or not value:
                reason = "missing field" if value is None else "must be a non-empty list of numbers"
                raise ValidationError(reason, file=name, line=line, qid=qid, field=SALIENCY_KEY)
            saliency.extend(value)
            saliency_counts.append(len(value))

    listed = set(rows)
    missing = [r for r in range(len(gt)) if r not in listed] if len(rows) < len(gt) else []
    gt_rows = np.asarray(rows + missing, dtype=int)
    n_rows = len(gt_rows)
    present = np.arange(n_rows) < len(rows)
    result = PredictionSet(name, gt_rows, present, None, None, None, None, len(missing))
    if has_mr:
        result.windows, result.n_pred = _pack_windows(name, records, windows, window_counts, n_rows)
    if has_hl:
        result.saliency, result.saliency_argmax = _pack_saliency(
            name, records, saliency, saliency_counts, gt, gt_rows, n_rows
        )
    if missing and not allow_missing:
        shown = ", ".join(repr(gt.qids[r]) for r in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ValidationError(
            f"{len(missing)} ground-truth queries have no prediction ({shown}); pass --allow-missing "
            "(allow_missing=True) to score them as zero",
            file=name, field="qid",
        )
    return result


def _locate(counts: list[int], flat_index: int) -> tuple[int, int]:
    """(record index, item index within the record) of a position in the flattened lists."""
    ends = np.cumsum(counts)
    record = int(np.searchsorted(ends, flat_index, side="right"))
    return record, flat_index - int(ends[record] - counts[record])


def _pack_windows(
    name: str, records: Records, flat: list[Any], counts: list[int], n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        array = np.array(flat)
        ok = array.ndim == 2 and array.shape[1] == 3 and array.dtype.kind in "fi"
        ok = ok and {type(v) for window in flat for v in window} <= _NUMBER_TYPES  # JSON true/false
    except (ValueError, TypeError, OverflowError):
        ok = False
    if not ok:
        for index, window in enumerate(flat):
            if not (isinstance(window, list) and len(window) == 3 and all(finite_number(v) for v in window)):
                record, item = _locate(counts, index)
                line, obj = records[record]
                raise ValidationError(f"window {item} must be [start, end, score] numbers, got {window!r}",
                                      file=name, line=line, qid=obj["qid"], field=WINDOWS_KEY)
        raise ValidationError("malformed windows", file=name, field=WINDOWS_KEY)  # pragma: no cover
    array = array.astype(float)
    finite = np.isfinite(array).all(axis=1)
    ordered = array[:, 0] <= array[:, 1]
    bad = np.flatnonzero(~(finite & ordered))
    if len(bad):
        record, item = _locate(counts, int(bad[0]))
        line, obj = records[record]
        window = flat[int(bad[0])]
        reason = "is not finite (NaN/inf)" if not finite[bad[0]] else "is reversed (start > end)"
        raise ValidationError(f"window {item} {window!r} {reason}", file=name, line=line, qid=obj["qid"], field=WINDOWS_KEY)
    counts_arr = np.asarray(counts)
    keep = np.minimum(counts_arr, MAX_WINDOWS)
    width = int(keep.max())
    position = np.arange(len(array)) - np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
    row = np.repeat(np.arange(len(counts_arr)), counts_arr)
    take = position < MAX_WINDOWS
    packed = np.zeros((n_rows, width, 3))
    packed[row[take], position[take]] = array[take]
    n_pred = np.zeros(n_rows, dtype=int)
    n_pred[: len(keep)] = keep
    return packed, n_pred


def _pack_saliency(
    name: str,
    records: Records,
    flat: list[Any],
    counts: list[int],
    gt: GroundTruth,
    gt_rows: np.ndarray,
    n_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    try:
        array = np.array(flat)
        ok = array.ndim == 1 and array.dtype.kind in "fi" and {type(v) for v in flat} <= _NUMBER_TYPES
    except (ValueError, TypeError, OverflowError):
        ok = False
    if ok:
        array = array.astype(float)
        bad = np.flatnonzero(~np.isfinite(array))
    if not ok or len(bad):
        index = next(i for i, v in enumerate(flat) if not finite_number(v)) if not ok else int(bad[0])
        record, item = _locate(counts, index)
        line, obj = records[record]
        raise ValidationError(f"score {item} must be a finite number, got {flat[index]!r}",
                              file=name, line=line, qid=obj["qid"], field=SALIENCY_KEY)
    counts_arr = np.asarray(counts)
    n_present = len(counts_arr)
    n_clips = gt.n_clips[gt_rows]
    width = max(int(n_clips.max()), 1)
    position = np.arange(len(array)) - np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
    row = np.repeat(np.arange(n_present), counts_arr)
    take = position < n_clips[row]
    scores = np.zeros((n_rows, width))
    scores[row[take], position[take]] = array[take]
    raw = np.full((n_present, int(counts_arr.max())), -np.inf)
    raw[row, position] = array
    argmax = np.zeros(n_rows, dtype=int)
    argmax[:n_present] = np.argmax(raw, axis=1)
    mismatch = np.flatnonzero(counts_arr != n_clips[:n_present])
    if len(mismatch):
        first = int(mismatch[0])
        line, obj = records[first]
        warnings.warn(
            f"{name}: {len(mismatch)} queries have {SALIENCY_KEY} of a length other than the video's "
            f"clip count (first: line {line}, qid {obj['qid']!r}: {counts_arr[first]} vs {n_clips[first]}); "
            "cut or zero-padded like the reference evaluator",
            UserWarning,
            stacklevel=3,
        )
    return scores, argmax
