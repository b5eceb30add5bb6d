"""Hand-computed metric cases for the edges where a small bug changes a number (issue 18).

Every expected value is worked out by hand in the comments from the reference evaluator's
definitions (../shared/reference/metrics_and_data.md, section 3), never by calling the code
under test a second time.
"""

from __future__ import annotations

import numpy as np
import pytest

from mrbench.metrics import (
    MAP_THRESHOLDS,
    average_precision,
    best_gt_for_top1,
    bucket_window_mask,
    center_in_mask,
    compact_windows,
    cross_iou,
    debiased_recall,
    highlight_ap,
    highlight_hit_at_1,
    paired_iou,
    recall_at_5,
    threshold_hits,
)
from mrbench.metrics._reduce import compact_left, numpy_order_sum, ordered_row_sum

# k / 20 for k = 10..19 is the double nearest to each threshold literal 0.5, 0.55, ... 0.95
# (an integer division rounds correctly, as does parsing the literal): spans [0, k] against
# a GT window [0, 20] have an IoU of *exactly* each threshold.
EXACT_K = list(range(10, 20))


def test_exact_threshold_values_are_the_threshold_literals() -> None:
    """The construction the other tests rely on: k/20 == t bit for bit."""
    assert [k / 20 for k in EXACT_K] == list(MAP_THRESHOLDS)


@pytest.mark.parametrize("k", EXACT_K)
def test_r1_hit_when_iou_is_exactly_the_threshold(k: int) -> None:
    """R1@t counts IoU >= t: a top-1 span of IoU exactly t hits at t and misses above it."""
    gt = np.array([[[0.0, 20.0]]])
    _, iou = best_gt_for_top1(np.array([[0.0, float(k)]]), gt, np.array([[True]]))
    assert iou[0] == k / 20
    hits = threshold_hits(iou, MAP_THRESHOLDS)[0]
    expected = [t <= k / 20 for t in MAP_THRESHOLDS]
    assert hits.tolist() == expected
    assert hits[k - 10] and (k == 19 or not hits[k - 9])


@pytest.mark.parametrize("k", EXACT_K)
def test_ap_counts_a_match_whose_iou_is_exactly_the_threshold(k: int) -> None:
    """mAP's greedy match accepts IoU == t (TP: AP 1) and rejects it for every higher t (AP 0),
    on one GT window and on the several-window path alike."""
    expected = [1.0 if t <= k / 20 else 0.0 for t in MAP_THRESHOLDS]
    pred = np.array([[[0.0, float(k), 0.9]]])
    one = average_precision(pred, np.array([1]), np.array([[[0.0, 20.0]]]), np.array([[True]]))
    assert one[0].tolist() == expected
    # a second, far GT window: recall is then 1/2 at most, so AP = 0.5 where the match holds
    two = average_precision(pred, np.array([1]), np.array([[[0.0, 20.0], [100.0, 120.0]]]),
                            np.array([[True, True]]))
    assert two[0].tolist() == [v / 2 for v in expected]


def test_ap_tie_between_gt_windows_goes_to_the_later_window() -> None:
    """Two adjacent GT windows [0,10] and [10,20]; the best-scored prediction [0,20] has IoU 0.5
    with both. The reference takes the *later* window on ties, so the second prediction [0,10]
    still finds [0,10] free: two TPs, AP@0.5 = 1. Taking the first window instead leaves [0,10]
    locked: TP, FP -> AP@0.5 = 0.5."""
    gt = np.array([[[0.0, 10.0], [10.0, 20.0]]])
    mask = np.array([[True, True]])
    pred = np.array([[[0.0, 20.0, 0.9], [0.0, 10.0, 0.8]]])
    ap = average_precision(pred, np.array([2]), gt, mask, thresholds=(0.5,))
    assert ap[0, 0] == 1.0
    # the mirror image: the tie then favours the window the second prediction needs -> 0.5
    gt_mirror = np.array([[[10.0, 20.0], [0.0, 10.0]]])
    ap = average_precision(pred, np.array([2]), gt_mirror, mask, thresholds=(0.5,))
    assert ap[0, 0] == 0.5


