"""Probes that measure the planted cues of a synthetic dataset without any model.

* The **context-only probe** predicts a query's concept from the video's *context* clips alone
  (every clip overlapping a ground-truth window is excluded): each clip is L2-normalized, as the
  DETR-family loaders do, the context clips are averaged per feature type, the per-type means are
  L2-normalized and concatenated. A nearest-centroid (cosine) or a softmax-regression classifier
  is fit on one split and scored on others. Above chance means the context carries the concept
  (scene and flank cues); at chance means it does not.
* The **blind position prior** (:class:`mrbench.baselines.PositionPrior`, the leaderboard's
  baseline) predicts the same window (as fractions of the duration) for every query: the most
  frequent normalized training window. Its R1@t measures how much the window position alone
  gives away.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from mrbench.baselines import PositionPrior
from mrbench.data.dataset import DatasetDir
from mrbench.data.schema import Query
from mrbench.errors import MrbenchError
from mrbench.metrics.retrieval import best_gt_for_top1, threshold_hits


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def context_vector(
    features: Mapping[str, np.ndarray], windows: Sequence[Sequence[float]], clip_len: float
) -> np.ndarray:
    """The context vector of one query: per feature type (in ``features`` order) the
    L2-normalized mean of the L2-normalized clips that overlap no window, concatenated.

    Clip ``i`` covers ``[i*clip_len, (i+1)*clip_len)``; when every clip is a moment clip the
    type's block is zero.
    """
    parts = []
    for array in features.values():
        n = array.shape[0]
        starts = np.arange(n) * clip_len
        moment = np.zeros(n, dtype=bool)
        for s, e in windows:
            moment |= (starts < e) & (starts + clip_len > s)
        clips = _l2(array.astype(np.float64))[~moment]
        parts.append(_l2(clips.mean(axis=0)) if clips.size else np.zeros(array.shape[1]))
    return np.concatenate(parts)


def context_vectors(
    directory: str | os.PathLike[str], split: str, types: Sequence[str] | None = None
) -> tuple[np.ndarray, list[Query]]:
    """``[n_queries, sum of dims]`` context vectors (:func:`context_vector`) of ``split`` and its
    records, in file order."""
    data = DatasetDir(directory)
    info = data.info()
    store = data.store()
    records = data.load(split, require_windows=True).records
    types = list(types or info.video_features)
    rows = [context_vector(store.load_video(r.vid, types), r.windows, info.clip_len) for r in records]
    return np.stack(rows) if rows else np.zeros((0, 0)), records


def concepts(directory: str | os.PathLike[str], records: Sequence[Query]) -> np.ndarray:
    """The true concept of each record, read from ``truth.parquet``."""
    import pyarrow.parquet as pq

    path = DatasetDir(directory).root / "truth.parquet"
    if not path.is_file():
        raise MrbenchError(f"{path} is absent: the probe needs a synthetic dataset's truth table")
    table = pq.read_table(path, columns=["qid", "concept"]).to_pydict()
    by_qid = {str(q): c for q, c in zip(table["qid"], table["concept"], strict=True)}
    try:
        return np.array([by_qid[str(r.qid)] for r in records], dtype=int)
    except KeyError as exc:
        raise MrbenchError(f"{path}: no truth for qid {exc.args[0]}") from None


class NearestCentroid:
    """Cosine nearest-centroid classifier: class centroid = L2-normalized mean of its rows."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> NearestCentroid:
        self.classes_ = np.unique(y)
        self.centroids_ = _l2(np.stack([x[y == c].mean(axis=0) for c in self.classes_]))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(_l2(x) @ self.centroids_.T, axis=1)]


