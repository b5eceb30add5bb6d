"""Row sums that add in exactly the order ``numpy.sum`` uses on a 1-D float64 array.

numpy adds fewer than 8 values one after another, and 8 to 128 values in eight interleaved
running sums (lane ``j`` adds values ``j, j+8, j+16, ...`` over the largest multiple of 8) that
are combined as a balanced tree, then adds the remaining values one by one. Reproducing that
order makes per-query sums bit-identical to the reference evaluator, which calls
``np.sum``/``np.mean`` on each query's own short array. Running sums (``np.cumsum``) are
sequential, and adding a skipped entry as an exact zero changes nothing, so every step is one
vectorized call over all rows.
"""

from __future__ import annotations

import numpy as np


def compact_left(values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move the kept entries of each row of ``values [R, L]`` to its front, in order, zeros after.

    Returns ``(compacted [R, max count], counts [R])``.
    """
    counts = keep.sum(axis=1)
    width = max(int(counts.max()), 1) if len(counts) else 1
    flat = values[keep]  # row-major: each row's kept values in order
    rows = np.repeat(np.arange(len(values)), counts)
    slots = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    compacted = np.zeros((len(values), width))
    compacted[rows, slots] = flat
    return compacted, counts


def numpy_order_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of the first ``counts[r]`` entries of each row of ``values [R, L]`` (zeros after them),
    added in numpy's order for a 1-D array of that length (at most 128)."""
    values = np.asarray(values, dtype=float)
    counts = np.asarray(counts)
    rows, length = values.shape
    if length > 128:
        raise ValueError("numpy_order_sum supports rows of at most 128 values")
    width = max(8, -(-length // 8) * 8)
    padded = np.zeros((rows, width + 8))
    padded[:, :length] = values
    # fewer than 8 values: one after another (entries past the count are zeros)
    sequential = padded[:, 0].copy()
    for column in range(1, 8):
        sequential += padded[:, column]
    # 8 or more: eight lanes over the whole blocks of 8, one block after another ...
    blocks = counts - counts % 8
    lanes = padded[:, :8].copy()
    for start in range(8, width, 8):
        lanes += np.where((start < blocks)[:, None], padded[:, start : start + 8], 0.0)
    p = lanes
    total = ((p[:, 0] + p[:, 1]) + (p[:, 2] + p[:, 3])) + ((p[:, 4] + p[:, 5]) + (p[:, 6] + p[:, 7]))
    # ... then the remaining count % 8 values one by one
    row_index = np.arange(rows)
    for offset in range(7):
        total += np.where(offset < counts - blocks, padded[row_index, blocks + offset], 0.0)
    return np.where(counts >= 8, total, sequential)


def ordered_row_sum(values: np.ndarray, keep: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``values [R, L]``: the sum of its kept entries taken in row order (or
    reversed), added in numpy's order for a 1-D array of that many values; and their count.

    Rows with fewer than 8 kept values are summed by a running sum; only rows with 8 or more
    are compacted for numpy's interleaved order.
    """
    if reverse:
        values, keep = values[:, ::-1], keep[:, ::-1]
    counts = keep.sum(axis=1)
    total = np.zeros(len(values))
    small = np.flatnonzero(counts < 8)
    if len(small) and values.shape[1]:
        total[small] = np.cumsum(np.where(keep[small], values[small], 0.0), axis=1)[:, -1]
    big = np.flatnonzero(counts >= 8)
    if len(big) == len(values):  # the usual case for highlight AP: no row selection to copy
        total = numpy_order_sum(*compact_left(values, keep))
    elif len(big):
        total[big] = numpy_order_sum(*compact_left(values[big], keep[big]))
    return total, counts