def test_ap_tie_between_gt_windows_with_many_windows() -> None:
    """The same tie on the path for more than four GT windows (three far-away extra windows):
    recall 2/5 at precision 1 -> AP 0.4; the wrong tie-break gives 1/5 -> 0.2."""
    far = [[100.0, 110.0], [120.0, 130.0], [140.0, 150.0]]
    gt = np.array([[[0.0, 10.0], [10.0, 20.0], *far]])
    mask = np.ones((1, 5), dtype=bool)
    pred = np.array([[[0.0, 20.0, 0.9], [0.0, 10.0, 0.8]]])
    assert average_precision(pred, np.array([2]), gt, mask, thresholds=(0.5,))[0, 0] == pytest.approx(0.4)


def test_ap_tie_between_scores_keeps_list_order() -> None:
    """Equal scores keep the submitted order (stable sort): a miss listed first, then an exact
    hit -> precision 1/2 at recall 1 -> AP 0.5 (1.0 if the hit were ranked first)."""
    gt = np.array([[[20.0, 30.0]]])
    mask = np.array([[True]])
    miss_first = np.array([[[0.0, 10.0, 0.5], [20.0, 30.0, 0.5]]])
    hit_first = np.array([[[20.0, 30.0, 0.5], [0.0, 10.0, 0.5]]])
    assert average_precision(miss_first, np.array([2]), gt, mask, thresholds=(0.5,))[0, 0] == 0.5
    assert average_precision(hit_first, np.array([2]), gt, mask, thresholds=(0.5,))[0, 0] == 1.0


def test_ap_higher_score_ranks_first_whatever_the_list_order() -> None:
    """Scores rank descending: a miss listed first with the lower score does not hurt (AP 1);
    with the higher score it does (AP 1/2)."""
    gt = np.array([[[20.0, 30.0]]])
    mask = np.array([[True]])
    low_miss = np.array([[[0.0, 10.0, 0.1], [20.0, 30.0, 0.9]]])
    high_miss = np.array([[[0.0, 10.0, 0.9], [20.0, 30.0, 0.1]]])
    assert average_precision(low_miss, np.array([2]), gt, mask, thresholds=(0.5,))[0, 0] == 1.0
    assert average_precision(high_miss, np.array([2]), gt, mask, thresholds=(0.5,))[0, 0] == 0.5


def test_ap_interpolation_hand_values() -> None:
    """Three GT windows, ranked predictions TP, FP, FP, TP (the fourth matches a new window):
    precision 1, 1/2, 1/3, 1/2 at recall 1/3, 1/3, 1/3, 2/3; made non-increasing from the right:
    1, 1/2, 1/2, 1/2. All-point AP = 1/3 * 1 + 1/3 * 1/2 = 1/2 (the 1/3 at step 3 is lifted)."""
    gt = np.array([[[0.0, 10.0], [20.0, 30.0], [40.0, 50.0]]])
    mask = np.ones((1, 3), dtype=bool)
    pred = np.array([[[0.0, 10.0, 0.9], [60.0, 70.0, 0.8], [80.0, 90.0, 0.7], [20.0, 30.0, 0.6]]])
    assert average_precision(pred, np.array([4]), gt, mask, thresholds=(0.5,))[0, 0] == pytest.approx(0.5)


def test_ap_second_prediction_on_a_matched_window_is_a_false_positive() -> None:
    """One GT window, two identical exact predictions: TP then FP (the window is locked);
    precision 1 at recall 1 -> AP 1, but with two windows the duplicate cannot take the other
    one: AP = 1/2 * 1 = 0.5 (not 1)."""
    pred = np.array([[[0.0, 10.0, 0.9], [0.0, 10.0, 0.8]]])
    one = average_precision(pred, np.array([2]), np.array([[[0.0, 10.0]]]), np.array([[True]]))
    assert one[0, 0] == 1.0
    two = average_precision(pred, np.array([2]), np.array([[[0.0, 10.0], [50.0, 60.0]]]),
                            np.array([[True, True]]))
    assert two[0, 0] == 0.5


def test_ap_ignores_padding_predictions_and_padding_gt_slots() -> None:
    """``n_pred`` real predictions only (an exact padding row must not count), and a masked
    GT slot is never matched: query 0 has AP 0 (its only real prediction misses), query 1 AP 1/2
    (one of two real windows found, its padding slot ignored)."""
    pred = np.array([
        [[50.0, 60.0, 0.9], [0.0, 10.0, 0.95]],  # second row is padding
        [[0.0, 10.0, 0.9], [0.0, 0.0, 0.0]],
    ])
    gt = np.array([[[0.0, 10.0], [0.0, 0.0], [0.0, 0.0]], [[0.0, 10.0], [20.0, 30.0], [0.0, 10.0]]])
    mask = np.array([[True, False, False], [True, True, False]])
    ap = average_precision(pred, np.array([1, 1]), gt, mask, thresholds=(0.5,))
    assert ap[:, 0].tolist() == [0.0, 0.5]


