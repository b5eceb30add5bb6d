"""Moment-retrieval metrics: R1@t, R5@t, mIoU, all-point mAP and the GT-length buckets.

Definitions follow the community's reference evaluator (Moment-DETR ``standalone_eval``, also
used by lighthouse, QD-DETR, CG-DETR and UniVTG) so that results are identical to it:

* **R1@t**: the top-1 prediction is the *first* listed window. Its GT is the window with the
  highest (true) IoU to it, first on ties. A query is a hit when the *hull* IoU
  (:func:`~mrbench.metrics.iou.paired_iou`) of the pair is >= t.
* **mIoU**: the mean of that same top-1 hull IoU (UniVTG / CG-DETR).
* **R5@t** (UniVTG): among the first five listed windows and all GT windows, the pair with the
  highest true IoU (nan -> 0; first in row-major order on ties); hit when its hull IoU >= t.
* **AP@t**: per query, the first ten listed windows are stably sorted by score (descending) and
  greedily matched: each prediction takes the unmatched GT window of highest IoU (later GT first
  on ties) if that IoU >= t, else it is a false positive. AP is the VOC all-point interpolated
  area: precision made non-increasing from the right, summed over the steps of recall
  (recall = TP / number of GT windows).
* **Buckets**: GT windows of length in ``(low, high]``; a bucket keeps the queries with at least
  one such window, scores all their predictions against those windows only.
"""

from __future__ import annotations

import numpy as np

from mrbench.metrics._reduce import ordered_row_sum
from mrbench.metrics.iou import cross_iou, paired_iou

#: IoU thresholds of the reference mAP and R1 (0.5:0.05:0.95, as the reference spells them).
MAP_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
#: R1/R5 thresholds of UniVTG and CG-DETR (0.3:0.05:0.95).
WIDE_THRESHOLDS: tuple[float, ...] = (0.3, 0.35, 0.4, 0.45) + MAP_THRESHOLDS
#: Queries with at most this many GT windows are matched on a narrow array.
_FEW_WINDOWS = 4
#: GT-length buckets of the reference evaluator, seconds, ``(low, high]``.
BUCKETS: dict[str, tuple[float, float]] = {"short": (0.0, 10.0), "middle": (10.0, 30.0), "long": (30.0, 150.0)}


