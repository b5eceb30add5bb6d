"""A query-blind "mask detector": how much can a model earn just by spotting the mask?

A masked variant (``mrbench mask``) replaces each query's moment plus a margin in the video
features (noise, zeros, the dataset mean, another video's clips) or, for ``recontext``, moves the
kept moment into another video's context. A model that never reads the query but finds the one
stretch of clips that does not belong to its video lands on the masked region, and so on the
ground truth the masked variant keeps. :func:`predict_mask_detector` is that model, without
training and without the query text: its spurious score on a variant is the score available from
the mask alone.

What it measures, per video:

1. **Features.** Every video feature source of the dataset (``dataset.json``), truncated to the
   shortest source and to the clips of the annotated duration. Each source is centred on the
   video's mean clip and divided by the root of its total variance (mean squared norm of the
   centred clips), so each source has total variance 1 and all sources weigh equally whatever
   their dimension or scale; the sources are then concatenated. (A constant source stays 0.)
2. **Statistic.** For every span ``[i, j)`` of the clip grid (``n_in = j - i`` clips inside,
   ``n_out = n - n_in`` outside, ``n_out > 0``: the whole video is not a candidate), the
   two-sample contrast of the span's mean clip against the mean clip of the rest, scaled like a
   t/z statistic::

       T(i, j) = ||mean_in - mean_out|| * sqrt(n_in * n_out / n)

   Under the null of exchangeable clips its expected square is the same for every span length,
   so short and long spans compete fairly. With the features centred, ``mean_in - mean_out =
   sum_in * n / (n_in * n_out)``, so ``T = ||S_j - S_i|| * sqrt(n / (n_in * n_out))`` with the
   prefix sums ``S``; the squared norms come from the Gram matrix of ``S``, so all O(n^2) spans
   cost one ``[n + 1, n + 1]`` matrix product. A noise, zero, mean (a constant run equal to the
   dataset mean is not the video's own mean) or swapped fill, and a moment put into a foreign
   context, all shift the span's mean away from the rest's.
3. **One side of a split.** A span touching an edge, ``[0, k)`` or ``[k, n)``, splits the video
   exactly as its complement does and has the same ``T``; only the shorter side is a candidate
   (``[0, k)`` on an even split): the anomaly is taken to be the minority.
4. **Windows.** Candidates ranked by ``T`` (ties: shorter, then earlier), greedy non-maximum
   suppression (a span with IoU > 0.7 against a kept one is dropped; IoU as
   :func:`mrbench.metrics.iou.paired_iou`, in seconds), the top ``max_windows`` kept, each
   ``[i * clip_len, min(j * clip_len, duration), T]``.
5. **Saliency.** Per clip, the largest ``T`` of any candidate span covering it.

A video of one clip has no candidate; its prediction is the whole video with score 0 (a valid
file rather than none).

Deterministic: no randomness, no training, the query text is copied into the output only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mrbench.data.dataset import DatasetDir
from mrbench.data.schema import Query, read_annotations
from mrbench.errors import MrbenchError
from mrbench.masking.variant import MANIFEST, Variant
from mrbench.metrics.iou import paired_iou

TOP_K = 10
NMS_IOU = 0.7


def predict_mask_detector(
    variant: str | os.PathLike[str], *, max_windows: int = TOP_K, split: str | None = None
) -> list[dict[str, Any]]:
    """Query-blind predictions for every query of ``variant``'s annotation file (module docstring).

    ``variant`` is one masked variant (a folder with ``manifest.json``; its split is the
    manifest's). A plain dataset folder (e.g. the unmasked source, as a control) needs ``split``.
    Returns community-format prediction dicts (``qid``, ``query``, ``vid``,
    ``pred_relevant_windows`` sorted by score descending, ``pred_saliency_scores``) in file order.
    """
    if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 1:
        raise MrbenchError(f"max_windows must be an integer >= 1, got {max_windows!r}")
    root = Path(variant)
    if not (root / MANIFEST).is_file() and split is None:
        raise MrbenchError(f"{root} is not one masked variant (no {MANIFEST}): pass a variant (one seed*/ folder "
                           "of several seeds), or split= for a plain dataset folder")
    directory = DatasetDir(root)
    info = directory.info()
    if (root / MANIFEST).is_file():
        found = Variant(root)
        if split is not None and split != found.split:
            raise MrbenchError(f"{root}: the variant's split is {found.split!r}, not {split!r}")
        records = read_annotations(found.annotations, require_windows=False).records
        clip_len = float(found.manifest.get("clip_len", info.clip_len))
    else:
        records = directory.load(split, require_windows=False).records
        clip_len = float(info.clip_len)
    types = sorted(info.video_features)
    if not types:
        raise MrbenchError(f"{root / 'dataset.json'} lists no video feature types")
    store = directory.store()
    cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per video and clip count: ranked spans, scores, saliency
    predictions = []
    for record in records:
        limit = max(1, math.ceil(record.duration / clip_len - 1e-9))
        key = f"{record.vid}\0{limit}"
        if key not in cache:
            cache[key] = _video_spans(standardized(store.load_video(record.vid, types), limit))
        predictions.append(_prediction(record, *cache[key], clip_len, max_windows))
    return predictions


def standardized(arrays: dict[str, np.ndarray], limit: int | None = None) -> np.ndarray:
    """``[n, sum of dims]``: each source centred per video and scaled to total variance 1, over
    the first ``n`` clips (the shortest source, at most ``limit``)."""
    n = min(a.shape[0] for a in arrays.values())
    if limit is not None:
        n = min(n, limit)
    parts = []
    for feature_type in sorted(arrays):
        x = np.asarray(arrays[feature_type][:n], dtype=np.float64).reshape(n, -1)
        x = x - x.mean(axis=0) if n else x
        scale = math.sqrt(float(np.einsum("ij,ij->", x, x)) / n) if n else 0.0
        parts.append(x / scale if scale > 0 and math.isfinite(scale) else np.zeros_like(x))
    return np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))


def span_scores(x: np.ndarray) -> np.ndarray:
    """``T[i, j]`` (module docstring) of every span ``[i, j)`` of centred features ``x [n, d]``
    as an ``[n + 1, n + 1]`` matrix; NaN where ``j <= i`` or the span is the whole video."""
    n = x.shape[0]
    prefix = np.zeros((n + 1, x.shape[1]))
    np.cumsum(x, axis=0, out=prefix[1:])
    prefix -= prefix[-1] * (np.arange(n + 1) / max(n, 1))[:, None]  # exact centring: S_n = 0
    gram = np.einsum("ik,jk->ij", prefix, prefix)  # no BLAS: same bits on every machine
    sq = np.diag(gram)
    norm2 = np.maximum(sq[:, None] + sq[None, :] - 2 * gram, 0.0)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    n_in = j - i
    valid = (n_in > 0) & (n_in < n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.sqrt(norm2 * n / (n_in * (n - n_in)))
    return np.where(valid, t, np.nan)


def _video_spans(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate spans ``[m, 2]`` (clips) ranked best first, their scores, and per-clip saliency."""
    n = x.shape[0]
    t = span_scores(x)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    n_in = j - i
    # an edge span longer than its complement (or the second half of an even split) is dropped
    twin = ((i == 0) & (2 * n_in > n)) | ((j == n) & (i > 0) & (2 * n_in >= n))
    keep = np.isfinite(t) & ~twin
    starts, ends, scores = i[keep], j[keep], t[keep]
    order = np.lexsort((starts, ends - starts, -scores))  # score desc, then shorter, then earlier
    spans = np.stack([starts[order], ends[order]], axis=1)
    # saliency: the largest T of a candidate covering clip c (i <= c < j)
    filled = np.where(keep, t, -np.inf)
    best_from_left = np.maximum.accumulate(filled, axis=0)  # [c, j]: max over i <= c
    saliency = np.full(n, 0.0)
    for c in range(n):
        row = best_from_left[c, c + 1 :]
        saliency[c] = max(float(row.max()), 0.0) if row.size else 0.0
    return spans, scores[order], saliency


def _prediction(record: Query, spans: np.ndarray, scores: np.ndarray, saliency: np.ndarray, clip_len: float,
                max_windows: int) -> dict[str, Any]:
    duration = float(record.duration)
    seconds = np.stack([spans[:, 0] * clip_len, np.minimum(spans[:, 1] * clip_len, duration)], axis=1) \
        if len(spans) else np.zeros((0, 2))
    alive = seconds[:, 1] > seconds[:, 0]
    kept: list[int] = []
    while len(kept) < max_windows:
        left = np.flatnonzero(alive)
        if not left.size:
            break
        best = int(left[0])
        kept.append(best)
        alive &= paired_iou(seconds, seconds[best]) <= NMS_IOU
        alive[best] = False
    windows = [[round(float(seconds[k, 0]), 4), min(round(float(seconds[k, 1]), 4), duration),
                round(float(scores[k]), 4)] for k in kept]
    if not windows:  # a one-clip video has no candidate span: the whole video, score 0, keeps the file valid
        windows = [[0.0, duration, 0.0]]
    return {
        "qid": record.qid,
        "query": record.query,
        "vid": record.vid,
        "pred_relevant_windows": windows,
        "pred_saliency_scores": [round(float(v), 3) for v in saliency] or [0.0],
    }