class SoftmaxRegression:
    """Multinomial logistic regression on standardized features, full-batch gradient descent
    on the mean cross-entropy plus ``l2 / 2 * ||W||^2``."""

    def __init__(self, l2: float = 1e-2, lr: float = 0.5, steps: int = 300) -> None:
        self.l2, self.lr, self.steps = l2, lr, steps

    def fit(self, x: np.ndarray, y: np.ndarray) -> SoftmaxRegression:
        self.classes_, target = np.unique(y, return_inverse=True)
        self.mean_, self.scale_ = x.mean(axis=0), x.std(axis=0) + 1e-8
        z = (x - self.mean_) / self.scale_
        onehot = np.eye(self.classes_.size)[target]
        self.w_ = np.zeros((z.shape[1], self.classes_.size))
        self.b_ = np.zeros(self.classes_.size)
        for _ in range(self.steps):
            p = self._softmax(z @ self.w_ + self.b_)
            grad = (p - onehot) / len(z)
            self.w_ -= self.lr * (z.T @ grad + self.l2 * self.w_)
            self.b_ -= self.lr * grad.sum(axis=0)
        return self

    @staticmethod
    def _softmax(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean_) / self.scale_
        return self.classes_[np.argmax(z @ self.w_ + self.b_, axis=1)]


def context_probe(
    directory: str | os.PathLike[str],
    train: str = "train",
    test: Sequence[str] = ("val", "val_ood"),
    method: str = "centroid",
) -> dict[str, float]:
    """Concept accuracy of the context-only probe fit on ``train``, per split in ``test``
    (fractions in [0, 1]); ``"chance"`` is the accuracy of always predicting the most frequent
    training concept, measured on the first test split."""
    if method not in ("centroid", "softmax"):
        raise MrbenchError(f"probe method must be 'centroid' or 'softmax', got {method!r}")
    x_train, records = context_vectors(directory, train)
    y_train = concepts(directory, records)
    model = (NearestCentroid() if method == "centroid" else SoftmaxRegression()).fit(x_train, y_train)
    out = {}
    majority = np.bincount(y_train).argmax()
    for split in test:
        x, recs = context_vectors(directory, split)
        y = concepts(directory, recs)
        out[split] = float(np.mean(model.predict(x) == y))
        out.setdefault("chance", float(np.mean(y == majority)))
    return out


# --- the blind position prior, scored with mrbench.metrics -----------------------------------------
def top1_r1(top1: np.ndarray, records: Sequence[Query], threshold: float = 0.5) -> float:
    """R1@threshold in [0, 1] of top-1 windows ``top1 [Q, 2]`` (seconds) against ``records``'
    windows, computed as the scorer does (:func:`mrbench.metrics.best_gt_for_top1`)."""
    if not len(records):
        return float("nan")
    width = max(1, max(len(r.windows or []) for r in records))
    gt = np.zeros((len(records), width, 2))
    mask = np.zeros((len(records), width), dtype=bool)
    for row, record in enumerate(records):
        windows = record.windows or []
        if windows:
            gt[row, : len(windows)] = windows
            mask[row, : len(windows)] = True
    _, iou = best_gt_for_top1(np.asarray(top1, dtype=float).reshape(-1, 2), gt, mask)
    return float(np.mean(threshold_hits(iou, (threshold,))[:, 0]))


#: The probe's grid: coarser than the leaderboard baseline's 20 cells, so that the most frequent
#: cell is not diluted by moment lengths (at 20 cells the planted position cue barely moves it).
PROBE_BINS = 10


def position_prior_r1(
    train: Sequence[Query], test: Sequence[Query], threshold: float = 0.5, bins: int = PROBE_BINS,
) -> float:
    """R1@threshold on ``test`` of the blind position-prior baseline
    (:class:`mrbench.baselines.PositionPrior`, on a grid of ``bins`` cells) fitted on ``train``:
    its top-1 window, the most frequent normalized training window, scaled to each test video."""
    prior = PositionPrior.fit(train, bins=bins)
    top1 = np.array([prior.top1(record.duration) for record in test]).reshape(-1, 2)
    return top1_r1(top1, test, threshold)