def test_ap_query_without_predictions_or_gt_scores_zero() -> None:
    """n_pred 0 -> AP 0 even if a padding row would match; a query with no real GT -> 0."""
    pred = np.array([[[0.0, 10.0, 0.9]], [[0.0, 10.0, 0.9]]])
    gt = np.array([[[0.0, 10.0]], [[0.0, 10.0]]])
    ap = average_precision(pred, np.array([0, 1]), gt, np.array([[True], [False]]), thresholds=(0.5,))
    assert ap[:, 0].tolist() == [0.0, 0.0]


def test_ap_keeps_only_the_first_ten_listed() -> None:
    """The exact hit listed 11th is cut before sorting (AP 0), listed 10th it counts (AP 1/10:
    nine higher-scored misses come first, precision 1/10 at recall 1)."""
    gt = np.array([[[0.0, 10.0]]])
    misses = [[100.0 + 20 * i, 110.0 + 20 * i, 0.9] for i in range(10)]
    eleventh = np.array([[*misses, [0.0, 10.0, 0.1]]])
    assert average_precision(eleventh, np.array([11]), gt, np.array([[True]]), thresholds=(0.5,))[0, 0] == 0.0
    tenth = np.array([[*misses[:9], [0.0, 10.0, 0.1]]])
    assert average_precision(tenth, np.array([10]), gt, np.array([[True]]),
                             thresholds=(0.5,))[0, 0] == pytest.approx(0.1)


def test_ap_nan_iou_counts_as_a_match() -> None:
    """A zero-length prediction on a zero-length GT window: IoU 0/0 = nan, which the reference
    counts as a match (``nan < t`` is False) -> AP 1 at every threshold."""
    pred = np.array([[[5.0, 5.0, 0.9]]])
    ap = average_precision(pred, np.array([1]), np.array([[[5.0, 5.0]]]), np.array([[True]]))
    assert ap[0].tolist() == [1.0] * 10
    two = average_precision(pred, np.array([1]), np.array([[[5.0, 5.0], [50.0, 60.0]]]),
                            np.array([[True, True]]), thresholds=(0.5,))
    assert two[0, 0] == 0.5


def test_ap_mixed_window_counts_in_one_call() -> None:
    """Queries with 1, 3 and 6 GT windows in one call (grouped internally) each get their own
    hand value: 1; 1/3 (one of three found); 2/6 (two of six found, both ranked first)."""
    width = 6
    gt = np.zeros((3, width, 2))
    mask = np.zeros((3, width), dtype=bool)
    gt[0, 0] = [0, 10]
    mask[0, 0] = True
    gt[1, :3] = [[0, 10], [20, 30], [40, 50]]
    mask[1, :3] = True
    gt[2] = [[0, 10], [20, 30], [40, 50], [60, 70], [80, 90], [100, 110]]
    mask[2] = True
    pred = np.zeros((3, 2, 3))
    pred[0] = [[0, 10, 0.9], [200, 210, 0.1]]
    pred[1] = [[20, 30, 0.9], [200, 210, 0.1]]
    pred[2] = [[60, 70, 0.9], [100, 110, 0.8]]
    ap = average_precision(pred, np.array([2, 2, 2]), gt, mask, thresholds=(0.5, 0.9))
    np.testing.assert_allclose(ap, [[1.0, 1.0], [1 / 3, 1 / 3], [2 / 6, 2 / 6]])


def test_r1_tie_between_gt_windows_takes_the_first() -> None:
    """Top-1 [0, 20] has IoU 0.5 with both adjacent windows: the first listed is chosen."""
    gt = np.array([[[10.0, 20.0], [0.0, 10.0]]])
    chosen, iou = best_gt_for_top1(np.array([[0.0, 20.0]]), gt, np.array([[True, True]]))
    assert chosen.tolist() == [[10.0, 20.0]]
    assert iou[0] == 0.5


