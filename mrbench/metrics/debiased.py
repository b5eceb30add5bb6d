"""Discounted recall dR@n,IoU@m of Yuan et al. 2021.

Yuan, Lan, Wang, Chen, Zhu, Zhu, "A Closer Look at Temporal Sentence Grounding in Videos:
Dataset and Metric" (ACM MM Workshop HUMA 2021; Charades-CD / ActivityNet-CD)::

    dR@n,IoU@m = 1/N * sum_i r_i(n, m) * alpha_i^s * alpha_i^e
    alpha^s = 1 - |p^s - g^s|,   alpha^e = 1 - |p^e - g^e|

with ``p``/``g`` the predicted and GT boundaries divided by the video's duration and ``r_i`` the
usual R@n,IoU@m hit. A hit with loose boundaries is thus discounted, which removes the inflation
of R@n,IoU@0.3/0.5 by long GT moments. mrbench's choices where the paper is silent: each
prediction is paired with the GT window R1 pairs it with (highest IoU, first on ties) and hits
use R1's IoU; for ``n > 1`` the hitting candidate with the highest IoU (first on ties) is
discounted; ``alpha`` is clipped at 0 for boundaries more than a video length apart.
"""

from __future__ import annotations

import numpy as np

from mrbench.metrics.retrieval import best_gt_for_top1


def debiased_recall(
    pred: np.ndarray,
    n_pred: np.ndarray,
    gt: np.ndarray,
    gt_mask: np.ndarray,
    duration: np.ndarray,
    thresholds: tuple[float, ...] | np.ndarray,
    n: int = 1,
) -> np.ndarray:
    """Per-query discounted hits ``[Q, T]`` (dR@n,IoU@t is their column mean).

    ``pred [Q, K, >=2]`` in submitted list order (the first ``n_pred[q]`` real), ``gt [Q, G, 2]``
    with ``gt_mask``, ``duration [Q]`` seconds.
    """
    pred = np.asarray(pred, dtype=float)
    thresholds = np.asarray(thresholds, dtype=float)
    n_queries = len(pred)
    duration = np.asarray(duration, dtype=float)
    best_iou = np.full((n_queries, len(thresholds)), -1.0)
    best_alpha = np.zeros((n_queries, len(thresholds)))
    for k in range(min(n, pred.shape[1])):
        span = pred[:, k, :2]
        chosen, iou = best_gt_for_top1(span, gt, gt_mask)
        real = k < np.asarray(n_pred)
        alpha_s = np.clip(1.0 - np.abs(span[:, 0] - chosen[:, 0]) / duration, 0.0, None)
        alpha_e = np.clip(1.0 - np.abs(span[:, 1] - chosen[:, 1]) / duration, 0.0, None)
        hit = real[:, None] & (iou[:, None] >= thresholds[None, :])
        better = hit & (iou[:, None] > best_iou)
        best_iou = np.where(better, iou[:, None], best_iou)
        best_alpha = np.where(better, (alpha_s * alpha_e)[:, None], best_alpha)
    return best_alpha


def debiased_recall_at_1(
    top1: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray, duration: np.ndarray, thresholds: tuple[float, ...]
) -> np.ndarray:
    """dR@1,IoU@t per query ``[Q, T]`` for the top-1 spans ``top1 [Q, 2]``."""
    top1 = np.asarray(top1, dtype=float)
    return debiased_recall(top1[:, None, :], np.ones(len(top1), dtype=int), gt, gt_mask, duration, thresholds, n=1)
