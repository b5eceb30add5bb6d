"""Metric definitions pinned by hand-computed cases and by plain-loop oracles of the
reference evaluator's semantics (docs/scoring.md)."""

from __future__ import annotations

import numpy as np
import pytest

from mrbench.metrics import (
    average_precision,
    best_gt_for_top1,
    cross_iou,
    debiased_recall_at_1,
    highlight_ap,
    highlight_hit_at_1,
    paired_iou,
    recall_at_5,
)
from mrbench.metrics._reduce import numpy_order_sum, ordered_row_sum
from mrbench.metrics.debiased import debiased_recall
from mrbench.metrics.retrieval import MAP_THRESHOLDS, bucket_window_mask, compact_windows
from mrbench.metrics.spurious import center_in_mask


def test_iou_hand_values() -> None:
    assert paired_iou(np.array([0.0, 10.0]), np.array([5.0, 15.0])) == pytest.approx(5 / 15)
    assert paired_iou(np.array([0.0, 4.0]), np.array([6.0, 8.0])) == 0.0
    assert paired_iou(np.array([3.0, 3.0]), np.array([3.0, 3.0])) == 0.0  # hull of length 0
    cross = cross_iou(np.array([[0.0, 10.0], [2.0, 4.0]]), np.array([[5.0, 15.0], [0.0, 4.0], [20.0, 30.0]]))
    np.testing.assert_allclose(cross, [[5 / 15, 4 / 10, 0.0], [0.0, 0.5, 0.0]])
    assert np.isnan(cross_iou(np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]]))[0, 0])


def test_r1_picks_best_gt_and_uses_hull_iou() -> None:
    gt = np.array([[[0.0, 10.0], [20.0, 30.0]]])
    mask = np.array([[True, True]])
    chosen, iou = best_gt_for_top1(np.array([[21.0, 31.0]]), gt, mask)
    np.testing.assert_array_equal(chosen, [[20.0, 30.0]])
    assert iou[0] == pytest.approx(9 / 11)
    # a masked-out GT slot is never chosen
    chosen, iou = best_gt_for_top1(np.array([[21.0, 31.0]]), gt, np.array([[True, False]]))
    np.testing.assert_array_equal(chosen, [[0.0, 10.0]])
    assert iou[0] == 0.0


def test_r5_takes_best_pair_among_first_five() -> None:
    gt = np.array([[[10.0, 20.0]]])
    mask = np.array([[True]])
    pred = np.array([[[0, 1, 0.9], [30, 40, 0.8], [50, 60, 0.7], [70, 80, 0.6], [11, 20, 0.5], [10, 20, 0.4]]], float)
    assert recall_at_5(pred, np.array([6]), gt, mask)[0] == pytest.approx(0.9)  # 6th (exact) is ignored
    assert recall_at_5(pred, np.array([4]), gt, mask)[0] == 0.0


