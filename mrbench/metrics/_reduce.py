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
    sequential = np.cumsum(padded[:, :8], axis=1)[:, -1]  # fewer than 8 values
    blocks = counts - counts % 8
    n_blocks = width // 8
    in_block = (np.arange(n_blocks)[None, :] * 8 < blocks[:, None])[:, :, None]
    lanes = np.cumsum(np.where(in_block, padded[:, :width].reshape(rows, n_blocks, 8), 0.0), axis=1)[:, -1, :]
    p = lanes
    tree = ((p[:, 0] + p[:, 1]) + (p[:, 2] + p[:, 3])) + ((p[:, 4] + p[:, 5]) + (p[:, 6] + p[:, 7]))
    tail_index = blocks[:, None] + np.arange(8)[None, :]
    tail = np.where(tail_index < counts[:, None], np.take_along_axis(padded, tail_index, axis=1), 0.0)
    pairwise = np.cumsum(np.concatenate([tree[:, None], tail], axis=1), axis=1)[:, -1]
    return np.where(counts >= 8, pairwise, sequential)


def ordered_row_sum(values: np.ndarray, keep: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``values [R, L]``: the sum of its kept entries taken in row order (or
    reversed), added in numpy's order for a 1-D array of that many values; and their count.

    Rows with fewer than 8 kept values are summed in place by a running sum; only rows with 8
    or more are compacted for numpy's interleaved order.
    """
    if reverse:
        values, keep = values[:, ::-1], keep[:, ::-1]
    kept = np.where(keep, values, 0.0)
    counts = keep.sum(axis=1)
    total = np.cumsum(kept, axis=1)[:, -1] if kept.shape[1] else np.zeros(len(kept))
    big = np.flatnonzero(counts >= 8)
    if len(big):
        compacted, big_counts = compact_left(kept[big], keep[big])
        total[big] = numpy_order_sum(compacted, big_counts)
    return total, counts
