"""Descriptive statistics of an annotation split (what ``mrbench data info`` prints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mrbench.data.schema import Query


@dataclass(frozen=True)
class SplitStats:
    """Counts and window statistics of one split.

    Window length is ``end - start`` in seconds; normalized position is a window's start (and
    center) divided by its video's duration, so 0 is the video's start and 1 its end.
    """

    queries: int
    videos: int
    windows: int
    windows_per_query_max: int
    duration_mean: float
    duration_min: float
    duration_max: float
    length_mean: float
    length_median: float
    length_min: float
    length_max: float
    coverage_mean: float  # share of the video covered by the query's windows (union)
    start_norm_mean: float
    center_norm_mean: float
    center_norm_quintiles: tuple[float, float, float, float, float]  # share of windows per fifth
    short_windows: int  # (0, 10] s
    middle_windows: int  # (10, 30] s
    long_windows: int  # (30, inf) s

    def as_dict(self) -> dict:
        return asdict(self)


def split_stats(records: Sequence[Query]) -> SplitStats | None:
    """Statistics of ``records``; the window fields are NaN when the split has no ground truth."""
    if not records:
        return None
    durations = np.array([float(r.duration) for r in records])
    pairs = [(float(w[0]), float(w[1]), float(r.duration)) for r in records for w in (r.windows or [])]
    nan = float("nan")
    if pairs:
        starts, ends, video_len = (np.array(c) for c in zip(*pairs, strict=True))
        lengths = ends - starts
        centers = (starts + ends) / 2 / video_len
        counts = np.histogram(np.clip(centers, 0, 1), bins=5, range=(0, 1))[0]
        quintiles = tuple(float(c) for c in counts / counts.sum())
        coverage = np.array([_union_length(r.windows) / float(r.duration) for r in records if r.windows])
        window_fields = dict(
            length_mean=float(lengths.mean()),
            length_median=float(np.median(lengths)),
            length_min=float(lengths.min()),
            length_max=float(lengths.max()),
            coverage_mean=float(coverage.mean()),
            start_norm_mean=float((starts / video_len).mean()),
            center_norm_mean=float(centers.mean()),
            center_norm_quintiles=quintiles,
            short_windows=int(((lengths > 0) & (lengths <= 10)).sum()),
            middle_windows=int(((lengths > 10) & (lengths <= 30)).sum()),
            long_windows=int((lengths > 30).sum()),
        )
    else:
        window_fields = dict(
            length_mean=nan, length_median=nan, length_min=nan, length_max=nan, coverage_mean=nan,
            start_norm_mean=nan, center_norm_mean=nan, center_norm_quintiles=(nan,) * 5,
            short_windows=0, middle_windows=0, long_windows=0,
        )
    return SplitStats(
        queries=len(records),
        videos=len({r.vid for r in records}),
        windows=len(pairs),
        windows_per_query_max=max(len(r.windows or []) for r in records),
        duration_mean=float(durations.mean()),
        duration_min=float(durations.min()),
        duration_max=float(durations.max()),
        **window_fields,
    )


def _union_length(windows: list[list[float]]) -> float:
    total, reach = 0.0, -np.inf
    for start, end in sorted((float(s), float(e)) for s, e in windows):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def format_stats(title: str, stats: dict[str, SplitStats | None]) -> str:
    """A plain-text table: one row per split."""
    header = (f"{'split':<16}{'queries':>8}{'videos':>8}{'windows':>8}{'dur(s)':>8}"
              f"{'len mean':>9}{'len med':>8}{'len min':>8}{'len max':>8}{'cover':>7}"
              f"{'center':>7}  center by fifth of the video")
    lines = [title, header, "-" * len(header)]
    for split, s in stats.items():
        if s is None:
            lines.append(f"{split:<16}{0:>8}")
            continue
        fifths = " ".join(f"{q:.2f}" for q in s.center_norm_quintiles)
        lines.append(
            f"{split:<16}{s.queries:>8}{s.videos:>8}{s.windows:>8}{s.duration_mean:>8.1f}"
            f"{s.length_mean:>9.2f}{s.length_median:>8.2f}{s.length_min:>8.2f}{s.length_max:>8.2f}"
            f"{s.coverage_mean:>7.2f}{s.center_norm_mean:>7.2f}  {fifths}"
        )
    return "\n".join(lines)
