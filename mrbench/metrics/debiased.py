"""Discounted recall dR@n,IoU@m of Yuan et al. 2021.

Yuan, Lan, Wang, Chen, Zhu, Zhu, "A Closer Look at Temporal Sentence Grounding in Videos:
Dataset and Metric" (ACM MM Workshop HUMA 2021; Charades-CD / ActivityNet-CD)::

    dR@n,IoU@m = 1/N * sum_i r_i(n, m) * alpha_i^s * alpha_i^e
    alpha^s = 1 - |p^s - g^s|,   alpha^e = 1 - |p^e - g^e|

with ``p``/``g`` the predicted and GT boundaries divided by the video's duration and ``r_i`` the
usual R@n,IoU@m hit. A hit with loose boundaries is thus discounted, which removes the inflation
of R@n,IoU@0.3/0.5 by long GT moments. mrbench's choices where the paper is silent: each
candidate is paired with the GT window R1 pairs it with (highest IoU, first on ties) and hits use
R1's IoU; for ``n > 1`` a query scores the **best discounted hit** among its first ``n`` listed
candidates (the largest ``alpha^s * alpha^e`` over the candidates that hit). So dR@n <= R@n, dR@n
never falls as ``n`` grows, and dR@1 is the top-1 value. (Discounting the highest-IoU hit
instead is not monotone: a later candidate with a slightly higher IoU can have a smaller
discount.) ``alpha`` is clipped at 0 for boundaries more than a video length apart.

dR@5 from a scorer's aligned predictions (``windows [Q, K, >=2]`` in submitted list order,
``n_pred [Q]`` real ones)::

    debiased_recall(windows, n_pred, gt, gt_mask, duration, (0.3, 0.5, 0.7), n=5).mean(axis=0)
"""

from __future__ import annotations

import numpy as np

from mrbench.metrics.retrieval import best_gt_for_top1

#: The ``n`` the community reports dR@n for.
DEBIASED_NS = (1, 5)


def debiased_recall(
    pred: np.ndarray,
    n_pred: np.ndarray,
    gt: np.ndarray,
    gt_mask: np.ndarray,
    duration: np.ndarray,
    thresholds: tuple[float, ...] | np.ndarray,
    n: int = 1,
) -> np.ndarray:
    """Per-query discounted hits ``[Q, T]`` over the first ``n`` candidates (dR@n,IoU@t is their
    column mean).

    ``pred [Q, K, >=2]`` in submitted list order (the first ``n_pred[q]`` real), ``gt [Q, G, 2]``
    with ``gt_mask``, ``duration [Q]`` seconds.
    """
    if n < 1:
        raise ValueError(f"dR@n needs n >= 1, got {n}")
    pred = np.asarray(pred, dtype=float)
    thresholds = np.asarray(thresholds, dtype=float)
    n_queries, width = len(pred), min(n, pred.shape[1])
    if width == 0:
        return np.zeros((n_queries, len(thresholds)))
    spans = pred[:, :width, :2].reshape(-1, 2)
    chosen, iou = best_gt_for_top1(spans, np.repeat(gt, width, axis=0), np.repeat(gt_mask, width, axis=0))
    length = np.repeat(np.asarray(duration, dtype=float), width)
    alpha_s = np.clip(1.0 - np.abs(spans[:, 0] - chosen[:, 0]) / length, 0.0, None)
    alpha_e = np.clip(1.0 - np.abs(spans[:, 1] - chosen[:, 1]) / length, 0.0, None)
    real = (np.arange(width)[None, :] < np.asarray(n_pred)[:, None]).reshape(-1)
    hit = real[:, None] & (iou[:, None] >= thresholds[None, :])
    discounted = np.where(hit, (alpha_s * alpha_e)[:, None], 0.0).reshape(n_queries, width, len(thresholds))
    return discounted.max(axis=1, initial=0.0)


def debiased_recall_at_1(
    top1: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray, duration: np.ndarray, thresholds: tuple[float, ...]
) -> np.ndarray:
    """dR@1,IoU@t per query ``[Q, T]`` for the top-1 spans ``top1 [Q, 2]``."""
    top1 = np.asarray(top1, dtype=float)
    return debiased_recall(top1[:, None, :], np.ones(len(top1), dtype=int), gt, gt_mask, duration, thresholds, n=1)
