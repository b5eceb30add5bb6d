"""Descriptive statistics of annotation splits (what ``mrbench data info`` prints), position-bias
diagnostics (joint start/end distribution, length share, JS divergence between splits) and the
start/end density figure."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mrbench.data.schema import Query
from mrbench.errors import MrbenchError
from mrbench.io import atomic_write_bytes


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


#: Bins per axis of the start/end histogram behind :func:`js_divergence` (10 x 10 cells of 0.1).
POSITION_BINS = 10


def normalized_windows(records: Sequence[Query]) -> np.ndarray:
    """``[W, 2]`` normalised (start, end) of every window (each divided by its video's duration,
    clipped to [0, 1]: ends may pass the duration by the schema's tolerance)."""
    pairs = [(float(w[0]) / float(r.duration), float(w[1]) / float(r.duration))
             for r in records for w in (r.windows or [])]
    return np.clip(np.array(pairs, dtype=float).reshape(-1, 2), 0.0, 1.0)


def start_end_histogram(records: Sequence[Query], bins: int = POSITION_BINS) -> np.ndarray:
    """Share of windows per (start bin, end bin) over [0, 1]^2, ``[bins, bins]`` summing to 1
    (all zero without windows). Rows: normalised start; columns: normalised end."""
    points = normalized_windows(records)
    counts = np.histogram2d(points[:, 0], points[:, 1], bins=bins, range=((0, 1), (0, 1)))[0]
    return counts / counts.sum() if counts.sum() else counts


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, so in [0, 1]) of two histograms of equal shape, each
    normalised to sum 1 first. No smoothing is needed: the mixture is positive wherever either is."""
    p, q = np.asarray(p, dtype=float).ravel(), np.asarray(q, dtype=float).ravel()
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("js_divergence needs two non-empty histograms of one shape")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, (kl(p) + kl(q)) / 2)


def split_divergence(a: Sequence[Query], b: Sequence[Query], bins: int = POSITION_BINS) -> float:
    """JS divergence (base 2) between the start/end histograms (``bins`` x ``bins``) of two splits."""
    return js_divergence(start_end_histogram(a, bins), start_end_histogram(b, bins))


@dataclass(frozen=True)
class PositionStats:
    """Position-bias statistics of one split, per window, positions normalised by duration.

    ``joint`` is :func:`start_end_histogram` (``POSITION_BINS`` per axis); ``length_share`` is
    ``(end - start) / duration``; ``js_vs_reference`` the JS divergence (base 2) of ``joint`` with
    the reference split's (0 for the reference itself).
    """

    windows: int
    start_mean: float
    end_mean: float
    start_end_correlation: float
    length_share_mean: float
    length_share_median: float
    length_share_deciles: tuple[float, ...]  # share of windows per tenth of the video's length
    joint: tuple[tuple[float, ...], ...]
    reference: str
    js_vs_reference: float

    def as_dict(self) -> dict:
        return asdict(self)


def position_stats(splits: dict[str, Sequence[Query]], reference: str | None = None) -> dict[str, PositionStats | None]:
    """:class:`PositionStats` per split (None without windows), divergences against ``reference``
    (default: ``train`` when present and annotated, else the first split with windows)."""
    annotated = [name for name, records in splits.items() if len(normalized_windows(records))]
    if reference is None:
        reference = "train" if "train" in annotated else (annotated[0] if annotated else "")
    elif reference not in annotated:
        raise MrbenchError(f"reference split {reference!r} has no ground-truth windows "
                           f"(annotated: {', '.join(annotated) or 'none'})")
    base = start_end_histogram(splits[reference]) if reference else None
    out: dict[str, PositionStats | None] = {}
    for name, records in splits.items():
        points = normalized_windows(records)
        if base is None or not len(points):
            out[name] = None
            continue
        share = points[:, 1] - points[:, 0]
        joint = start_end_histogram(records)
        deciles = np.histogram(share, bins=10, range=(0, 1))[0] / len(share)
        correlation = (float(np.corrcoef(points[:, 0], points[:, 1])[0, 1])
                       if len(points) > 1 and points.std(axis=0).min() > 0 else float("nan"))
        out[name] = PositionStats(
            windows=len(points),
            start_mean=float(points[:, 0].mean()),
            end_mean=float(points[:, 1].mean()),
            start_end_correlation=correlation,
            length_share_mean=float(share.mean()),
            length_share_median=float(np.median(share)),
            length_share_deciles=tuple(float(d) for d in deciles),
            joint=tuple(tuple(float(v) for v in row) for row in joint),
            reference=reference,
            js_vs_reference=js_divergence(joint, base),
        )
    return out


def format_position_stats(stats: dict[str, PositionStats | None]) -> str:
    """A plain-text table with one column per annotated split and one row per statistic."""
    shown = {name: s for name, s in stats.items() if s is not None}
    if not shown:
        return "position bias: no split has ground-truth windows"
    reference = next(iter(shown.values())).reference
    rows = [
        ("start mean", lambda s: s.start_mean), ("end mean", lambda s: s.end_mean),
        ("corr(start,end)", lambda s: s.start_end_correlation),
        ("length/dur mean", lambda s: s.length_share_mean), ("length/dur median", lambda s: s.length_share_median),
        (f"JS vs {reference}", lambda s: s.js_vs_reference),
    ]
    width = max(10, *(len(name) + 2 for name in shown))
    lines = [f"Position bias per window (normalised by duration; JS: base 2 over {POSITION_BINS}x{POSITION_BINS} "
             f"start/end bins)",
             f"{'statistic':<18}" + "".join(f"{name:>{width}}" for name in shown)]
    lines.append("-" * len(lines[-1]))
    lines += [f"{label:<18}" + "".join(f"{value(s):>{width}.3f}" for s in shown.values()) for label, value in rows]
    return "\n".join(lines)


def plot_position_density(splits: dict[str, Sequence[Query]], out_png: str | os.PathLike[str],
                          bins: int = 20) -> None:
    """The classic start/end density figure: one panel per annotated split, normalised start (x)
    against normalised end (y), colour = share of the split's windows per cell (one scale for all
    panels). Written atomically as a PNG without timestamp (same input, same bytes)."""
    shown = {name: records for name, records in splits.items() if len(normalized_windows(records))}
    if not shown:
        raise MrbenchError("no split has ground-truth windows to plot")
    stats = position_stats(shown)
    histograms = {name: start_end_histogram(records, bins) for name, records in shown.items()}
    top = max(float(h.max()) for h in histograms.values())
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.style.context("default"):
        columns = min(4, len(shown))
        rows = -(-len(shown) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns + 1.0, 3.4 * rows), squeeze=False,
                                 layout="constrained")
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
        impossible = np.tril(np.ones((bins, bins), dtype=bool), k=-1)  # end bin below start bin
        image = None
        for index, (ax, (name, hist)) in enumerate(zip(axes.flat, histograms.items(), strict=False)):
            s = stats[name]
            assert s is not None
            image = ax.imshow(np.where(impossible, np.nan, hist).T, origin="lower", extent=(0, 1, 0, 1), vmin=0,
                              vmax=top, cmap=cmap, interpolation="nearest", aspect="equal")
            ax.set_title(f"{name} ({s.windows} windows)\nJS vs {s.reference}: {s.js_vs_reference:.3f}", fontsize=9)
            ax.set_xlabel("start / duration")
            if index % columns == 0:
                ax.set_ylabel("end / duration")
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        fig.colorbar(image, ax=axes, label="share of windows per cell", shrink=0.85)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100,
                    metadata={"Software": None, "Source": f"mrbench data info, matplotlib {matplotlib.__version__}"})
        plt.close(fig)
    atomic_write_bytes(out_png, buffer.getvalue())
