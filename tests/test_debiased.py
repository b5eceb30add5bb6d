"""dR@n,IoU@m (Yuan et al. 2021) for n in {1, 5}: hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrbench.metrics import debiased_recall, debiased_recall_at_1, recall_at_5
from mrbench.metrics.debiased import DEBIASED_NS
from mrbench.metrics.iou import paired_iou

THRESHOLDS = (0.3, 0.5, 0.7)


def _one(pred: list[list[float]], gt: list[list[float]], duration: float, n: int, n_pred: int | None = None,
         thresholds: tuple[float, ...] = THRESHOLDS) -> np.ndarray:
    """Values of a single query."""
    return debiased_recall(np.array([pred], dtype=float), np.array([len(pred) if n_pred is None else n_pred]),
                           np.array([gt], dtype=float), np.ones((1, len(gt)), dtype=bool), np.array([duration]),
                           thresholds, n=n)[0]


def test_dr1_hand_values() -> None:
    """D = 50, GT [10, 20], top-1 [12, 20]: IoU 0.8; alpha_s = 1 - 2/50 = 0.96, alpha_e = 1."""
    np.testing.assert_allclose(_one([[12, 20], [10, 20]], [[10, 20]], 50.0, n=1), [0.96, 0.96, 0.96])


def test_dr5_takes_the_best_discounted_hit_of_the_first_five() -> None:
    """D = 100, GT [20, 40]. Candidates: 1 [0, 10] misses; 2 [22, 40] (IoU 0.9, alpha 0.98);
    3 [18, 45] (IoU 20/27 = 0.741, alpha 0.98 * 0.95 = 0.931); 4 [25, 40] (IoU 0.75, alpha 0.95);
    5 [60, 70] misses; 6 [20, 40] exact but sixth: never read by dR@5."""
    pred = [[0, 10], [22, 40], [18, 45], [25, 40], [60, 70], [20, 40]]
    np.testing.assert_allclose(_one(pred, [[20, 40]], 100.0, n=5), [0.98, 0.98, 0.98])
    np.testing.assert_allclose(_one(pred, [[20, 40]], 100.0, n=6), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(_one(pred, [[20, 40]], 100.0, n=1), [0.0, 0.0, 0.0])
    # IoU@0.9: only candidate 2 hits (0.9 >= 0.9)
    assert _one(pred, [[20, 40]], 100.0, n=5, thresholds=(0.9, 0.95))[0] == pytest.approx(0.98)


def test_each_candidate_is_discounted_against_its_own_best_gt() -> None:
    """D = 100, GTs [0, 10] and [50, 90]. Candidate 1 [52, 90] pairs with [50, 90] (IoU 0.95,
    alpha 0.98); candidate 2 [0, 9] with [0, 10] (IoU 0.9, alpha 0.99): dR@2 = 0.99 at every t."""
    pred = [[52, 90], [0, 9]]
    np.testing.assert_allclose(_one(pred, [[0, 10], [50, 90]], 100.0, n=2), [0.99, 0.99, 0.99])
    np.testing.assert_allclose(_one(pred, [[0, 10], [50, 90]], 100.0, n=1), [0.98, 0.98, 0.98])


def test_padding_candidates_never_count() -> None:
    """Only n_pred = 1 candidate is real: the exact second slot is padding."""
    np.testing.assert_allclose(_one([[50, 60], [0, 10]], [[0, 10]], 100.0, n=5, n_pred=1), [0.0, 0.0, 0.0])


def test_the_highest_iou_rule_would_not_be_monotone() -> None:
    """D = 100, GT [40, 60]. Candidate 1 [30, 70]: IoU 20/40 = 0.5, alpha 0.9 * 0.9 = 0.81.
    Candidate 2 [20.1, 60]: IoU 20/39.9 = 0.5013 (higher), alpha 0.801 * 1 (lower). Discounting
    the highest-IoU hit would give dR@2 = 0.801 < dR@1 = 0.81; the best discounted hit keeps 0.81."""
    pred = [[30, 70], [20.1, 60]]
    one = _one(pred, [[40, 60]], 100.0, n=1, thresholds=(0.5,))[0]
    two = _one(pred, [[40, 60]], 100.0, n=2, thresholds=(0.5,))[0]
    assert one == pytest.approx(0.81) and two == pytest.approx(0.81)


def test_edge_cases() -> None:
    assert DEBIASED_NS == (1, 5)
    with pytest.raises(ValueError, match="n >= 1"):
        _one([[0, 10]], [[0, 10]], 100.0, n=0)
    empty = debiased_recall(np.zeros((2, 0, 2)), np.zeros(2, dtype=int), np.array([[[0.0, 1.0]]] * 2),
                            np.ones((2, 1), dtype=bool), np.array([10.0, 10.0]), THRESHOLDS, n=5)
    assert empty.shape == (2, 3) and not empty.any()


# ---- properties -------------------------------------------------------------------------------

@st.composite
def _batch(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n_queries = draw(st.integers(1, 6))
    k, g = draw(st.integers(1, 7)), draw(st.integers(1, 3))
    duration = np.array(draw(st.lists(st.floats(10, 200), min_size=n_queries, max_size=n_queries)))
    unit = st.floats(0, 1)
    starts = np.array(draw(st.lists(unit, min_size=n_queries * k, max_size=n_queries * k))).reshape(n_queries, k)
    lengths = np.array(draw(st.lists(st.floats(0.01, 1), min_size=n_queries * k, max_size=n_queries * k)))
    ends = np.minimum(starts + lengths.reshape(n_queries, k), 1.2)
    pred = np.stack([starts, ends], axis=-1) * duration[:, None, None]
    g_starts = np.array(draw(st.lists(st.floats(0, 0.9), min_size=n_queries * g, max_size=n_queries * g)))
    g_len = np.array(draw(st.lists(st.floats(0.02, 1), min_size=n_queries * g, max_size=n_queries * g)))
    g_starts = g_starts.reshape(n_queries, g)
    gt = np.stack([g_starts, np.minimum(g_starts + g_len.reshape(n_queries, g), 1.0)], axis=-1)
    gt = gt * duration[:, None, None]
    gt_mask = np.arange(g)[None, :] < np.array(draw(st.lists(st.integers(1, g), min_size=n_queries,
                                                             max_size=n_queries)))[:, None]
    n_pred = np.array(draw(st.lists(st.integers(0, k), min_size=n_queries, max_size=n_queries)))
    return pred, n_pred, gt, gt_mask, duration


def _reference(pred: np.ndarray, n_pred: np.ndarray, gt: np.ndarray, gt_mask: np.ndarray, duration: np.ndarray,
               n: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition, one query and candidate at a time: R@n hits and dR@n values ``[Q, T]``."""
    values = np.zeros((len(pred), len(THRESHOLDS)))
    hits = np.zeros_like(values, dtype=bool)
    for q in range(len(pred)):
        windows = gt[q][gt_mask[q]]
        for c in range(min(n, n_pred[q])):
            ious = [paired_iou(pred[q, c][None], w[None])[0] for w in windows]
            best = int(np.argmax(ious))
            alpha = max(0.0, 1 - abs(pred[q, c, 0] - windows[best, 0]) / duration[q]) * max(
                0.0, 1 - abs(pred[q, c, 1] - windows[best, 1]) / duration[q])
            for t, threshold in enumerate(THRESHOLDS):
                if ious[best] >= threshold:
                    hits[q, t] = True
                    values[q, t] = max(values[q, t], alpha)
    return values, hits