def test_r1_uses_hull_iou_of_the_pair() -> None:
    """Hull IoU: [0,10] vs [5,15] = 5 / 15; non-overlapping pairs have IoU 0 (not a negative
    value that a hull formula without the clamp would give)."""
    assert paired_iou(np.array([[0.0, 10.0]]), np.array([[5.0, 15.0]]))[0] == pytest.approx(1 / 3)
    assert paired_iou(np.array([[0.0, 4.0]]), np.array([[6.0, 10.0]]))[0] == 0.0
    assert paired_iou(np.array([[2.0, 4.0]]), np.array([[0.0, 10.0]]))[0] == pytest.approx(0.2)


def test_cross_iou_hand_values() -> None:
    """True IoU inter / (len_a + len_b - inter), also for nested and touching spans."""
    a = np.array([[0.0, 10.0], [2.0, 4.0]])
    b = np.array([[0.0, 4.0], [10.0, 20.0], [3.0, 13.0]])
    np.testing.assert_allclose(cross_iou(a, b), [[0.4, 0.0, 7 / 13], [0.5, 0.0, 1 / 11]])


def test_recall_at_5_hand_values() -> None:
    """R5 takes the best true-IoU pair among the first five listed and all GT windows and
    reports its *hull* IoU; predictions past ``n_pred`` are ignored; a later GT window counts."""
    gt = np.array([[[0.0, 10.0], [30.0, 40.0]]])
    mask = np.array([[True, True]])
    pred = np.array([[[50.0, 60.0, 0.9], [31.0, 40.0, 0.8], [0.0, 5.0, 0.7], [30.0, 40.0, 0.1]]])
    # first three: best pair is [31,40] vs [30,40] (0.9); the exact 4th is cut by n_pred = 3
    assert recall_at_5(pred, np.array([3]), gt, mask)[0] == pytest.approx(0.9)
    assert recall_at_5(pred, np.array([4]), gt, mask)[0] == 1.0
    assert recall_at_5(pred, np.array([1]), gt, mask)[0] == 0.0
    # no real GT window at all -> 0
    assert recall_at_5(pred, np.array([4]), gt, np.array([[False, False]]))[0] == 0.0


def test_bucket_bounds_are_low_exclusive_high_inclusive() -> None:
    """Lengths exactly 10 and 30 fall in 'short' and 'middle' (``(low, high]``)."""
    gt = np.array([[[0.0, 10.0], [0.0, 10.5], [0.0, 30.0], [0.0, 30.5]]])
    mask = np.ones((1, 4), dtype=bool)
    assert bucket_window_mask(gt, mask, 0.0, 10.0).tolist() == [[True, False, False, False]]
    assert bucket_window_mask(gt, mask, 10.0, 30.0).tolist() == [[False, True, True, False]]
    assert bucket_window_mask(gt, mask, 30.0, 150.0).tolist() == [[False, False, False, True]]
    assert bucket_window_mask(gt, np.array([[False, True, True, True]]), 0.0, 10.0).tolist() == [[False] * 4]


def test_compact_windows_moves_real_windows_first() -> None:
    """Real windows keep their order at the front; the width is the largest count."""
    gt = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]]])
    mask = np.array([[False, True, True], [False, False, True]])
    packed, packed_mask = compact_windows(gt, mask)
    assert packed.tolist() == [[[3.0, 4.0], [5.0, 6.0]], [[11.0, 12.0], [0.0, 0.0]]]
    assert packed_mask.tolist() == [[True, True], [True, False]]


def test_debiased_recall_hand_values() -> None:
    """dR@1: hit IoU >= t times (1 - |ds|/D)(1 - |de|/D). Pred [10, 30], GT [10, 40], D = 100:
    IoU 20/30; alpha = 1 * (1 - 10/100) = 0.9 at t = 0.5, 0 at t = 0.7."""
    pred = np.array([[[10.0, 30.0]]])
    gt = np.array([[[10.0, 40.0]]])
    values = debiased_recall(pred, np.array([1]), gt, np.array([[True]]), np.array([100.0]), (0.5, 0.7))
    np.testing.assert_allclose(values, [[0.9, 0.0]])
    # boundaries more than a video apart: alpha clipped at 0, never negative
    far = debiased_recall(np.array([[[0.0, 250.0]]]), np.array([1]), np.array([[[0.0, 100.0]]]),
                          np.array([[True]]), np.array([100.0]), (0.3,))
    assert far[0, 0] == 0.0


