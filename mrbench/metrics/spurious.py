"""Diagnostics for predictions made on masked-target variants (the target moment's video
content replaced, the original windows kept as the "spurious ground truth").

Spurious R1/mAP are the ordinary metrics of :mod:`mrbench.metrics.retrieval` computed against
the original windows: a model that still finds the moment after its content is gone relies on
something other than the video (priors on position or length, query-only cues); lower is better.
"""

from __future__ import annotations

import numpy as np


def center_in_mask(top1: np.ndarray, masked: np.ndarray, masked_mask: np.ndarray) -> np.ndarray:
    """``[Q]`` booleans: the center ``(start + end) / 2`` of the top-1 span ``top1 [Q, 2]`` lies in
    one of the query's masked regions ``masked [Q, M, 2]`` (closed intervals; ``masked_mask``
    marks the real ones)."""
    center = (np.asarray(top1, dtype=float)[:, 0] + np.asarray(top1, dtype=float)[:, 1]) / 2.0
    inside = (masked[..., 0] <= center[:, None]) & (center[:, None] <= masked[..., 1])
    return (inside & masked_mask).any(axis=1)
