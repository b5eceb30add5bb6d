"""The annotation schema: one typed record per query, and the community JSONL reader/writer.

The community format (Moment-DETR / QVHighlights, also used for Charades-STA, TACoS and
ActivityNet-Captions) is one JSON object per line with the keys ``qid, query, vid, duration,
relevant_windows`` and, for QVHighlights, ``relevant_clip_ids, saliency_scores``. Reading then
writing a file reproduces it byte for byte: key order, unknown keys, number spelling (``150`` vs
``150.0``), separators, line endings and the presence of a final newline are all kept.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrbench.errors import ValidationError
from mrbench.io import (
    MAX_ANNOTATION_LINE_CHARS,
    MAX_ANNOTATION_LINES,
    MAX_DURATION,
    MAX_TEXT_BYTES,
    ReadLimits,
    atomic_write_bytes,
    finite_number,
    json_lines,
    limit_factor,
    read_text,
    safe_name,
    short_repr,
    split_lines,
)

Qid = int | str

#: Keys of the community format, in the order QVHighlights files use.
STANDARD_KEYS = (
    "qid",
    "query",
    "duration",
    "vid",
    "relevant_clip_ids",
    "saliency_scores",
    "relevant_windows",
)
REQUIRED_KEYS = ("qid", "query", "vid", "duration")

#: Windows may end this many seconds past the video's duration (rounding in real files:
#: ActivityNet-Captions val has five windows ending 0.01 s after the video). Beyond it: an error.
DURATION_TOLERANCE = 0.05


@dataclass
class Query:
    """One annotated query.

    ``windows`` are ``[start, end]`` pairs in seconds (``None`` when the file carries no ground
    truth, as in QVHighlights' test release). ``relevant_clip_ids`` and ``saliency_scores`` are the
    QVHighlights highlight labels: clip indices (of ``clip_len``-second clips) and one row of
    annotator scores per listed clip.
    """

    qid: Qid
    query: str
    vid: str
    duration: float
    windows: list[list[float]] | None = None
    relevant_clip_ids: list[int] | None = None
    saliency_scores: list[list[int]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key_order: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The community-format dict, keys in the order they were read (or the standard order)."""
        values: dict[str, Any] = {
            "qid": self.qid,
            "query": self.query,
            "duration": self.duration,
            "vid": self.vid,
            "relevant_clip_ids": self.relevant_clip_ids,
            "saliency_scores": self.saliency_scores,
            "relevant_windows": self.windows,
            **self.extra,
        }
        order = self.key_order or tuple(STANDARD_KEYS) + tuple(self.extra)
        out = {key: values[key] for key in order if values.get(key) is not None}
        for key, value in values.items():  # keys set after reading (e.g. windows added)
            if key not in out and value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(
        cls,
        record: dict[str, Any],
        *,
        file: str | None = None,
        line: int | None = None,
        require_windows: bool = False,
    ) -> Query:
        """Build and validate a record; errors name ``file``, ``line``, qid and field."""
        qid = record.get("qid")
        for key in REQUIRED_KEYS:
            if key not in record:
                raise ValidationError("missing field", file=file, line=line, qid=qid, field=key)

        def fail(message: str, key: str) -> ValidationError:
            return ValidationError(message, file=file, line=line, qid=qid, field=key)

        if isinstance(qid, bool) or not isinstance(qid, (int, str)):
            raise fail(f"must be an int or a string, got {type(qid).__name__}", "qid")
        if not isinstance(record["query"], str):
            raise fail("must be a string", "query")
        if not isinstance(record["vid"], str) or not record["vid"]:
            raise fail("must be a non-empty string", "vid")
        duration = record["duration"]
        if not finite_number(duration) or not 0 < duration <= MAX_DURATION:
            raise fail(f"must be a positive number of seconds up to {MAX_DURATION:g}, got {short_repr(duration)}",
                       "duration")

        windows = record.get("relevant_windows")
        if windows is None:
            if require_windows:
                raise fail("missing field (ground-truth windows are required here)", "relevant_windows")
        else:
            _check_windows(windows, duration, fail)

        clip_ids = record.get("relevant_clip_ids")
        scores = record.get("saliency_scores")
        if clip_ids is not None:
            # type sets instead of per-element isinstance: bool is excluded since type(True) is bool
            if (
                not isinstance(clip_ids, list)
                or not {type(c) for c in clip_ids} <= {int}
                or (clip_ids and min(clip_ids) < 0)
            ):
                raise fail("must be a list of non-negative ints", "relevant_clip_ids")
            if len(set(clip_ids)) != len(clip_ids):
                raise fail("contains duplicate clip ids", "relevant_clip_ids")
        if scores is not None:
            if clip_ids is None:
                raise fail("given without relevant_clip_ids", "saliency_scores")
            if (
                not isinstance(scores, list)
                or not {type(row) for row in scores} <= {list}
                or not {type(s) for row in scores for s in row} <= {int, float}
            ):
                raise fail("must be a list of lists of numbers", "saliency_scores")
            if len(scores) != len(clip_ids):
                raise fail(
                    f"has {len(scores)} rows but relevant_clip_ids has {len(clip_ids)}",
                    "saliency_scores",
                )
            if len({len(row) for row in scores}) > 1:
                raise fail("rows have different numbers of annotators", "saliency_scores")

        extra = {k: v for k, v in record.items() if k not in STANDARD_KEYS}
        return cls(
            qid=qid,
            query=record["query"],
            vid=record["vid"],
            duration=duration,
            windows=windows,
            relevant_clip_ids=clip_ids,
            saliency_scores=scores,
            extra=extra,
            key_order=tuple(record),
        )


def _check_windows(windows: Any, duration: float, fail: Any) -> None:
    if not isinstance(windows, list) or not windows:
        raise fail("must be a non-empty list of [start, end] pairs", "relevant_windows")
    for index, window in enumerate(windows):
        if (
            not isinstance(window, list)
            or len(window) != 2
            or not all(finite_number(v) for v in window)
        ):
            raise fail(f"window {index} must be [start, end] with finite numbers", "relevant_windows")
        start, end = window
        if start >= end:
            raise fail(f"window {index} {window}: start >= end", "relevant_windows")
        if start < 0 or end > duration + DURATION_TOLERANCE:
            raise fail(
                f"window {index} {window} lies outside [0, duration={duration}]",
                "relevant_windows",
            )


@dataclass(frozen=True)
class FileStyle:
    """How a JSONL file was written, so that writing it back gives the same bytes."""

    separators: tuple[str, str] = (", ", ": ")
    newline: str = "\n"
    final_newline: bool = False
    ensure_ascii: bool = True
    escape_slash: bool = False  # PHP-style writers emit "\\/" (ActivityNet-Captions release)


def require_plain_names(annotations: Annotations) -> None:
    """Refuse, naming the file, qid and field, a vid or string qid that cannot be a file name
    (:func:`mrbench.io.safe_name`): where a dataset's features are written or read, they are."""
    for record in annotations.records:
        safe_name(record.vid, "vid", file=annotations.path, qid=record.qid)
        if isinstance(record.qid, str):
            safe_name(record.qid, "qid", file=annotations.path, qid=record.qid)


@dataclass
class Annotations:
    """The records of one annotation file plus the style it was written in."""

    records: list[Query]
    style: FileStyle = field(default_factory=FileStyle)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Query]:
        return iter(self.records)

    def by_qid(self) -> dict[Qid, Query]:
        return {record.qid: record for record in self.records}

    @property
    def vids(self) -> list[str]:
        """Video ids in first-appearance order, without repeats."""
        return list(dict.fromkeys(record.vid for record in self.records))


