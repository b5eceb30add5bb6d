"""Hypothesis invariants of the metrics and of score()."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mrbench.metrics import (
    average_precision,
    best_gt_for_top1,
    cross_iou,
    highlight_ap,
    paired_iou,
    recall_at_5,
)
from mrbench.scoring import score

DURATION = 150.0
MIN_GT_LENGTH = 0.5
coord = st.floats(min_value=0.0, max_value=DURATION, allow_nan=False)


@st.composite
def spans(draw: st.DrawFn, positive: bool = False) -> list[float]:
    """A window inside ``[0, DURATION]``; ``positive``: at least ``MIN_GT_LENGTH`` long, so a
    valid ground-truth window (never past the video's end)."""
    if positive:
        lo = draw(st.floats(0.0, DURATION - MIN_GT_LENGTH))
        return [lo, draw(st.floats(lo + MIN_GT_LENGTH, DURATION))]
    a, b = draw(coord), draw(coord)
    return [min(a, b), max(a, b)]


@st.composite
def queries(draw: st.DrawFn) -> list[dict]:
    """Small QVHighlights-like ground truth plus predictions."""
    n = draw(st.integers(1, 6))
    gt, preds = [], []
    for qid in range(n):
        windows = draw(st.lists(spans(positive=True), min_size=1, max_size=4))
        gt.append({"qid": qid, "query": "q", "vid": f"v{qid}", "duration": DURATION, "relevant_windows": windows})
        listed = draw(st.lists(spans(), min_size=1, max_size=10))
        scores = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=len(listed), max_size=len(listed)))
        preds.append({"qid": qid, "pred_relevant_windows": [w + [s] for w, s in zip(listed, scores, strict=True)]})
    return [gt, preds]


@given(spans(), spans())
def test_iou_symmetric_and_bounded(a: list[float], b: list[float]) -> None:
    x, y = np.array(a), np.array(b)
    assert paired_iou(x, y) == paired_iou(y, x)
    assert 0.0 <= paired_iou(x, y) <= 1.0
    c1, c2 = cross_iou(x[None], y[None])[0, 0], cross_iou(y[None], x[None])[0, 0]
    if a[1] > a[0] or b[1] > b[0]:
        assert c1 == c2 and 0.0 <= c1 <= 1.0
        if c1 > 0:  # overlapping: the hull formula is the true IoU
            assert abs(c1 - paired_iou(x, y)) < 1e-12


@given(st.lists(spans(positive=True), min_size=1, max_size=10))
def test_perfect_predictions_score_the_maximum(windows: list[list[float]]) -> None:
    gt = np.array([windows])
    mask = np.ones((1, len(windows)), bool)
    pred = np.array([[w + [1.0 - i / 20] for i, w in enumerate(windows)]])
    assert average_precision(pred, np.array([len(windows)]), gt, mask).min() == 1.0
    _, iou = best_gt_for_top1(pred[:, 0, :2], gt, mask)
    assert iou[0] == 1.0
    assert recall_at_5(pred, np.array([len(windows)]), gt, mask)[0] == 1.0


@given(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=2, max_size=20))
def test_perfect_saliency_scores_the_maximum(rows: list[list[bool]]) -> None:
    labels = np.array(rows, dtype=float)[None, :, :1]  # one annotator
    ap = highlight_ap(labels[:, :, 0] + 0.5, labels, np.array([labels.shape[1]]))
    assert ap[0, 0] == (1.0 if labels.any() else 0.0)


@given(queries(), spans(), st.data())
@settings(max_examples=60, deadline=None)
def test_an_eleventh_prediction_changes_nothing(case: list, extra: list[float], data: st.DataObject) -> None:
    gt, preds = case
    for p in preds:
        windows = p["pred_relevant_windows"]
        while len(windows) < 10:
            windows.append(windows[-1])
    base = score(preds, gt).to_dict()
    for p in preds:
        lowest = min(w[2] for w in p["pred_relevant_windows"])
        p["pred_relevant_windows"].append(extra + [data.draw(st.floats(-1.0, lowest))])
    assert score(preds, gt).to_dict()["full"] == base["full"]
    assert score(preds, gt).to_dict()["mrbench"] == base["mrbench"]


@given(queries(), st.randoms())
@settings(max_examples=60, deadline=None)
def test_permuting_queries_changes_nothing(case: list, rnd) -> None:  # noqa: ANN001
    gt, preds = case
    base = score(preds, gt).to_dict()
    rnd.shuffle(preds)
    rnd.shuffle(gt)
    shuffled = score(preds, gt).to_dict()
    for block in ("full", "short", "middle", "long"):
        assert (block in base) == (block in shuffled)
        if block in base:
            for kind in ("MR-mAP", "MR-R1"):
                for key, value in base[block][kind].items():
                    assert abs(shuffled[block][kind][key] - value) <= 0.0100001
    for key, value in base["mrbench"].items():
        assert abs(shuffled["mrbench"][key] - value) <= 0.0100001
