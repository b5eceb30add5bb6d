"""Per-query measures of one prediction set, the unit the experiment's report aggregates (numpy only).

Every prediction set of a cell is scored right after it is made, against the split's ground truth,
into one row per query; the report then needs no dataset, features or predictions, so that it
rebuilds from the committed cell results alone. Columns (all per query):

- ``ap``: average precision averaged over the IoU thresholds 0.5:0.05:0.95 against the original
  windows (its mean is mAP, the leaderboard's ``MR-full-mAP``), ``iou``: IoU of the top-1 window
  with its best original window (R1@t is ``iou >= t``);
- on a masked variant also ``ap_span`` and ``iou_span``: the same against the *masked span* (each
  window widened by the margin, as masked) instead of the original windows, and ``in_mask``:
  whether the top-1 centre lies in a masked span (``MR-spurious.center_in_mask``);
- on the unmasked split ``in_mask`` is whether the top-1 centre lies in an original window (the
  rate that the masked centre-in-mask rate is compared with).

The scorer's own code computes each value (:func:`mrbench.scoring.core.retrieval_scores`,
:func:`mrbench.metrics.spurious.center_in_mask`), so the means equal ``mrbench score``'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrbench.masking.variant import Variant
from mrbench.metrics.spurious import center_in_mask
from mrbench.scoring.core import masked_regions, retrieval_scores
from mrbench.scoring.groundtruth import GroundTruth
from mrbench.scoring.predictions import align_predictions, read_records

#: the columns of :func:`query_measures`, in order
COLUMNS = ("qid", "ap", "iou", "ap_span", "iou_span", "in_mask")


def query_measures(predictions: Sequence[dict[str, Any]] | str | os.PathLike[str], truth: GroundTruth,
                   variant: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """The per-query columns of :data:`COLUMNS` (module docstring), in the ground truth's order.

    ``variant``: the masked variant the predictions were made on (its manifest gives the masked
    spans); without it ``ap_span``/``iou_span`` are NaN and ``in_mask`` tests the original windows.
    """
    name, records = read_records(predictions if isinstance(predictions, (str, os.PathLike)) else list(predictions))
    pred = align_predictions(name, records, truth)
    order = np.argsort(pred.gt_rows, kind="stable")
    rows = pred.gt_rows[order]
    windows, window_mask = truth.windows[rows], truth.window_mask[rows]
    original = retrieval_scores(pred, order, windows, window_mask)
    top1 = pred.top1[order]
    n = len(rows)
    out: dict[str, np.ndarray] = {
        "qid": np.asarray([truth.qids[r] for r in rows], dtype=object),
        "ap": original.ap.mean(1),
        "iou": original.iou,
        "ap_span": np.full(n, np.nan),
        "iou_span": np.full(n, np.nan),
    }
    present = pred.present[order]
    if variant is None:
        out["in_mask"] = center_in_mask(top1, windows, window_mask) & present
        return out
    spans, span_mask = masked_regions(Variant(Path(variant)), out["qid"])
    masked = retrieval_scores(pred, order, spans, span_mask)
    out["ap_span"], out["iou_span"] = masked.ap.mean(1), masked.iou
    out["in_mask"] = center_in_mask(top1, spans, span_mask) & present
    return out