def best_gt_for_top1(
    top1: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the GT window matched to the top-1 span and their hull IoU.

    ``top1 [Q, 2]``, ``gt [Q, G, 2]``, ``gt_mask [Q, G]`` (which GT slots are real). The chosen
    window has the highest true IoU with ``top1`` (first index on ties, like ``np.argmax``; a nan
    IoU wins as in numpy). Returns ``(chosen [Q, 2], iou [Q])``; a query without any real GT
    window gets IoU 0.
    """
    ious = cross_iou(top1[:, None, :], gt)[:, 0, :]
    ious = np.where(gt_mask, ious, -np.inf)
    index = np.argmax(ious, axis=1)
    chosen = np.take_along_axis(gt, index[:, None, None], axis=1)[:, 0, :]
    iou = np.where(gt_mask.any(axis=1), paired_iou(top1, chosen), 0.0)
    return chosen, iou


def threshold_hits(iou: np.ndarray, thresholds: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """``[Q, T]`` booleans: ``iou >= t`` for each threshold (R@t is their column mean)."""
    return np.asarray(iou)[:, None] >= np.asarray(thresholds, dtype=float)[None, :]


def recall_at_5(
    pred: np.ndarray, n_pred: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray
) -> np.ndarray:
    """Hull IoU ``[Q]`` of UniVTG's R5 pair: among the first five listed predictions
    (``pred [Q, K, >=2]``, ``n_pred [Q]`` real ones) and all real GT windows, the pair with the
    highest true IoU (nan counts as 0; first in row-major order on ties)."""
    top = np.asarray(pred, dtype=float)[:, :5, :2]
    valid = (np.arange(top.shape[1])[None, :] < np.asarray(n_pred)[:, None])[:, :, None] & gt_mask[:, None, :]
    ious = np.nan_to_num(cross_iou(top, gt), nan=0.0)
    ious = np.where(valid, ious, -np.inf).reshape(len(top), -1)
    flat = np.argmax(ious, axis=1)
    n_gt = gt.shape[1]
    rows = np.arange(len(top))
    pair_pred = top[rows, flat // n_gt]
    pair_gt = gt[rows, flat % n_gt]
    has_any = valid.reshape(len(top), -1).any(axis=1)
    return np.where(has_any, paired_iou(pair_pred, pair_gt), 0.0)


def average_precision(
    pred: np.ndarray,
    n_pred: np.ndarray,
    gt: np.ndarray,
    gt_mask: np.ndarray,
    thresholds: tuple[float, ...] | np.ndarray = MAP_THRESHOLDS,
    max_pred: int = 10,
) -> np.ndarray:
    """Per-query all-point AP ``[Q, T]`` of the first ``max_pred`` listed predictions.

    ``pred [Q, K, 3]`` holds ``[start, end, score]`` in submitted list order, the first
    ``n_pred[q]`` real. See the module docstring for the matching and the interpolation. A query
    without predictions, or without real GT windows, gets AP 0.
    """
    pred = np.asarray(pred, dtype=float)[:, :max_pred]
    n_pred = np.asarray(n_pred)
    counts = gt_mask.sum(axis=1)
    group = np.digitize(counts, (2, _FEW_WINDOWS + 1))  # one GT window, a few, many
    if len(np.unique(group)) > 1 or gt.shape[1] > max(int(counts.max()), 1):
        # match each group on an array as narrow as its largest window count
        ap = np.zeros((len(pred), len(np.atleast_1d(thresholds))))
        for value in np.unique(group):
            part = np.flatnonzero(group == value)
            part_gt, part_mask = compact_windows(gt[part], gt_mask[part])
            ap[part] = average_precision(pred[part], n_pred[part], part_gt, part_mask, thresholds, max_pred)
        return ap
    n_queries, n_slots = pred.shape[:2]
    thresholds = np.asarray(thresholds, dtype=float)
    n_thr = len(thresholds)
    valid = np.arange(n_slots)[None, :] < np.minimum(np.asarray(n_pred), max_pred)[:, None]
    order = np.argsort(np.where(valid, -pred[:, :, 2], np.inf), axis=1, kind="stable")
    ranked = np.take_along_axis(pred, order[:, :, None], axis=1)
    valid = np.take_along_axis(valid, order, axis=1)

    ious = cross_iou(ranked[:, :, :2], gt)  # [Q, K, G]
    ious = np.where(np.isnan(ious), np.inf, ious)  # nan never fails `< t` in the reference
    ious = np.where(gt_mask[:, None, :], ious, -np.inf)
    n_gt = gt.shape[1]
    if n_gt == 1:  # one GT window: the first prediction reaching t takes it, later ones cannot
        reach = (ious[:, None, :, 0] >= thresholds[None, :, None]) & valid[:, None, :]
        tp = reach & (np.cumsum(reach, axis=2) == 1)
    else:
        tp = _greedy_match(ious, valid, thresholds)
    fp = valid[:, None, :] & ~tp

    tp_cum = np.cumsum(tp, axis=2)
    fp_cum = np.cumsum(fp, axis=2)
    n_positive = gt_mask.sum(axis=1).astype(float)[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp_cum / n_positive
        precision = np.where(valid[:, None, :], tp_cum / (tp_cum + fp_cum), 0.0)
    zeros = np.zeros((n_queries, n_thr, 1))
    m_prec = np.concatenate([zeros, precision, zeros], axis=2)
    m_rec = np.concatenate([zeros, recall, zeros + 1.0], axis=2)
    m_prec = np.maximum.accumulate(m_prec[:, :, ::-1], axis=2)[:, :, ::-1]
    steps = m_rec[:, :, 1:] != m_rec[:, :, :-1]
    terms = (m_rec[:, :, 1:] - m_rec[:, :, :-1]) * m_prec[:, :, 1:]
    ap, _ = ordered_row_sum(terms.reshape(-1, n_slots + 1), steps.reshape(-1, n_slots + 1))
    ap = ap.reshape(n_queries, n_thr)
    usable = valid.any(axis=1) & gt_mask.any(axis=1)
    return np.where(usable[:, None], ap, 0.0)


def _greedy_match(ious: np.ndarray, valid: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """True positives ``[Q, T, K]``: predictions in rank order (``ious [Q, K, G]``, -inf for
    padding GT slots) each take the unmatched GT window of highest IoU (later GT on ties) when
    that IoU reaches the threshold."""
    n_queries, n_slots, n_gt = ious.shape
    gt_index = np.arange(n_gt)
    locked = np.zeros((n_queries, len(thresholds), n_gt), dtype=bool)
    tp = np.zeros((n_queries, len(thresholds), n_slots), dtype=bool)
    for k in range(n_slots):
        row = ious[:, k, None, :]  # [Q, 1, G]
        candidate = (row >= thresholds[None, :, None]) & ~locked
        key = np.where(candidate, row, -np.inf)[..., ::-1]
        pick = n_gt - 1 - np.argmax(key, axis=-1)  # highest IoU, later GT on ties
        hit = candidate.any(axis=-1) & valid[:, k, None]
        locked |= (gt_index == pick[..., None]) & hit[..., None]
        tp[:, :, k] = hit
    return tp


def compact_windows(gt: np.ndarray, gt_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each query's real windows to the front (keeping their order) and drop padding
    columns: ``(gt [Q, G', 2], gt_mask [Q, G'])`` with ``G'`` the largest count. Metrics are
    unchanged (ties still resolve by the original order) and cheaper to compute."""
    counts = gt_mask.sum(axis=1)
    width = max(int(counts.max()) if len(counts) else 0, 1)
    rows, cols = np.nonzero(gt_mask)
    slots = np.cumsum(gt_mask, axis=1)[rows, cols] - 1
    packed = np.zeros((len(gt), width, 2))
    packed[rows, slots] = gt[rows, cols]
    return packed, np.arange(width)[None, :] < counts[:, None]


def bucket_window_mask(gt: np.ndarray, gt_mask: np.ndarray, low: float, high: float) -> np.ndarray:
    """``[Q, G]``: real GT windows whose length ``end - start`` lies in ``(low, high]``."""
    length = gt[..., 1] - gt[..., 0]
    return gt_mask & (length > low) & (length <= high)
