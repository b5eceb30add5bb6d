"""Pure vectorized numpy metrics for video moment retrieval and highlight detection (no I/O).

Every function works on padded arrays over all queries at once (``[n_queries, ...]`` plus a
validity mask) and returns unrounded fractions; the scoring layer multiplies by 100 and rounds
like the reference evaluator. Definitions: docs/scoring.md and each module's docstring.
"""

from mrbench.metrics.debiased import DEBIASED_NS, debiased_recall, debiased_recall_at_1
from mrbench.metrics.highlight import highlight_ap, highlight_hit_at_1
from mrbench.metrics.iou import cross_iou, paired_iou
from mrbench.metrics.retrieval import (
    BUCKETS,
    MAP_THRESHOLDS,
    WIDE_THRESHOLDS,
    average_precision,
    best_gt_for_top1,
    bucket_window_mask,
    compact_windows,
    recall_at_5,
    threshold_hits,
)
from mrbench.metrics.spurious import center_in_mask

__all__ = [
    "BUCKETS",
    "DEBIASED_NS",
    "MAP_THRESHOLDS",
    "WIDE_THRESHOLDS",
    "average_precision",
    "best_gt_for_top1",
    "bucket_window_mask",
    "center_in_mask",
    "compact_windows",
    "cross_iou",
    "debiased_recall",
    "debiased_recall_at_1",
    "highlight_ap",
    "highlight_hit_at_1",
    "paired_iou",
    "recall_at_5",
    "threshold_hits",
]