def test_debiased_recall_without_candidates_is_zero() -> None:
    """No candidate column at all (every query predicted nothing): zeros ``[Q, T]``."""
    gt = np.array([[[0.0, 10.0]], [[5.0, 8.0]]])
    empty = debiased_recall(np.zeros((2, 0, 3)), np.zeros(2, dtype=int), gt, np.ones((2, 1), dtype=bool),
                            np.array([100.0, 50.0]), (0.3, 0.5, 0.7), n=5)
    assert empty.shape == (2, 3) and empty.dtype == np.float64 and not empty.any()

def test_debiased_recall_at_n_takes_the_best_iou_hit() -> None:
    """dR@2: among the hitting candidates the one of highest IoU is discounted (not the first):
    candidate 1 [0, 8] on GT [0, 10] (IoU 0.8, alpha 1 * 0.98), candidate 2 exact (alpha 1).
    A padding candidate (past n_pred) never counts."""
    pred = np.array([[[0.0, 8.0], [0.0, 10.0]]])
    gt = np.array([[[0.0, 10.0]]])
    dur = np.array([100.0])
    two = debiased_recall(pred, np.array([2]), gt, np.array([[True]]), dur, (0.5,), n=2)
    assert two[0, 0] == pytest.approx(1.0)
    one = debiased_recall(pred, np.array([1]), gt, np.array([[True]]), dur, (0.5,), n=2)
    assert one[0, 0] == pytest.approx(0.98)
    first_only = debiased_recall(pred, np.array([2]), gt, np.array([[True]]), dur, (0.5,), n=1)
    assert first_only[0, 0] == pytest.approx(0.98)


def test_center_in_mask_is_closed_at_both_ends() -> None:
    """Centres exactly on a region's start or end are inside; just past the end is not; a
    padding region never counts."""
    regions = np.array([[[10.0, 20.0], [0.0, 100.0]]] * 4)
    region_mask = np.array([[True, False]] * 4)
    top1 = np.array([[8.0, 12.0], [18.0, 22.0], [20.0, 20.5], [0.0, 19.0]])  # centres 10, 20, 20.25, 9.5
    assert center_in_mask(top1, regions, region_mask).tolist() == [True, True, False, False]


def test_hit_at_1_last_clip_and_past_the_last_clip() -> None:
    """Argmax at the last clip (n_clips - 1) is scored by its label; at n_clips it is a miss
    even when the padded label array holds a positive there; any annotator's positive counts."""
    labels = np.zeros((3, 5, 3))
    labels[:, 2, 1] = 1  # clip 2 positive for annotator 1
    labels[:, 3, :] = 1  # clip 3: padding for a 3-clip video
    n_clips = np.array([3, 3, 5])
    hits = highlight_hit_at_1(np.array([2, 3, 3]), labels, n_clips)
    assert hits.tolist() == [1.0, 0.0, 1.0]
    assert highlight_hit_at_1(np.array([0]), labels[:1], np.array([3])).tolist() == [0.0]


def test_hit_at_1_argmax_beyond_the_label_array() -> None:
    """An argmax past every clip of the widest video is a miss, not an index error."""
    labels = np.ones((1, 3, 3))
    assert highlight_hit_at_1(np.array([7]), labels, np.array([3])).tolist() == [0.0]


def test_highlight_ap_hand_values() -> None:
    """Per annotator: scores 0.9, 0.6, 0.5, 0.1 with labels 1,0,1,0 -> precision 1 and 2/3 at
    the two positives -> AP (1 + 2/3) / 2 = 5/6; an all-positive column -> 1; all-negative -> 0."""
    scores = np.array([[0.9, 0.6, 0.5, 0.1]])
    labels = np.zeros((1, 4, 3))
    labels[0, [0, 2], 0] = 1
    labels[0, :, 1] = 1
    ap = highlight_ap(scores, labels, np.array([4]))
    np.testing.assert_allclose(ap, [[5 / 6, 1.0, 0.0]])


def test_highlight_ap_tied_scores_count_one_recall_level() -> None:
    """Scores 0.9, 0.5, 0.5 with labels 1, 0, 1: the tied pair forms one threshold -> recall
    levels 1/2 (precision 1) and 1 (precision 2/3): AP = 5/6. Ranking the tied positive first
    instead would give 1."""
    labels = np.zeros((1, 3, 1))
    labels[0, [0, 2], 0] = 1
    ap = highlight_ap(np.array([[0.9, 0.5, 0.5]]), labels, np.array([3]))
    assert ap[0, 0] == pytest.approx(5 / 6)
    # the same labels without the tie (the positive second-ranked): 1 and 1 -> 1
    ap = highlight_ap(np.array([[0.9, 0.4, 0.5]]), labels, np.array([3]))
    assert ap[0, 0] == pytest.approx(1.0)


