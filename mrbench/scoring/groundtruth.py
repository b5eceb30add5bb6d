"""Ground truth as padded arrays: windows per query and, for QVHighlights, saliency labels."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mrbench.data.schema import Annotations, Qid, Query, read_annotations
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import MAX_CLIP_LEN, MIN_CLIP_LEN, check_allocation, finite_number, require_file

#: Clip length (seconds) of QVHighlights' saliency labels, as the reference evaluator hard-codes.
HL_CLIP_LEN = 2.0


@dataclass
class GroundTruth:
    """Ground truth of one split, one row per query in file order.

    ``windows [Q, G, 2]`` (``window_mask [Q, G]`` marks the real windows), ``duration [Q]``;
    ``saliency [Q, C, A]`` holds every clip's annotator scores (0 where not listed) for the first
    ``n_clips[q] = int(duration / clip_len)`` clips, or is ``None`` when the file has no labels.
    """

    qids: list[Qid]
    windows: np.ndarray
    window_mask: np.ndarray
    duration: np.ndarray
    saliency: np.ndarray | None
    n_clips: np.ndarray
    source: str
    lines: list[int | None]

    def __post_init__(self) -> None:
        self.index: dict[Qid, int] = {qid: i for i, qid in enumerate(self.qids)}

    def __len__(self) -> int:
        return len(self.qids)


GroundTruthLike = GroundTruth | Annotations | Sequence[Query] | Sequence[dict[str, Any]] | str | os.PathLike


def load_ground_truth(gt: GroundTruthLike, *, clip_len: float = HL_CLIP_LEN) -> GroundTruth:
    """Ground truth from a JSONL path, :class:`Annotations`, a list of :class:`Query` or of
    community-format dicts (validated like a file)."""
    if isinstance(gt, GroundTruth):
        return gt
    if not finite_number(clip_len) or not MIN_CLIP_LEN <= clip_len <= MAX_CLIP_LEN:
        raise MrbenchError(f"the clip length must lie in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}] seconds, got {clip_len!r}")
    lines: list[int | None]
    if isinstance(gt, (str, os.PathLike)):
        path = require_file(gt, "ground-truth file")
        stat = path.stat()
        return _load_file(str(path.resolve()), str(gt), stat.st_mtime_ns, stat.st_size, clip_len)
    if isinstance(gt, Annotations):
        records, source = gt.records, str(gt.path) if gt.path else "<ground truth>"
        lines = [None] * len(records)
    else:
        source = "<ground truth>"
        records = [
            r if isinstance(r, Query) else Query.from_dict(r, file=source, line=i + 1, require_windows=True)
            for i, r in enumerate(gt)
        ]
        lines = [i + 1 for i in range(len(records))]
    return build_ground_truth(records, source=source, clip_len=clip_len, lines=lines)


@functools.lru_cache(maxsize=8)
def _load_file(resolved: str, source: str, mtime_ns: int, size: int, clip_len: float) -> GroundTruth:
    """A ground-truth file, cached while its path, modification time and size are unchanged
    (the trainer and the leaderboard score many prediction files against the same one)."""
    del resolved, mtime_ns, size  # cache key only
    records = read_annotations(source, require_windows=True).records
    return build_ground_truth(records, source=source, clip_len=clip_len, lines=[None] * len(records))


def build_ground_truth(
    records: Sequence[Query], *, source: str, clip_len: float = HL_CLIP_LEN, lines: list[int | None] | None = None
) -> GroundTruth:
    """Pad the records' windows and saliency labels into arrays (errors name source and qid)."""
    lines = lines or [None] * len(records)
    if not records:
        raise ValidationError("the ground truth has no queries", file=source)
    seen: set[Qid] = set()
    counts = []
    flat: list[list[float]] = []
    for record, line in zip(records, lines, strict=True):
        if record.qid in seen:
            raise ValidationError("duplicate qid in the ground truth", file=source, line=line, qid=record.qid, field="qid")
        seen.add(record.qid)
        if not record.windows:
            raise ValidationError(
                "the ground truth has no relevant_windows for this query (test release without answers?)",
                file=source, line=line, qid=record.qid, field="relevant_windows",
            )
        counts.append(len(record.windows))
        flat.extend(record.windows)
    n_queries = len(records)
    counts_arr = np.asarray(counts)
    width = int(counts_arr.max())
    check_allocation((n_queries, width, 2), 8, "the ground-truth windows", file=source, field="relevant_windows")
    flat_arr = np.asarray(flat, dtype=float).reshape(-1, 2)
    bad = np.flatnonzero(~(flat_arr[:, 0] < flat_arr[:, 1]))
    if len(bad):
        row = int(np.searchsorted(np.cumsum(counts_arr), bad[0], side="right"))
        raise ValidationError(
            "a window has start >= end (or is not finite)",
            file=source, line=lines[row], qid=records[row].qid, field="relevant_windows",
        )
    windows = np.zeros((n_queries, width, 2))
    window_mask = np.arange(width)[None, :] < counts_arr[:, None]
    windows[window_mask] = flat_arr
    duration = np.asarray([float(r.duration) for r in records])
    n_clips = (duration / clip_len).astype(int)
    saliency = _saliency(records, lines, n_clips, source)
    return GroundTruth([r.qid for r in records], windows, window_mask, duration, saliency, n_clips, source, lines)


def _saliency(records: Sequence[Query], lines: list[int | None], n_clips: np.ndarray, source: str) -> np.ndarray | None:
    if not all(r.relevant_clip_ids is not None and r.saliency_scores is not None for r in records):
        return None
    ids_per_query = [r.relevant_clip_ids or [] for r in records]
    counts = np.asarray([len(ids) for ids in ids_per_query], dtype=int)
    flat_ids = np.asarray([c for ids in ids_per_query for c in ids], dtype=int)
    try:
        scores = np.asarray([row for r in records for row in r.saliency_scores or []], dtype=float)
    except ValueError:
        raise ValidationError("saliency_scores rows have different numbers of annotators across queries",
                              file=source, field="saliency_scores") from None
    n_ann = scores.shape[1] if scores.ndim == 2 else 3
    check_allocation((len(records), int(n_clips.max()), n_ann), 8, "the saliency labels", file=source,
                     field="duration")
    rows = np.repeat(np.arange(len(records)), counts)
    bad = np.flatnonzero(flat_ids >= n_clips[rows])
    bad_rows = sorted(set(rows[bad].tolist()) | set(np.flatnonzero(n_clips < 1).tolist()))
    if bad_rows:
        row = bad_rows[0]
        raise ValidationError(
            f"clip ids must lie below int(duration / clip_len) = {n_clips[row]}",
            file=source, line=lines[row], qid=records[row].qid, field="relevant_clip_ids",
        )
    labels = np.zeros((len(records), max(int(n_clips.max()), 1), n_ann))
    if len(flat_ids):
        labels[rows, flat_ids] = scores
    return labels
