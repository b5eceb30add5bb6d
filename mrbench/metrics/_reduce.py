"""Row sums that add in exactly the order ``numpy.sum`` uses on a 1-D float64 array.

numpy adds fewer than 8 values one after another, and 8 to 128 values with eight running
partial sums combined as a tree plus a sequential tail. Reproducing that order makes per-query
averages bit-identical to the reference evaluator, which calls ``np.sum``/``np.mean`` on each
query's own (short) array.
"""

from __future__ import annotations

import numpy as np


def compact_left(values: np.ndarray, keep: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Move the kept entries of each row of ``values [R, L]`` to its front (in order, or in
    reverse order), zeros after. Returns ``(compacted [R, L], counts [R])``."""
    if reverse:
        values, keep = values[:, ::-1], keep[:, ::-1]
    rows, cols = np.nonzero(keep)
    slots = np.cumsum(keep, axis=1) - 1
    compacted = np.zeros(values.shape)
    compacted[rows, slots[rows, cols]] = values[rows, cols]
    return compacted, keep.sum(axis=1)


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


def ordered_row_sum(values: np.ndarray, keep: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``values [R, L]``: the sum of its kept entries taken in row order (or
    reversed), added in numpy's order for a 1-D array of that many values; and their count.

    Rows with fewer than 8 kept values are summed sequentially in place (a running sum, where
    skipped entries add an exact zero); only rows with 8 or more are compacted for numpy's
    interleaved order.
    """
    if reverse:
        values, keep = values[:, ::-1], keep[:, ::-1]
    kept = np.where(keep, values, 0.0)
    counts = keep.sum(axis=1)
    total = np.cumsum(kept, axis=1)[:, -1] if kept.shape[1] else np.zeros(len(kept))  # sequential
    big = np.flatnonzero(counts >= 8)
    if len(big):
        compacted, big_counts = compact_left(kept[big], keep[big])
        compacted = compacted[:, : max(8, int(big_counts.max()))]
        total[big] = numpy_order_sum(compacted, big_counts)
    return total, counts