def test_highlight_ap_ignores_clips_past_n_clips() -> None:
    """A highest-scored negative past the video's clips is ignored, and so is a positive
    label there: AP 1 on the 2 real clips (1 would drop to 1/2 if clip 2 counted)."""
    scores = np.array([[0.5, 0.1, 0.9]])
    labels = np.zeros((1, 3, 1))
    labels[0, 0, 0] = 1
    assert highlight_ap(scores, labels, np.array([2]))[0, 0] == 1.0
    labels[0, 2, 0] = 1  # a positive past the end does not make the column "all positive"
    labels[0, 1, 0] = 0
    assert highlight_ap(scores, labels, np.array([2]))[0, 0] == 1.0


def test_highlight_ap_three_tied_groups_hand_value() -> None:
    """Scores (0.8, 0.8, 0.5, 0.5, 0.1) with labels (0, 1, 1, 0, 1): thresholds 0.8 -> TP 1 of 2
    (recall 1/3, P 1/2), 0.5 -> 2 of 4 (recall 2/3, P 1/2), 0.1 -> 3 of 5 (recall 1, P 3/5).
    Interpolated: 3/5, 3/5, 3/5 -> AP 3/5."""
    labels = np.array([[[0], [1], [1], [0], [1]]], dtype=float)
    ap = highlight_ap(np.array([[0.8, 0.8, 0.5, 0.5, 0.1]]), labels, np.array([5]))
    assert ap[0, 0] == pytest.approx(3 / 5)


def test_ordered_sums_match_numpy_for_every_length() -> None:
    """Row sums in numpy's order (bit-identical) for 1..40 kept values, forward and reversed."""
    rng = np.random.default_rng(3)
    for length in range(1, 41):
        values = rng.random((2, length + 3)) * 10.0 ** rng.integers(-3, 3, size=(2, length + 3))
        keep = np.zeros_like(values, dtype=bool)
        keep[0, :length] = True
        keep[1, 3:] = True
        total, counts = ordered_row_sum(values, keep)
        assert counts.tolist() == [length, length]
        assert total[0] == np.sum(values[0, :length])
        assert total[1] == np.sum(values[1, 3:])
        total_rev, _ = ordered_row_sum(values, keep, reverse=True)
        assert total_rev[0] == np.sum(values[0, :length][::-1])


def test_compact_left_and_numpy_order_sum_hand_values() -> None:
    """compact_left moves kept values to the front; numpy_order_sum rejects rows over 128."""
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    keep = np.array([[False, True, True], [True, False, False]])
    compacted, counts = compact_left(values, keep)
    assert compacted.tolist() == [[2.0, 3.0], [4.0, 0.0]]
    assert counts.tolist() == [2, 1]
    assert numpy_order_sum(compacted, counts).tolist() == [5.0, 4.0]
    with pytest.raises(ValueError):
        numpy_order_sum(np.zeros((1, 129)), np.array([129]))


def test_highlight_ap_sums_from_the_highest_recall_level() -> None:
    """Ranked labels 1,0,1,1,0,1,1,0,1,0,1: interpolated precision at the 7 positives is
    1, 3/4, 3/4, 5/7, 5/7, 2/3, 7/11. The reference (sklearn's curve, highest recall first)
    adds them from 7/11 back to 1; in that order the mean is bit-for-bit 0.7473716759431045,
    one ulp below the sum taken the other way."""
    labels = np.array([1, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1], dtype=float)
    scores = np.array([8, 4, 7, 3, 10, 6, 9, 5, 1, 0, 2], dtype=float)
    levels = [1.0, 3 / 4, 3 / 4, 5 / 7, 5 / 7, 2 / 3, 7 / 11]
    total = 0.0
    for value in reversed(levels):
        total += value
    forward = 0.0
    for value in levels:
        forward += value
    assert total != forward  # the case separates the two orders
    ap = highlight_ap(scores[None], labels[None, :, None], np.array([11]))
    assert ap[0, 0] == total / 7


