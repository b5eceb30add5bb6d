"""Blind baselines: predictions that never look at the video or the query text.

They are the floor every model must beat, and they make the spurious columns readable: a blind
prediction is the same on the original and on the masked video, so its spurious mAP equals its
standard mAP (ratio 1). Everything a baseline learns comes from the training split only.

- **position prior**: the training windows normalized by video duration, quantized on a grid of
  ``bins`` cells; the top-10 most frequent (start, end) cells, scaled to the video, scored by
  their frequency. Its top-1 is the most frequent normalized window. Saliency per clip = the share
  of training queries whose windows cover that normalized position.
- **length prior**: the training windows' normalized lengths, quantized on ``bins`` cells (length
  ``k / bins``, ``k`` in 1..bins); the top-10 most frequent lengths, each placed at the most
  frequent normalized centre cell of the training windows (shifted to stay inside the video),
  scored by their frequency. Its top-1 is the most frequent length at the most frequent centre.
  Saliency per clip = the summed scores of the predicted windows covering it.
- **whole video**: one window ``[0, duration]``; every clip equally salient.
- **uniform random** (seeded): ten windows with ``start < end`` drawn uniformly in
  ``[0, duration]``, random scores and saliency; the draw depends on ``(seed, qid)`` only, so a
  query gets the same prediction in every split file and in the masked variant.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mrbench.data.schema import Query
from mrbench.data.stats import normalized_windows
from mrbench.errors import MrbenchError

TOP_K = 10
DEFAULT_BINS = 20
_PROFILE_BINS = 200
_MIN_WIDTH = 0.01


def n_clips(duration: float, clip_len: float) -> int:
    """Clips of a video: ``ceil(duration / clip_len)`` (at least one)."""
    return max(1, math.ceil(duration / clip_len - 1e-9))


def _pred(query: Query, windows: list[list[float]], saliency: list[float]) -> dict[str, Any]:
    return {
        "qid": query.qid,
        "query": query.query,
        "vid": query.vid,
        "pred_relevant_windows": [
            [round(s, 4), min(round(e, 4), query.duration), round(c, 4)] for s, e, c in windows
        ],
        "pred_saliency_scores": [round(v, 3) for v in saliency],
    }


@dataclass(frozen=True)
class PositionPrior:
    """The position prior fitted on a training split (see the module docstring)."""

    cells: tuple[tuple[int, int, float], ...]  # (start cell, end cell, frequency), most frequent first
    bins: int
    coverage: tuple[float, ...]  # share of training queries covering each of _PROFILE_BINS positions

    @classmethod
    def fit(cls, train: Iterable[Query], bins: int = DEFAULT_BINS) -> PositionPrior:
        """Count quantized normalized windows; ties are broken by (start, end) ascending."""
        counts: Counter[tuple[int, int]] = Counter()
        covered = np.zeros(_PROFILE_BINS)
        centers = (np.arange(_PROFILE_BINS) + 0.5) / _PROFILE_BINS
        n_queries = 0
        for query in train:
            if not query.windows:
                continue
            n_queries += 1
            hit = np.zeros(_PROFILE_BINS, dtype=bool)
            for start, end in query.windows:
                s, e = start / query.duration, min(end / query.duration, 1.0)
                cs = min(int(round(s * bins)), bins - 1)
                ce = max(int(round(e * bins)), cs + 1)
                counts[(cs, ce)] += 1
                hit |= (centers >= s) & (centers <= e)
            covered += hit
        if not counts:
            raise MrbenchError("the training split has no windows to fit a position prior on")
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_K]
        cells = tuple((s, e, n / total) for (s, e), n in ranked)
        return cls(cells=cells, bins=bins, coverage=tuple(float(v) for v in covered / n_queries))

    def top1(self, duration: float) -> tuple[float, float]:
        """The most frequent normalized training window scaled to a video of ``duration``."""
        start, end, _ = self.cells[0]
        return start / self.bins * duration, min(end / self.bins, 1.0) * duration

    def predict(self, query: Query, clip_len: float) -> dict[str, Any]:
        d = query.duration
        windows = [[s / self.bins * d, min(e / self.bins, 1.0) * d, freq] for s, e, freq in self.cells]
        clips = n_clips(d, clip_len)
        centers = (np.arange(clips) + 0.5) * clip_len / d
        index = np.clip((centers * _PROFILE_BINS).astype(int), 0, _PROFILE_BINS - 1)
        saliency = np.asarray(self.coverage)[index]
        return _pred(query, windows, saliency.tolist())


@dataclass(frozen=True)
class LengthPrior:
    """The length prior fitted on a training split (see the module docstring)."""

    lengths: tuple[tuple[int, float], ...]  # (length cell k: length k / bins, frequency), most frequent first
    centre: int  # most frequent centre cell: centre (centre + 0.5) / bins
    bins: int

    @classmethod
    def fit(cls, train: Iterable[Query], bins: int = DEFAULT_BINS) -> LengthPrior:
        """Count quantized normalized lengths and centre cells; ties go to the smaller cell."""
        windows = normalized_windows(list(train))
        if not len(windows):
            raise MrbenchError("the training split has no windows to fit a length prior on")
        lengths = np.clip(np.round((windows[:, 1] - windows[:, 0]) * bins).astype(int), 1, bins)
        centres = np.clip(((windows[:, 0] + windows[:, 1]) / 2 * bins).astype(int), 0, bins - 1)
        cells, counts = np.unique(lengths, return_counts=True)
        ranked = np.lexsort((cells, -counts))[:TOP_K]
        centre_cells, centre_counts = np.unique(centres, return_counts=True)
        return cls(lengths=tuple((int(cells[i]), int(counts[i]) / len(windows)) for i in ranked),
                   centre=int(centre_cells[np.argmax(centre_counts)]), bins=bins)

    def window(self, cell: int) -> tuple[float, float]:
        """Normalized window of length ``cell / bins`` centred on the centre cell, inside [0, 1]."""
        length, centre = cell / self.bins, (self.centre + 0.5) / self.bins
        start = min(max(centre - length / 2, 0.0), 1.0 - length)
        return start, start + length

    def predict(self, query: Query, clip_len: float) -> dict[str, Any]:
        d = query.duration
        windows = [[s * d, e * d, freq] for (s, e), freq in ((self.window(k), f) for k, f in self.lengths)]
        clips = n_clips(d, clip_len)
        centers = (np.arange(clips) + 0.5) * clip_len
        saliency = np.zeros(clips)
        for start, end, freq in windows:
            saliency += freq * ((centers >= start) & (centers <= end))
        return _pred(query, windows, saliency.tolist())


def whole_video(query: Query, clip_len: float) -> dict[str, Any]:
    """One window covering the whole video; flat saliency."""
    return _pred(query, [[0.0, float(query.duration), 1.0]], [1.0] * n_clips(query.duration, clip_len))


def uniform_random(query: Query, clip_len: float, seed: int) -> dict[str, Any]:
    """Ten uniform windows (sorted endpoint pairs) with random scores, seeded by (seed, qid)."""
    rng = np.random.default_rng([seed, zlib.crc32(str(query.qid).encode())])
    d = float(query.duration)
    points = np.sort(rng.uniform(0.0, d, size=(TOP_K, 2)), axis=1)
    width = min(_MIN_WIDTH, d / 2)  # keep start < end after rounding to 4 decimals
    points[:, 1] = np.clip(np.maximum(points[:, 1], points[:, 0] + width), None, d)
    points[:, 0] = np.minimum(points[:, 0], points[:, 1] - width)
    scores = np.sort(rng.uniform(size=TOP_K))[::-1]
    windows = [[float(s), float(e), float(c)] for (s, e), c in zip(points, scores, strict=True)]
    saliency = rng.uniform(size=n_clips(d, clip_len))
    return _pred(query, windows, saliency.tolist())


Predictor = Callable[[Sequence[Query], Sequence[Query] | None, float, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class Baseline:
    """A registered blind baseline: its table title, a one-phrase description, whether it is
    fitted on the training split, whether its draw depends on the seed, and its predictor
    ``(queries, train, clip_len, seed) -> prediction dicts``."""

    name: str
    title: str
    how: str
    needs_train: bool
    seeded: bool
    predict: Predictor


def _fitted(prior: type[PositionPrior] | type[LengthPrior]) -> Predictor:
    """The predictor of a prior fitted on the training split."""

    def predict(queries: Sequence[Query], train: Sequence[Query] | None, clip_len: float, seed: int) -> list[dict[str, Any]]:
        fitted = prior.fit(train or ())
        return [fitted.predict(q, clip_len) for q in queries]

    return predict


REGISTRY: dict[str, Baseline] = {
    baseline.name: baseline
    for baseline in (
        Baseline("position_prior", "Blind: position prior",
                 "the most frequent normalized training windows (top 10, by frequency)",
                 needs_train=True, seeded=False, predict=_fitted(PositionPrior)),
        Baseline("length_prior", "Blind: length prior",
                 "the most frequent normalized training lengths (top 10, by frequency) at the most frequent centre",
                 needs_train=True, seeded=False, predict=_fitted(LengthPrior)),
        Baseline("whole_video", "Blind: whole video", "one window covering the whole video",
                 needs_train=False, seeded=False,
                 predict=lambda queries, train, clip_len, seed: [whole_video(q, clip_len) for q in queries]),
        Baseline("uniform_random", "Blind: uniform random",
                 "ten uniform random windows per query, seeded by (seed, qid)",
                 needs_train=False, seeded=True,
                 predict=lambda queries, train, clip_len, seed: [uniform_random(q, clip_len, seed) for q in queries]),
    )
}
#: the registered baselines' names, in table order
BASELINES = tuple(REGISTRY)


def get_baseline(name: str) -> Baseline:
    """The registered baseline ``name``."""
    if name not in REGISTRY:
        raise MrbenchError(f"unknown baseline {name!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def predict_baseline(
    name: str,
    queries: Iterable[Query],
    *,
    clip_len: float,
    train: Iterable[Query] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Prediction dicts (community format) of one baseline for every query of a split.

    ``train`` (the training split) is required by baselines fitted on it (``position_prior``,
    ``length_prior``);
    ``seed`` is used by seeded ones (``uniform_random``) only.
    """
    baseline = get_baseline(name)
    if baseline.needs_train and train is None:
        raise MrbenchError(f"the {baseline.name.replace('_', ' ')} needs the training split")
    return baseline.predict(list(queries), None if train is None else list(train), clip_len, seed)