def _detect_style(text: str, first_line: str) -> FileStyle:
    newline = "\r\n" if "\r\n" in text else "\n"
    compact = '":' in first_line and '": ' not in first_line
    return FileStyle(
        separators=(",", ":") if compact else (", ", ": "),
        newline=newline,
        final_newline=text.endswith(newline),
        ensure_ascii=text.isascii(),
        escape_slash="\\/" in text,
    )


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; bad JSON names file and line."""
    yield from _iter_jsonl_text(read_text(path, what="JSON Lines file"), str(path))


def _iter_jsonl_text(text: str, name: str, limits: ReadLimits | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, obj in json_lines(text, name, limits):
        if not isinstance(obj, dict):
            raise ValidationError("expected a JSON object", file=name, line=number)
        yield number, obj


def read_annotations(
    path: str | os.PathLike[str], *, require_windows: bool = False
) -> Annotations:
    """Read and validate a community-format annotation JSONL file.

    Raises :class:`ValidationError` naming file, line, qid and field for bad JSON, missing
    fields, windows outside ``[0, duration]``, ``start >= end``, duplicate qids, and saliency
    rows that do not match the clip ids.
    """
    path = Path(path)
    limits = ReadLimits(MAX_TEXT_BYTES, MAX_ANNOTATION_LINES, MAX_ANNOTATION_LINE_CHARS,
                        why="the bound for an annotation file").scaled(limit_factor())
    text = read_text(path, limits, what="annotation file")
    records: list[Query] = []
    first_line: dict[Qid, int] = {}
    first_text = ""
    for number, obj in _iter_jsonl_text(text, str(path), limits):
        if not first_text:
            first_text = split_lines(text)[number - 1]
        record = Query.from_dict(obj, file=str(path), line=number, require_windows=require_windows)
        if record.qid in first_line:
            raise ValidationError(
                f"duplicate qid (first seen on line {first_line[record.qid]})",
                file=path,
                line=number,
                qid=record.qid,
                field="qid",
            )
        first_line[record.qid] = number
        records.append(record)
    return Annotations(records, _detect_style(text, first_text), path)


def dumps_annotations(records: Iterable[Query], style: FileStyle = FileStyle()) -> str:
    """The JSONL text for ``records`` in ``style``."""
    lines = [
        json.dumps(record.to_dict(), separators=style.separators, ensure_ascii=style.ensure_ascii)
        for record in records
    ]
    text = style.newline.join(lines)
    if style.escape_slash:
        text = text.replace("/", "\\/")
    if style.final_newline and lines:
        text += style.newline
    return text


def write_annotations(
    path: str | os.PathLike[str],
    records: Annotations | Sequence[Query],
    style: FileStyle | None = None,
) -> None:
    """Write records atomically; an :class:`Annotations` keeps its own style unless one is given."""
    if isinstance(records, Annotations):
        style = style or records.style
        records = records.records
    atomic_write_bytes(path, dumps_annotations(records, style or FileStyle()).encode("utf-8"))


def read_charades_raw(
    txt_path: str | os.PathLike[str],
    durations: str | os.PathLike[str] | dict[str, float],
    *,
    first_qid: int = 0,
    clip_to_duration: bool = True,
) -> list[Query]:
    """Read the original Charades-STA ``vid start end##sentence`` file.

    ``durations`` is the VSLNet ``charades.json`` (``{vid: {"duration": ...}}``) or a plain
    ``{vid: seconds}`` mapping. qids are assigned in line order from ``first_qid``. With
    ``clip_to_duration`` (the convention of the community JSONL release) window ends past the
    video's end are clipped to its duration; windows that are empty after clipping are errors.
    """
    txt_path = Path(txt_path)
    if isinstance(durations, dict):
        table = durations
    else:
        raw = json.loads(read_text(durations, what="durations file"))
        table = {vid: (v["duration"] if isinstance(v, dict) else v) for vid, v in raw.items()}
    records: list[Query] = []
    text = read_text(txt_path, what="Charades-STA file")
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        qid = first_qid + len(records)
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3:
            raise ValidationError(
                "expected 'vid start end##sentence'", file=txt_path, line=number, qid=qid
            )
        vid, start_text, end_text = parts
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise ValidationError(
                f"start/end are not numbers: {start_text!r} {end_text!r}",
                file=txt_path,
                line=number,
                qid=qid,
                field="relevant_windows",
            ) from None
        if vid not in table:
            raise ValidationError(
                "video has no duration in the durations file", file=txt_path, line=number, qid=qid, field="vid"
            )
        duration = float(table[vid])
        if clip_to_duration:
            end = min(end, duration)
        record = {
            "qid": qid,
            "query": sentence.strip(),
            "duration": duration,
            "vid": vid,
            "relevant_windows": [[start, end]],
        }
        records.append(Query.from_dict(record, file=str(txt_path), line=number, require_windows=True))
    return records


def warn_once(message: str) -> None:
    """Emit a user-facing warning (the CLI prints these to stderr)."""
    warnings.warn(message, UserWarning, stacklevel=2)