def test_compact_left_width_is_the_largest_count() -> None:
    """At most one kept value per row: one column (the documented ``[R, max count]``)."""
    compacted, counts = compact_left(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[False, True], [False, False]]))
    assert compacted.shape == (2, 1) and compacted.tolist() == [[2.0], [0.0]]
    assert counts.tolist() == [1, 0]


def test_ordered_row_sum_of_rows_without_columns() -> None:
    """Zero columns: every sum is 0 and every count 0 (no index error)."""
    total, counts = ordered_row_sum(np.zeros((2, 0)), np.zeros((2, 0), dtype=bool))
    assert total.tolist() == [0.0, 0.0] and counts.tolist() == [0, 0]


def test_debiased_recall_default_n_is_one() -> None:
    """Without ``n`` only the first candidate counts: it misses, the exact second one is ignored."""
    pred = np.array([[[50.0, 60.0], [0.0, 10.0]]])
    values = debiased_recall(pred, np.array([2]), np.array([[[0.0, 10.0]]]), np.array([[True]]),
                             np.array([100.0]), (0.5,))
    assert values[0, 0] == 0.0


def test_debiased_recall_keeps_the_first_best_and_reads_every_candidate() -> None:
    """n = 3 over [start, end] candidates (two columns): exact first (alpha 1) beats a later
    0.8-IoU hit (alpha 0.98); of equal IoUs the larger discount counts; a hit listed third counts."""
    gt, mask, dur = np.array([[[0.0, 10.0]]]), np.array([[True]]), np.array([100.0])
    best_first = np.array([[[0.0, 10.0], [0.0, 8.0], [50.0, 60.0]]])
    assert debiased_recall(best_first, np.array([3]), gt, mask, dur, (0.5,), n=3)[0, 0] == 1.0
    # IoU 0.8 twice: [0, 8] (alpha 1 * 0.98) first, [1, 9] (alpha 0.99 * 0.99) second -> the best
    tie = np.array([[[0.0, 8.0], [1.0, 9.0], [50.0, 60.0]]])
    assert debiased_recall(tie, np.array([3]), gt, mask, dur, (0.5,), n=3)[0, 0] == pytest.approx(0.9801)
    third = np.array([[[50.0, 60.0], [70.0, 80.0], [0.0, 10.0]]])
    assert debiased_recall(third, np.array([3]), gt, mask, dur, (0.5,), n=3)[0, 0] == 1.0


def test_debiased_alpha_of_a_far_start_is_clipped_at_zero() -> None:
    """Start 150 s before the GT's in a 100-s video: alpha_s = 1 - 1.5 < 0 -> 0 (IoU 0.4 hits 0.3)."""
    values = debiased_recall(np.array([[[-150.0, 100.0]]]), np.array([1]), np.array([[[0.0, 100.0]]]),
                             np.array([[True]]), np.array([100.0]), (0.3,))
    assert values[0, 0] == 0.0