def test_ap_hand_computed() -> None:
    # two GT windows; predictions (score order): hit GT0, miss, hit GT1 -> P = 1, 1/2, 2/3
    # VOC all-point AP at 0.5 = 0.5 * 1 + 0.5 * 2/3
    gt = np.array([[[0.0, 10.0], [20.0, 30.0]]])
    mask = np.array([[True, True]])
    pred = np.array([[[40, 50, 0.5], [0, 10, 0.9], [20, 30, 0.2]]], float)  # listed out of order
    ap = average_precision(pred, np.array([3]), gt, mask)
    assert ap[0, 0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # a duplicate of a matched prediction is a false positive (the GT is locked)
    pred = np.array([[[0, 10, 0.9], [0, 10, 0.8]]], float)
    assert average_precision(pred, np.array([2]), gt, mask)[0, 0] == pytest.approx(0.5)


def test_ap_truncates_to_first_ten_listed_before_sorting() -> None:
    gt = np.array([[[0.0, 10.0]]])
    mask = np.array([[True]])
    misses = [[50.0 + i, 51.0 + i, 0.5] for i in range(10)]
    pred = np.array([misses + [[0.0, 10.0, 0.99]]])  # the hit is listed 11th: dropped
    assert average_precision(pred, np.array([11]), gt, mask)[0, 0] == 0.0
    assert average_precision(pred[:, ::-1], np.array([11]), gt, mask)[0, 0] == 1.0


def test_buckets_and_compaction() -> None:
    gt = np.array([[[0.0, 10.0], [20.0, 45.0], [50.0, 90.0]]])
    mask = np.ones((1, 3), bool)
    np.testing.assert_array_equal(bucket_window_mask(gt, mask, 0, 10), [[True, False, False]])
    np.testing.assert_array_equal(bucket_window_mask(gt, mask, 10, 30), [[False, True, False]])
    np.testing.assert_array_equal(bucket_window_mask(gt, mask, 30, 150), [[False, False, True]])
    packed, packed_mask = compact_windows(gt, np.array([[True, False, True]]))
    np.testing.assert_array_equal(packed, [[[0, 10], [50, 90]]])
    assert packed_mask.all()


def test_debiased_recall_hand_computed() -> None:
    # duration 100, GT [20, 40], top-1 [25, 40]: IoU 0.75; alpha_s = 1 - 5/100, alpha_e = 1
    gt = np.array([[[20.0, 40.0]]])
    mask = np.array([[True]])
    values = debiased_recall_at_1(np.array([[25.0, 40.0]]), gt, mask, np.array([100.0]), (0.3, 0.5, 0.7, 0.8))
    np.testing.assert_allclose(values[0], [0.95, 0.95, 0.95, 0.0])
    # R@2: among hitting candidates the one with the highest IoU is discounted
    pred = np.array([[[20.0, 30.0, 0.9], [21.0, 40.0, 0.8]]])
    values = debiased_recall(pred, np.array([2]), gt, mask, np.array([100.0]), (0.5,), n=2)
    assert values[0, 0] == pytest.approx(0.99)
    values = debiased_recall(pred, np.array([2]), gt, mask, np.array([100.0]), (0.5,), n=1)
    assert values[0, 0] == pytest.approx(0.9)


def test_center_in_mask() -> None:
    regions = np.array([[[10.0, 20.0], [40.0, 50.0]], [[0.0, 5.0], [0.0, 0.0]]])
    region_mask = np.array([[True, True], [True, False]])
    top1 = np.array([[38.0, 52.0], [6.0, 10.0]])
    np.testing.assert_array_equal(center_in_mask(top1, regions, region_mask), [True, False])


def _oracle_ap(pred: list[list[float]], gt: list[list[float]], thr: float) -> float:
    """The reference semantics with plain loops (see the module docstring of retrieval)."""
    ranked = sorted(pred[:10], key=lambda w: -w[2])
    locked = [False] * len(gt)
    tp = []
    for w in ranked:
        ious = cross_iou(np.array([w[:2]]), np.array(gt))[0]
        order = sorted(range(len(gt)), key=lambda j: (ious[j], j), reverse=True)
        hit = False
        for j in order:
            if ious[j] < thr:
                break
            if not locked[j]:
                locked[j] = hit = True
                break
        tp.append(hit)
    precision, recall, n_tp = [], [], 0
    for i, hit in enumerate(tp):
        n_tp += hit
        precision.append(n_tp / (i + 1))
        recall.append(n_tp / len(gt))
    precision = [0.0] + precision + [0.0]
    recall = [0.0] + recall + [1.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return sum((recall[i] - recall[i - 1]) * precision[i] for i in range(1, len(recall)) if recall[i] != recall[i - 1])


def test_ap_matches_loop_oracle_on_random_queries() -> None:
    rng = np.random.default_rng(0)
    n_queries = 60
    preds, gts = [], []
    for _ in range(n_queries):
        n_gt = int(rng.integers(1, 7))
        starts = rng.integers(0, 70, n_gt) * 2.0
        gts.append([[s, s + 2.0 * rng.integers(1, 10)] for s in starts])
        n_pred = int(rng.integers(1, 14))
        ps = rng.integers(0, 70, n_pred) * 2.0
        preds.append([[s, s + 2.0 * rng.integers(0, 12), float(rng.integers(0, 4))] for s in ps])  # tied scores
    width_g, width_p = max(map(len, gts)), min(10, max(map(len, preds)))
    gt = np.zeros((n_queries, width_g, 2))
    mask = np.zeros((n_queries, width_g), bool)
    pred = np.zeros((n_queries, width_p, 3))
    n_pred = np.array([min(len(p), 10) for p in preds])
    for q in range(n_queries):
        gt[q, : len(gts[q])] = gts[q]
        mask[q, : len(gts[q])] = True
        pred[q, : n_pred[q]] = preds[q][:10]
    ap = average_precision(pred, n_pred, gt, mask)
    for q in range(n_queries):
        for t, thr in enumerate(MAP_THRESHOLDS):
            assert ap[q, t] == pytest.approx(_oracle_ap(preds[q], gts[q], thr), abs=1e-12)


def _oracle_hl_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    if labels.min() == labels.max():
        return float(labels[0])
    thresholds = sorted(set(scores.tolist()), reverse=True)
    n_pos = labels.sum()
    points = []  # (recall, precision) per threshold, highest threshold first
    for t in thresholds:
        chosen = scores >= t
        points.append((labels[chosen].sum() / n_pos, labels[chosen].sum() / chosen.sum()))
    values, seen = [], {0.0}
    for i, (recall, _) in enumerate(points):
        if recall in seen:
            continue
        seen.add(recall)
        values.append(max(p for _, p in points[i:]))
    return float(np.mean(values))


def test_highlight_ap_matches_oracle_with_ties_and_padding() -> None:
    rng = np.random.default_rng(1)
    n_queries, width, n_ann = 40, 12, 3
    n_clips = rng.integers(3, width + 1, n_queries)
    scores = rng.integers(0, 5, (n_queries, width)).astype(float)  # many ties
    labels = (rng.random((n_queries, width, n_ann)) < 0.3).astype(float)
    labels[0] = 0.0
    labels[1, : n_clips[1]] = 1.0
    for q in range(n_queries):
        labels[q, n_clips[q] :] = 0.0
    ap = highlight_ap(scores, labels, n_clips)
    for q in range(n_queries):
        for a in range(n_ann):
            expected = _oracle_hl_ap(scores[q, : n_clips[q]], labels[q, : n_clips[q], a])
            assert ap[q, a] == pytest.approx(expected, abs=1e-12), (q, a)
    assert ap[0].tolist() == [0.0, 0.0, 0.0] and ap[1].tolist() == [1.0, 1.0, 1.0]


def test_highlight_hit_at_1() -> None:
    labels = np.zeros((2, 4, 3))
    labels[0, 2, 1] = 1.0
    hits = highlight_hit_at_1(np.array([2, 5]), labels, np.array([4, 4]))
    np.testing.assert_array_equal(hits, [1.0, 0.0])  # an argmax past the clips is a miss


@pytest.mark.parametrize("length", [1, 5, 7, 8, 9, 15, 16, 17, 40, 75, 128])
def test_ordered_row_sum_is_bit_identical_to_numpy(length: int) -> None:
    rng = np.random.default_rng(length)
    values = rng.random((200, length)) * rng.choice([-1e3, -1.0, 1e-3, 1.0, 1e3], (200, length))
    for keep in (rng.random((200, length)) < 0.6, np.arange(length)[None, :] < rng.integers(0, length + 1, 200)[:, None]):
        for reverse in (False, True):
            total, kept = ordered_row_sum(values, keep, reverse=reverse)
            step = -1 if reverse else 1
            expected = [np.sum(row[::step][k[::step]]) for row, k in zip(values, keep, strict=True)]
            assert total.tolist() == expected
            assert kept.tolist() == keep.sum(1).tolist()


@pytest.mark.parametrize("length", [1, 7, 8, 9, 16, 23, 75, 128])
def test_numpy_order_sum_of_prefixes(length: int) -> None:
    rng = np.random.default_rng(100 + length)
    values = rng.random((100, length)) * rng.choice([-1e3, -1.0, 1e-3, 1.0, 1e3], (100, length))
    counts = rng.integers(0, length + 1, 100)
    values[np.arange(length)[None, :] >= counts[:, None]] = 0.0
    expected = [np.sum(row[:c]) for row, c in zip(values, counts, strict=True)]
    assert numpy_order_sum(values, counts).tolist() == expected
