"""Temporal IoU between spans ``[start, end]`` (seconds), in the two forms the reference uses."""

from __future__ import annotations

import numpy as np


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of span ``a[..., :]`` with span ``b[..., :]`` elementwise (shapes ``[..., 2]``).

    ``inter / (max(end) - min(start))``: the union is taken as the hull of the two spans, which
    equals the true union whenever they overlap (and the IoU is 0 when they do not); a hull of
    length 0 gives 0. This is the reference evaluator's R1 formula.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    inter = np.maximum(0.0, np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]))
    hull = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0])
    return np.divide(inter, hull, out=np.zeros_like(inter), where=hull != 0)


def cross_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every span in ``a [..., N, 2]`` with every span in ``b [..., M, 2]`` -> ``[..., N, M]``.

    ``inter / (len_a + len_b - inter)`` with ``inter = max(0, min(end) - max(start))``, evaluated
    in that order so that results are bit-identical to the reference. Two zero-length spans give
    ``0/0 = nan`` (callers decide what that means).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    len_a = a[..., 1] - a[..., 0]
    len_b = b[..., 1] - b[..., 0]
    left = np.maximum(a[..., :, None, 0], b[..., None, :, 0])
    right = np.minimum(a[..., :, None, 1], b[..., None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = len_a[..., :, None] + len_b[..., None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union