@given(_batch())
def test_matches_the_definition_and_is_bounded_by_recall(batch: tuple[np.ndarray, ...]) -> None:
    pred, n_pred, gt, gt_mask, duration = batch
    for n in DEBIASED_NS:
        values = debiased_recall(pred, n_pred, gt, gt_mask, duration, THRESHOLDS, n=n)
        expected, hits = _reference(pred, n_pred, gt, gt_mask, duration, n)
        np.testing.assert_allclose(values, expected, atol=1e-12)
        assert ((values >= 0) & (values <= hits)).all()  # dR@n <= R@n, per query and threshold
    r5 = recall_at_5(pred, n_pred, gt, gt_mask)[:, None] >= np.array(THRESHOLDS)[None, :]
    assert (debiased_recall(pred, n_pred, gt, gt_mask, duration, THRESHOLDS, n=5) <= r5).all()


@given(_batch())
def test_monotone_in_n_and_dr1_is_the_top1_value(batch: tuple[np.ndarray, ...]) -> None:
    pred, n_pred, gt, gt_mask, duration = batch
    curve = [debiased_recall(pred, n_pred, gt, gt_mask, duration, THRESHOLDS, n=n) for n in range(1, 8)]
    for smaller, larger in zip(curve, curve[1:], strict=False):
        assert (larger >= smaller).all()
    top1 = debiased_recall_at_1(pred[:, 0], gt, gt_mask, duration, THRESHOLDS)
    np.testing.assert_array_equal(np.where((n_pred > 0)[:, None], top1, 0.0), curve[0])
