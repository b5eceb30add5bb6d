"""Row sums that add in exactly the order ``numpy.sum`` uses on a 1-D float64 array.

numpy adds fewer than 8 values one after another, and 8 to 128 values with eight running
partial sums combined as a tree plus a sequential tail. Reproducing that order makes per-query
averages bit-identical to the reference evaluator, which calls ``np.sum``/``np.mean`` on each
query's own (short) array.
"""

from __future__ import annotations

import numpy as np


def compact_left(values: np.ndarray, keep: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Move the kept entries of each row to its front (in order, or reversed), zeros after.

    Returns ``(compacted [R, L], counts [R])``.
    """
    length = values.shape[-1]
    position = np.arange(length)
    rank = (length - 1 - position) if reverse else position
    key = np.where(keep, rank, length + rank)
    order = np.argsort(key, axis=-1, kind="stable")
    compacted = np.take_along_axis(np.where(keep, values, 0.0), order, axis=-1)
    return compacted, keep.sum(axis=-1)


def numpy_order_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of the first ``counts[r]`` entries of each row of ``values [R, L]`` (the rest are
    zeros), added in numpy's order for a 1-D array of that length (``L <= 128``)."""
    values = np.asarray(values, dtype=float)
    rows, length = values.shape
    if length > 128:
        raise ValueError("numpy_order_sum supports rows of at most 128 values")
    width = max(8, -(-length // 8) * 8)
    padded = np.zeros((rows, width))
    padded[:, :length] = values
    counts = np.asarray(counts)
    sequential = np.zeros(rows)
    for i in range(min(8, length)):
        sequential = sequential + padded[:, i]
    blocks = counts - counts % 8
    partial = padded[:, :8].copy()
    for start in range(8, width, 8):
        use = (start + 8 <= blocks)[:, None]
        partial = partial + np.where(use, padded[:, start : start + 8], 0.0)
    p = partial
    tree = ((p[:, 0] + p[:, 1]) + (p[:, 2] + p[:, 3])) + ((p[:, 4] + p[:, 5]) + (p[:, 6] + p[:, 7]))
    for i in range(8, length):
        tree = tree + np.where((i >= blocks) & (i < counts), padded[:, i], 0.0)
    return np.where(counts >= 8, tree, sequential)
