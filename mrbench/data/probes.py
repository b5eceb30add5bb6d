"""Probes that measure the planted cues of a synthetic dataset without any model.

* The **context-only probe** predicts a query's concept from the video's *context* clips alone
  (every clip overlapping a ground-truth window is excluded): each clip is L2-normalized, as the
  DETR-family loaders do, the context clips are averaged per feature type, the per-type means are
  L2-normalized and concatenated. A nearest-centroid (cosine) or a softmax-regression classifier
  is fit on one split and scored on others. Above chance means the context carries the concept
  (scene and flank cues); at chance means it does not.
* The **blind position-prior baseline** predicts the same window (as fractions of the duration)
  for every query: the one of a grid that maximizes R1@0.5 on the training queries. Its R1@t
  measures how much the window position alone gives away.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from mrbench.data.dataset import DatasetDir
from mrbench.data.schema import Query
from mrbench.errors import MrbenchError


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


# --- the blind position-prior baseline ------------------------------------------------------------
def _windows(records: Sequence[Query]) -> tuple[np.ndarray, np.ndarray]:
    """All windows as fractions of their video's duration ``[W, 2]`` and the record of each."""
    spans, owner = [], []
    for i, record in enumerate(records):
        for s, e in record.windows or []:
            spans.append((s / record.duration, e / record.duration))
            owner.append(i)
    return np.array(spans, dtype=float).reshape(-1, 2), np.array(owner, dtype=int)


def span_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Temporal IoU of spans ``pred [..., 2]`` and ``gt [..., 2]`` (broadcast); 0 when disjoint."""
    inter = np.clip(np.minimum(pred[..., 1], gt[..., 1]) - np.maximum(pred[..., 0], gt[..., 0]), 0, None)
    union = (pred[..., 1] - pred[..., 0]) + (gt[..., 1] - gt[..., 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def r1_at(pred: np.ndarray, records: Sequence[Query], threshold: float = 0.5) -> float:
    """R1@threshold in [0, 1]: fraction of records whose top-1 window ``pred[i]`` (seconds)
    reaches IoU >= threshold with its best-matching ground-truth window."""
    spans, owner = _windows(records)
    if not len(records):
        return float("nan")
    durations = np.array([r.duration for r in records], dtype=float)
    ious = span_iou(np.asarray(pred, dtype=float)[owner] / durations[owner, None], spans)
    best = np.zeros(len(records))
    np.maximum.at(best, owner, ious)
    return float(np.mean(best >= threshold))


def fit_position_prior(records: Sequence[Query], threshold: float = 0.5, grid: int = 50) -> tuple[float, float]:
    """The window ``(start, end)`` as fractions of the duration, on a ``1/grid`` lattice, that
    maximizes R1@threshold over ``records``; ties go to the highest mean best-window IoU, then to
    the earliest start and end."""
    spans, owner = _windows(records)
    ticks = np.arange(grid + 1) / grid
    starts, ends = np.meshgrid(ticks, ticks, indexing="ij")
    keep = ends > starts
    candidates = np.stack([starts[keep], ends[keep]], axis=1)  # [M, 2]
    ious = span_iou(candidates[:, None, :], spans[None, :, :])  # [M, W]
    if len(np.unique(owner)) != len(records):
        raise MrbenchError("every query needs at least one ground-truth window")
    best = np.maximum.reduceat(ious, np.searchsorted(owner, np.arange(len(records))), axis=1)
    hits = (best >= threshold).mean(axis=1)
    first = np.lexsort((-best.mean(axis=1), -hits))[0]  # most hits, then highest mean IoU
    s, e = candidates[first]
    return float(s), float(e)


def position_prior_r1(train: Sequence[Query], test: Sequence[Query], threshold: float = 0.5) -> float:
    """R1@threshold on ``test`` of the blind position prior fit on ``train``."""
    s, e = fit_position_prior(train, threshold)
    pred = np.array([[s * r.duration, e * r.duration] for r in test])
    return r1_at(pred, test, threshold)