def test_zero_length_spans_raise_no_numpy_warnings() -> None:
    """0/0 IoUs and queries without GT windows are handled silently (no RuntimeWarning reaches
    the user of ``mrbench score``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(cross_iou(np.array([[2.0, 2.0]]), np.array([[2.0, 2.0]]))[0, 0])
        ap = average_precision(np.array([[[0.0, 10.0, 0.9], [0.0, 0.0, 0.0]]]), np.array([1]),
                               np.array([[[0.0, 10.0], [0.0, 0.0]]]), np.array([[False, False]]))
        assert ap[0].tolist() == [0.0] * 10


def test_paired_iou_of_zero_hulls_is_zero_in_a_large_batch() -> None:
    """Hull length 0 gives 0, also among many pairs (not whatever memory the output held)."""
    spans = np.tile(np.array([[5.0, 5.0], [0.0, 10.0]]), (500, 1))
    others = np.tile(np.array([[5.0, 5.0], [5.0, 15.0]]), (500, 1))
    iou = paired_iou(spans, others)
    assert iou[0::2].tolist() == [0.0] * 500
    np.testing.assert_allclose(iou[1::2], 1 / 3)


def test_ap_max_pred_applies_to_every_group_of_window_counts() -> None:
    """max_pred = 1 with queries of 1 and 3 GT windows: only the first-ranked prediction counts
    in both (the exact match ranked second is cut): AP 0 and 0."""
    gt = np.zeros((2, 3, 2))
    mask = np.zeros((2, 3), dtype=bool)
    gt[0, 0], mask[0, 0] = [0, 10], True
    gt[1], mask[1] = [[0, 10], [20, 30], [40, 50]], True
    pred = np.array([[[60, 70, 0.9], [0, 10, 0.8]], [[60, 70, 0.9], [0, 10, 0.8]]], dtype=float)
    ap = average_precision(pred, np.array([2, 2]), gt, mask, thresholds=(0.5,), max_pred=1)
    assert ap[:, 0].tolist() == [0.0, 0.0]


def test_r1_of_a_query_without_gt_is_zero() -> None:
    """A query whose GT slots are all padding gets IoU 0 (never 1), whatever its top-1."""
    _, iou = best_gt_for_top1(np.array([[0.0, 10.0], [0.0, 10.0]]), np.array([[[0.0, 10.0]], [[0.0, 10.0]]]),
                              np.array([[True], [False]]))
    assert iou.tolist() == [1.0, 0.0]


def test_recall_at_5_nan_pairs_count_as_zero_and_rows_are_separate() -> None:
    """A zero-length prediction on a zero-length GT window (IoU nan) does not beat a real 0.9
    pair; a query with no real prediction scores 0 even if its padding row would match."""
    gt = np.array([[[5.0, 5.0], [10.0, 20.0]], [[0.0, 10.0], [0.0, 10.0]]])
    mask = np.array([[True, True], [True, False]])
    pred = np.array([[[5.0, 5.0, 0.9], [10.0, 19.0, 0.8]], [[0.0, 10.0, 0.9], [0.0, 10.0, 0.8]]])
    assert recall_at_5(pred, np.array([2, 0]), gt, mask).tolist() == [pytest.approx(0.9), 0.0]


def test_ap_adds_only_the_recall_steps_in_order() -> None:
    """Three GT windows found at ranks 2, 6 and 9 of ten: precision 1/2, 2/6, 3/9 at recall
    1/3, 2/3, 1 (already non-increasing). AP = sum over the three recall steps, added left to
    right like the reference's ``np.sum`` of three terms: 7/18 bit for bit. Summing the seven
    zero terms of the unchanged-recall ranks too (in numpy's 8-lane order) lands one ulp lower."""
    gt = np.array([[[0.0, 10.0], [20.0, 30.0], [40.0, 50.0]]])
    far = [[100.0 + 20 * i, 110.0 + 20 * i] for i in range(7)]
    ranked = [far[0], [0.0, 10.0], far[1], far[2], far[3], [20.0, 30.0], far[4], far[5], [40.0, 50.0], far[6]]
    pred = np.array([[[*w, 1.0 - 0.05 * k] for k, w in enumerate(ranked)]])
    recall = [1 / 3, 2 / 3, 1.0]
    terms = [recall[0] * (1 / 2), (recall[1] - recall[0]) * (2 / 6), (recall[2] - recall[1]) * (3 / 9)]
    expected = (terms[0] + terms[1]) + terms[2]
    assert expected == 7 / 18
    ap = average_precision(pred, np.array([10]), gt, np.ones((1, 3), dtype=bool), thresholds=(0.5,))
    assert ap[0, 0] == expected


def test_average_precision_keeps_max_pred_when_queries_are_grouped() -> None:
    """``max_pred`` above 10 holds for every query, also when queries with different GT-window
    counts are matched in separate groups: query 0's only hit is its 11th prediction (AP 1/11
    with ``max_pred=20``, 0 with the default 10); query 1 finds both its windows (AP 1)."""
    pred = np.zeros((2, 12, 3))
    pred[0, :10] = [[80.0, 90.0, 1.0 - i / 100] for i in range(10)]
    pred[0, 10:] = [[0.0, 10.0, 0.5], [50.0, 60.0, 0.4]]
    pred[1, :2] = [[0.0, 10.0, 0.9], [20.0, 30.0, 0.8]]
    n_pred = np.array([12, 2])
    gt = np.array([[[0.0, 10.0], [0.0, 0.0]], [[0.0, 10.0], [20.0, 30.0]]])
    gt_mask = np.array([[True, False], [True, True]])
    wide = average_precision(pred, n_pred, gt, gt_mask, max_pred=20)
    np.testing.assert_allclose(wide, [[1 / 11] * wide.shape[1], [1.0] * wide.shape[1]])
    default = average_precision(pred, n_pred, gt, gt_mask)
    np.testing.assert_allclose(default, [[0.0] * wide.shape[1], [1.0] * wide.shape[1]])
