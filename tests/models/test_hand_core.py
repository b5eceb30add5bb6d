"""Hand-computed values for the reference models' core (issue 18): the matcher and the set
loss with *non-zero* logits (so the class terms do not cancel), the class weights (the
no-object weight on the background class), the saliency losses, TDEM, VSDC's ground-truth
block (a window's partial last clip stays protected) and the post-processing. Expected values
are worked out in the comments; only documented options are used."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from reference_models.core.losses import (  # noqa: E402
    SetCriterion,
    margin_loss,
    negative_pair_loss,
    rank_contrastive_loss,
)
from reference_models.core.matcher import HungarianMatcher  # noqa: E402
from reference_models.core.postprocess import soft_nms, temporal_nms, to_windows  # noqa: E402
from reference_models.core.tdem import TDEM  # noqa: E402
from reference_models.core.vsdc import (  # noqa: E402
    _jittered_counts,
    _pick,
    choose_partners,
    eligible_partners,
    gt_blocks,
    pad_length,
    pair_similarity,
    plan_layouts,
    tef,
)

pytestmark = pytest.mark.torch


def assert_values(actual: torch.Tensor, expected: list, atol: float = 1e-6) -> None:
    """``actual`` equals the nested list ``expected`` within ``atol`` (float64 comparison)."""
    torch.testing.assert_close(actual.double(), torch.tensor(expected, dtype=torch.float64), atol=atol, rtol=0)


def softplus(x: float) -> float:
    """log(1 + e^x) = -log(sigmoid(-x)): the cross-entropy of the *other* class of a 2-way logit."""
    return math.log1p(math.exp(x))


# Two predictions, one target (cxw, normalised):
#   q0 = (0.5, 0.2) -> xx [0.4, 0.6]; target (0.5, 0.4) -> xx [0.3, 0.7]
#       L1 = 0 + 0.2 = 0.2; IoU = 0.2 / 0.4 = 0.5, hull 0.4 = union -> gIoU 0.5
#   q1 = (0.3, 0.4) -> xx [0.1, 0.5]: L1 = 0.2 + 0 = 0.2; inter 0.2, union 0.6, hull 0.6 -> gIoU 1/3
# logits q0 = [2, 0] (p_fg = sigmoid(2)), q1 = [0, 1] (p_fg = sigmoid(-1))
SPANS = [[0.5, 0.2], [0.3, 0.4]]
TARGET = [[0.5, 0.4]]
LOGITS = [[2.0, 0.0], [0.0, 1.0]]
P_FG = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))]


def test_matcher_cost_with_nonzero_logits_hand_values() -> None:
    """C = 10 * L1 - 1 * gIoU - 4 * p_fg, with p_fg the softmax of the *foreground* (index 0):
    q0: 2 - 0.5 - 4 sigmoid(2); q1: 2 - 1/3 - 4 sigmoid(-1)."""
    matcher = HungarianMatcher(cost_span=10.0, cost_giou=1.0, cost_class=4.0)
    cost = matcher.cost(torch.tensor([LOGITS]), torch.tensor([SPANS]), torch.tensor([TARGET]))
    expected = [[2.0 - 0.5 - 4 * P_FG[0]], [2.0 - 1 / 3 - 4 * P_FG[1]]]
    assert cost.shape == (1, 2, 1)
    assert_values(cost[0], expected)


def test_matcher_cost_weights_scale_their_own_terms() -> None:
    """Each weight multiplies its own term: span 1, gIoU 2, class 3 -> q0: 0.2 - 1 - 3 p_fg."""
    matcher = HungarianMatcher(cost_span=1.0, cost_giou=2.0, cost_class=3.0)
    cost = matcher.cost(torch.tensor([LOGITS]), torch.tensor([SPANS]), torch.tensor([TARGET]))
    assert cost[0, 0, 0].item() == pytest.approx(0.2 - 2 * 0.5 - 3 * P_FG[0], abs=1e-6)
    assert cost[0, 1, 0].item() == pytest.approx(0.2 - 2 / 3 - 3 * P_FG[1], abs=1e-6)
    without_logits = matcher.cost(None, torch.tensor([SPANS]), torch.tensor([TARGET]))
    assert without_logits[0, :, 0].tolist() == pytest.approx([0.2 - 1.0, 0.2 - 2 / 3], abs=1e-6)


def test_matcher_class_term_decides_the_assignment() -> None:
    """q1 is the exact span (cost -1 - 4 p_fg) but its logits say background; q0 is off by
    0.2 in width (cost 2 - 0.5 - 4 p_fg) with confident foreground logits: with logits [5, 0]
    vs [0, 5] the costs are 1.5 - 3.973 = -2.47 and -1 - 0.027 = -1.03: q0 wins. Reading the
    background probability instead would pick q1."""
    matcher = HungarianMatcher()
    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]])
    spans = torch.tensor([[[0.5, 0.2], [0.5, 0.4]]])
    batch, query, target = matcher(logits, spans, torch.tensor([TARGET]), torch.tensor([[True]]))
    assert (batch.tolist(), query.tolist(), target.tolist()) == ([0], [0], [0])
    # without the class term the exact span wins
    batch, query, target = HungarianMatcher(cost_class=0.0)(logits, spans, torch.tensor([TARGET]),
                                                             torch.tensor([[True]]))
    assert query.tolist() == [1]


def test_matcher_skips_padding_targets_and_empty_samples() -> None:
    """Only the first ``target_mask.sum()`` targets of a row are matched; a row without
    targets contributes nothing; indices name the batch row."""
    matcher = HungarianMatcher()
    spans = torch.tensor([[[0.2, 0.1], [0.7, 0.2]], [[0.2, 0.1], [0.7, 0.2]]])
    targets = torch.tensor([[[0.7, 0.2], [0.2, 0.1]], [[0.2, 0.1], [0.0, 0.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    batch, query, target = matcher(None, spans, targets, mask)
    assert list(zip(batch.tolist(), query.tolist(), target.tolist(), strict=True)) == [
        (0, 0, 1), (0, 1, 0), (1, 0, 0)]
    empty = matcher(None, spans, targets, torch.zeros(2, 2, dtype=torch.bool))
    assert [t.numel() for t in empty] == [0, 0, 0]


def test_set_losses_with_nonzero_logits_and_class_weights() -> None:
    """q0 is matched (cost -2.02 against 0.59 for q1). Per-query cross-entropy with weights
    [1, eos_coef = 0.1]: q0 (target foreground) log(1 + e^-2); q1 (background) 0.1 * log(1 + e^-1);
    loss_label is the *plain* mean over the 2 queries. Swapping the weights gives
    (0.1 log(1 + e^-2) + log(1 + e^-1)) / 2 = 0.163 instead of 0.079.
    loss_span = mean(|0.5 - 0.5|, |0.2 - 0.4|) = 0.1, loss_giou = 1 - 0.5."""
    criterion = SetCriterion(HungarianMatcher(), eos_coef=0.1)
    losses = criterion.set_losses(torch.tensor([[LOGITS]]), torch.tensor([[SPANS]]), torch.tensor([TARGET]),
                                  torch.tensor([[True]]))
    label = (softplus(-2.0) + 0.1 * softplus(-1.0)) / 2
    assert losses["loss_label"].tolist() == pytest.approx([label], abs=1e-6)
    assert losses["loss_span"].tolist() == pytest.approx([0.1], abs=1e-6)
    assert losses["loss_giou"].tolist() == pytest.approx([0.5], abs=1e-6)


def test_set_losses_average_over_matched_pairs_per_layer() -> None:
    """Two layers: layer 0 predicts the targets exactly (span and gIoU losses 0), layer 1 is
    off by 0.1 in both centres (L1 mean 0.05 per pair, averaged over the 2 matched pairs).
    Label loss with zero logits: every query costs log 2 times its class weight; 2 matched
    (weight 1) and 2 unmatched (0.1) -> plain mean (1 + 1 + 0.1 + 0.1) log 2 / 4 per layer."""
    targets = torch.tensor([[[0.2, 0.2], [0.7, 0.2]]])
    exact = torch.tensor([[0.2, 0.2], [0.7, 0.2], [0.5, 0.05], [0.9, 0.05]])
    shifted = exact.clone()
    shifted[:2, 0] += 0.1
    spans = torch.stack([exact, shifted])[:, None]  # [D=2, B=1, Q=4, 2]
    logits = torch.zeros(2, 1, 4, 2)
    criterion = SetCriterion(HungarianMatcher(), eos_coef=0.1)
    losses = criterion.set_losses(logits, spans, targets, torch.tensor([[True, True]]))
    assert losses["loss_span"].tolist() == pytest.approx([0.0, 0.05], abs=1e-6)
    # shifted by 0.1 at width 0.2: inter 0.1, union 0.3, hull 0.3 -> gIoU 1/3
    assert losses["loss_giou"].tolist() == pytest.approx([0.0, 2 / 3], abs=1e-6)
    assert losses["loss_label"].tolist() == pytest.approx([2.2 * math.log(2) / 4] * 2, abs=1e-6)


def test_set_criterion_forward_weights_and_aux_names() -> None:
    """forward: total = 10 span + 1 gIoU + 4 label (every layer) + 1 saliency; the last layer's
    terms are unsuffixed, the auxiliary layer's end in ``_0``; ``aux=False`` drops layer 0.
    Saliency: margin only (no ``saliency_neg``): pos 2 / neg 0 -> 2 * max(0, 0.2 + 0.9 - 0.5) = 1.2."""
    spans = torch.tensor([[SPANS], [SPANS]])  # two identical layers
    logits = torch.tensor([[LOGITS], [LOGITS]])
    outputs = {"all_logits": logits, "all_spans": spans, "saliency": torch.tensor([[0.9, 0.1, 0.5]])}
    batch = {"spans": torch.tensor([TARGET]), "span_mask": torch.tensor([[True]]),
             "video_mask": torch.ones(1, 3), "saliency_pos": torch.tensor([[2]]),
             "saliency_neg": torch.tensor([[0]])}
    label = (softplus(-2.0) + 0.1 * softplus(-1.0)) / 2
    per_layer = 10 * 0.1 + 1 * 0.5 + 4 * label
    parts = SetCriterion(HungarianMatcher(), eos_coef=0.1)(outputs, batch)
    assert set(parts) == {"loss", "loss_span", "loss_giou", "loss_label", "loss_span_0", "loss_giou_0",
                          "loss_label_0", "loss_saliency"}
    assert parts["loss_saliency"].item() == pytest.approx(1.2, abs=1e-6)
    assert parts["loss_label_0"].item() == pytest.approx(label, abs=1e-6)
    assert parts["loss"].item() == pytest.approx(2 * per_layer + 1.2, abs=1e-5)
    weighted = SetCriterion(HungarianMatcher(), span=1.0, giou=2.0, label=3.0, saliency=0.5, eos_coef=0.1,
                            aux=False)(outputs, batch)
    assert "loss_span_0" not in weighted
    assert weighted["loss"].item() == pytest.approx(0.1 + 2 * 0.5 + 3 * label + 0.5 * 1.2, abs=1e-5)


def test_margin_loss_averages_over_pairs_times_two() -> None:
    """Two pairs: max(0, 0.2 + 0.9 - 0.5) = 0.6 and max(0, 0.2 + 0.1 - 0.9) = 0 -> 2 * 0.6 / 2."""
    scores = torch.tensor([[0.9, 0.1, 0.5]])
    assert margin_loss(scores, torch.tensor([[2, 0]]), torch.tensor([[0, 1]])).item() == pytest.approx(0.6)
    assert margin_loss(scores, torch.tensor([[2]]), torch.tensor([[0]]), margin=0.5).item() == pytest.approx(1.8)


def test_negative_pair_loss_sums_valid_clips_and_averages_rows() -> None:
    """Row 0: softplus(0) + softplus(ln 3) = ln 2 + ln 4; row 1: only clip 0 valid -> ln 2.
    Mean over the 2 rows = 2 ln 2."""
    scores_neg = torch.tensor([[0.0, math.log(3.0)], [0.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert negative_pair_loss(scores_neg, mask).item() == pytest.approx(2 * math.log(2.0), abs=1e-6)


def test_rank_contrastive_loss_hand_value() -> None:
    """Scores [1, 0], negatives [0, 0], labels [2, 0], tau 0.5: logits [2, 0, 0, 0];
    log p(clip 0) = 2 - log(e^2 + 3). Ranks 1 and 2 have clip 0 as their only positive, ranks
    3..11 none (skipped). Loss = -(2 log p) / 12. A padded clip (mask 0) gets logit -1e3/tau."""
    log_p = 2.0 - math.log(math.exp(2.0) + 3.0)
    loss = rank_contrastive_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]),
                                 torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    assert loss.item() == pytest.approx(-2 * log_p / 12, rel=1e-5)
    # clip 1 padded: logits [2, -2000, 0, -2000] -> log p = 2 - log(e^2 + 1)
    padded = rank_contrastive_loss(torch.tensor([[1.0, 5.0]]), torch.tensor([[0.0, 5.0]]),
                                   torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    assert padded.item() == pytest.approx(-2 * (2.0 - math.log(math.exp(2.0) + 1.0)) / 12, rel=1e-5)
    # tau 1 and 3 ranks, divisor 3: log p = 1 - log(e + 3), rank 1 and 2 count
    other = rank_contrastive_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]),
                                  torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]]), tau=1.0, ranks=3,
                                  divisor=3.0)
    assert other.item() == pytest.approx(-2 * (1.0 - math.log(math.e + 3.0)) / 3, rel=1e-5)


def test_rank_contrastive_sample_without_positives_contributes_zero() -> None:
    """Row 1 has no label >= 1: its per-rank term is 0, and the batch mean halves row 0's."""
    log_p = 2.0 - math.log(math.exp(2.0) + 3.0)
    loss = rank_contrastive_loss(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.zeros(2, 2),
                                 torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.ones(2, 2))
    assert loss.item() == pytest.approx(-2 * log_p / 2 / 12, rel=1e-5)


# --- post-processing ----------------------------------------------------------------------------
def test_to_windows_scales_clips_rounds_widens_and_sorts() -> None:
    """10 clips of 2 s (20 s of features), duration 19 s:
    [0.1, 0.33] -> [2, 6.6] -> rounded [2, 6]; [0.5, 0.52] -> [10, 10.4] -> [10, 10], shorter
    than a clip -> widened to [10, 12]; [0.95, 1.0] -> [19, 20] clipped to [19, 19] -> widened
    to end min(21, 19) = 19, start 17. Sorted by score, rounded to 4 decimals."""
    spans = [[0.1, 0.33], [0.5, 0.52], [0.95, 1.0]]
    out = to_windows(spans, [0.2, 0.91234567, 0.5], n_clips=10, clip_len=2.0, duration=19.0,
                     round_to_clip=True, nms_thresh=-1.0, top_k=10)
    assert out == [[10.0, 12.0, 0.9123], [17.0, 19.0, 0.5], [2.0, 6.0, 0.2]]


def test_to_windows_without_rounding_keeps_seconds_and_top_k() -> None:
    """round_to_clip=False: [2, 6.6] and [10, 10.4] as they are; the end past the duration is
    clipped (20 -> 19); top_k 2 keeps the two best."""
    spans = [[0.1, 0.33], [0.5, 0.52], [0.95, 1.0]]
    out = to_windows(spans, [0.2, 0.9, 0.5], n_clips=10, clip_len=2.0, duration=19.0,
                     round_to_clip=False, nms_thresh=-1.0, top_k=2)
    assert out == [[10.0, 10.4, 0.9], [19.0, 19.0, 0.5]]
    out = to_windows(spans, [0.2, 0.9, 0.5], n_clips=10, clip_len=2.0, duration=19.0,
                     round_to_clip=False, nms_thresh=-1.0, top_k=10)
    assert out[-1] == [2.0, 6.6, 0.2]


def test_to_windows_equal_scores_keep_their_order_and_nms() -> None:
    """Stable sort on equal scores; NMS at 0.5 drops [0, 10] s vs [0, 9] s (IoU 0.9) but keeps
    [0, 5] s (IoU exactly 0.5 is not above the threshold)."""
    spans = [[0.0, 0.5], [0.0, 0.45], [0.0, 0.25]]
    out = to_windows(spans, [0.9, 0.9, 0.8], n_clips=20, clip_len=1.0, duration=20.0,
                     round_to_clip=False, nms_thresh=0.5, top_k=10)
    assert out == [[0.0, 10.0, 0.9], [0.0, 5.0, 0.8]]
    no_nms = to_windows(spans, [0.9, 0.9, 0.8], n_clips=20, clip_len=1.0, duration=20.0,
                        round_to_clip=False, nms_thresh=-1.0, top_k=10)
    assert [w[:2] for w in no_nms] == [[0.0, 10.0], [0.0, 9.0], [0.0, 5.0]]


def test_temporal_nms_strictly_above_threshold_and_zero_union() -> None:
    """Kept: the first; [0, 5] (IoU 0.5, not > 0.5); [20, 30] (disjoint). Dropped: [1, 10]
    (IoU 0.9). Zero-length duplicates (union 0) are never dropped."""
    windows = torch.tensor([[0.0, 10.0], [1.0, 10.0], [0.0, 5.0], [20.0, 30.0]]).numpy()
    assert temporal_nms(windows, 0.5).tolist() == [0, 2, 3]
    assert temporal_nms(windows, 0.95).tolist() == [0, 1, 2, 3]
    points = torch.tensor([[3.0, 3.0], [3.0, 3.0]]).numpy()
    assert temporal_nms(points, 0.1).tolist() == [0, 1]


# --- TDEM -------------------------------------------------------------------------------------
def test_tdem_dynamics_hand_values() -> None:
    """dyn_1 = x_1 - s, dyn_i = x_i - x_{i-1}."""
    tdem = TDEM(d_model=2, nhead=1, dropout=0.0)
    with torch.no_grad():
        tdem.start_token.copy_(torch.tensor([0.5, 0.5]))
    video = torch.tensor([[[1.0, 2.0], [4.0, 6.0], [4.0, 5.0]]])
    assert tdem.dynamics(video).tolist() == [[[0.5, 1.5], [3.0, 4.0], [0.0, -1.0]]]


def constant_attention_tdem(beta: float) -> TDEM:
    """A TDEM whose attention outputs the constant bias [1, -2] (out_proj weight 0)."""
    tdem = TDEM(d_model=2, nhead=1, dropout=0.0, beta=beta)
    with torch.no_grad():
        tdem.attn.out_proj.weight.zero_()
        tdem.attn.out_proj.bias.copy_(torch.tensor([1.0, -2.0]))
    return tdem.eval()


def test_tdem_mixes_beta_video_with_attention_and_keeps_padding() -> None:
    """Output = beta x + (1 - beta) a_dyn at valid positions (a_dyn = [1, -2] here), x itself
    at padded ones; beta = 1 returns x."""
    video = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    text = torch.ones(1, 2, 2)
    out = constant_attention_tdem(0.7)(video, torch.tensor([[1, 1, 0]]), text, torch.tensor([[1, 0]]))
    expected = [[0.7 * 1 + 0.3, 0.7 * 2 - 0.6], [0.7 * 3 + 0.3, 0.7 * 4 - 0.6], [5.0, 6.0]]
    assert_values(out[0], expected)
    same = constant_attention_tdem(1.0)(video, torch.tensor([[1, 1, 0]]), text, torch.tensor([[1, 0]]))
    assert same.tolist() == video.tolist()


def test_tdem_pos_differences_the_position_encoded_tokens() -> None:
    """With ``pos`` the differences are taken on x + pos, the mix still uses x: so
    out(x, pos=p) = out(x + p, no pos) - beta * p at valid positions."""
    with torch.random.fork_rng():  # seeded weights, the global RNG left as it was
        torch.manual_seed(0)
        tdem = TDEM(d_model=4, nhead=2, dropout=0.0, beta=0.6).eval()
        video, pos = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
        text, text_mask = torch.randn(2, 3, 4), torch.tensor([[1, 1, 1], [1, 1, 0]])
        video_mask = torch.ones(2, 5)
        with_pos = tdem(video, video_mask, text, text_mask, pos=pos)
        shifted = tdem(video + pos, video_mask, text, text_mask)
        torch.testing.assert_close(with_pos, shifted - 0.6 * pos, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(with_pos, tdem(video, video_mask, text, text_mask), atol=1e-3)


@pytest.mark.parametrize("beta", [-0.1, 1.5])
def test_tdem_rejects_beta_outside_unit_interval(beta: float) -> None:
    """beta must lie in [0, 1]; both ends are allowed."""
    with pytest.raises(ValueError):
        TDEM(d_model=2, nhead=1, beta=beta)
    TDEM(d_model=2, nhead=1, beta=0.0)
    TDEM(d_model=2, nhead=1, beta=1.0)


# --- VSDC -------------------------------------------------------------------------------------
def cxw(start: float, end: float, n: int) -> list[float]:
    """Normalised (center, width) of a window [start, end] in clips of a video of n clips."""
    return [(start + end) / 2 / n, (end - start) / n]


def test_gt_block_keeps_a_windows_partial_last_clip() -> None:
    """Windows in clips (video of 10): [2, 4.5] -> block [2, 5) (clip 4 is partly inside, so it
    is protected); [2, 4] -> [2, 4); [3.2, 3.4] -> [3, 4); a zero-width window at 3 -> [3, 4);
    [8.5, 12] -> clamped to [8, 10); two windows [1, 2] and [6.5, 7] -> one block [1, 7)."""
    cases = [([(2, 4.5)], (2, 5)), ([(2, 4)], (2, 4)), ([(3.2, 3.4)], (3, 4)), ([(3, 3)], (3, 4)),
             ([(8.5, 12)], (8, 10)), ([(1, 2), (6.5, 7)], (1, 7))]
    spans = torch.zeros(len(cases), 2, 2)
    mask = torch.zeros(len(cases), 2, dtype=torch.bool)
    for row, (windows, _) in enumerate(cases):
        for slot, (start, end) in enumerate(windows):
            spans[row, slot] = torch.tensor(cxw(start, end, 10))
            mask[row, slot] = True
    first, last = gt_blocks(spans, mask, torch.full((len(cases),), 10))
    assert list(zip(first.tolist(), last.tolist(), strict=True)) == [c[1] for c in cases]


def test_layout_keeps_the_block_with_its_partial_last_clip_in_order() -> None:
    """A target of 12 clips with block [2, 5) (window [2, 4.5]) and another video of 10 clips:
    over many draws, the new video holds clips 2, 3, 4 of the target contiguously, at
    positions 2 + shift, 3 + shift, 4 + shift, and each at most once; clips before the block
    come before it."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([12, 10])
    start, end = gt_blocks(torch.tensor([[cxw(2, 4.5, 12)], [cxw(0, 1, 10)]]),
                           torch.tensor([[True], [True]]), lengths)
    assert (start.tolist(), end.tolist()) == ([2, 0], [5, 1])
    for _ in range(30):
        lay = plan_layouts(lengths, start, end, torch.tensor([0, 1]), torch.tensor([1, 0]),
                           torch.tensor([False, True]), gen)
        for k, target_row in enumerate([0, 1]):
            n = int(lay.length[k])
            own = [(int(lay.clip[k, i]), i) for i in range(n) if lay.own[k, i]]
            assert all(int(lay.row[k, i]) == target_row for _, i in own)
            block = range(int(start[target_row]), int(end[target_row]))
            where = {clip: i for clip, i in own if clip in block}
            assert sorted(where) == list(block)
            assert [where[c] - c for c in block] == [int(lay.shift[k])] * len(block)
            assert sum(1 for clip, _ in own if clip in block) == len(block)
            before = [i for clip, i in own if clip < block.start]
            assert all(i < where[block.start] for i in before)


def test_tef_hand_values() -> None:
    """[i / n, (i + 1) / n] over the n valid clips, zero at padding."""
    out = tef(torch.tensor([[1, 1, 1, 1, 0]]))
    assert_values(out[0], [[0, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0], [0, 0]])


def test_pair_similarity_hand_value() -> None:
    """Videos of one source: a = clips (1,0), (0,1); b = (1,0), padding. Clip cosines a-b:
    1 and 0 over the 2 valid pairs; with topk 1 the mean of the best is 1, with topk 50 the mean
    of both valid pairs (0.5); a-a: cosines 1, 0, 0, 1 -> topk 50: 0.5."""
    video = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1], [1, 0]])
    top1 = pair_similarity(video, mask, [(0, 2)], topk=1)
    assert top1[0, 1].item() == pytest.approx(1.0)
    full = pair_similarity(video, mask, [(0, 2)], topk=50)
    assert full[0, 1].item() == pytest.approx(0.5)
    assert full[0, 0].item() == pytest.approx(0.5)
    assert full[1, 1].item() == pytest.approx(1.0)


def test_pair_similarity_averages_sources() -> None:
    """Two sources (columns [0, 2) and [2, 4)): cosines 1 and -1 -> clip-pair similarity 0."""
    video = torch.tensor([[[1.0, 0.0, 1.0, 0.0]], [[1.0, 0.0, -1.0, 0.0]]])
    sim = pair_similarity(video, torch.ones(2, 1), [(0, 2), (2, 4)], topk=50)
    assert sim[0, 1].item() == pytest.approx(0.0, abs=1e-6)
    assert sim[0, 0].item() == pytest.approx(1.0)


def test_partner_choice_by_similarity_hand_values() -> None:
    """sim rows: anchor 0 likes row 2 most (0.9) and row 1 least (0.1); row 3 is the same
    video (never eligible, though its similarity is highest); a near-duplicate filter at 0.8
    removes row 2."""
    sim = torch.tensor([[1.0, 0.1, 0.9, 0.99], [0.1, 1.0, 0.5, 0.2], [0.9, 0.5, 1.0, 0.3],
                        [0.99, 0.2, 0.3, 1.0]])
    video_id = torch.tensor([7, 8, 9, 7])
    gen = torch.Generator().manual_seed(0)
    eligible = eligible_partners(video_id)
    anchors = torch.tensor([0])
    assert choose_partners(anchors, eligible, "sim", gen, sim).tolist() == [2]
    assert choose_partners(anchors, eligible, "dissim", gen, sim).tolist() == [1]
    filtered = eligible_partners(video_id, exclude_above=0.8, sim=sim)
    assert choose_partners(anchors, filtered, "sim", gen, sim).tolist() == [1]
    same = eligible_partners(video_id, same_video=True)
    assert choose_partners(anchors, same, "sim", gen, sim).tolist() == [3]
    assert eligible_partners(video_id).diagonal().tolist() == [False] * 4
    with pytest.raises(ValueError):
        choose_partners(anchors, eligible, "nearest", gen, sim)
    with pytest.raises(ValueError):
        eligible_partners(video_id, exclude_above=0.8)


def test_matcher_span_cost_is_l1_over_both_coordinates() -> None:
    """(0.4, 0.2) against (0.5, 0.4): L1 = 0.1 + 0.2 = 0.3 (an L2 distance would be 0.224).
    xx [0.3, 0.5] vs [0.3, 0.7]: IoU 0.5, hull = union -> gIoU 0.5. Cost 10 * 0.3 - 0.5."""
    cost = HungarianMatcher(cost_class=0.0).cost(None, torch.tensor([[[0.4, 0.2]]]), torch.tensor([TARGET]))
    assert cost.item() == pytest.approx(3.0 - 0.5, abs=1e-6)


def test_matcher_continues_after_a_sample_without_targets() -> None:
    """Row 0 has no target, row 1 one: row 1 is still matched."""
    spans = torch.tensor([[[0.2, 0.1], [0.7, 0.2]], [[0.2, 0.1], [0.7, 0.2]]])
    targets = torch.tensor([[[0.0, 0.0]], [[0.7, 0.2]]])
    batch, query, target = HungarianMatcher()(None, spans, targets, torch.tensor([[False], [True]]))
    assert (batch.tolist(), query.tolist(), target.tolist()) == ([1], [1], [0])


def test_set_losses_without_any_target_are_zero_not_nan() -> None:
    """No real window in the batch: span and gIoU losses 0 (the matched count is clamped at 1);
    every query is background: label loss = 0.1 * log 2 with zero logits."""
    criterion = SetCriterion(HungarianMatcher(), eos_coef=0.1)
    losses = criterion.set_losses(torch.zeros(1, 1, 3, 2), torch.full((1, 1, 3, 2), 0.3), torch.zeros(1, 1, 2),
                                  torch.tensor([[False]]))
    assert losses["loss_span"].tolist() == [0.0] and losses["loss_giou"].tolist() == [0.0]
    assert losses["loss_label"].item() == pytest.approx(0.1 * math.log(2.0), abs=1e-6)


def test_saliency_loss_adds_rank_contrastive_and_negative_pairs_with_negatives() -> None:
    """With ``saliency_neg``: margin (0 here: positive 1 vs negative 0 with margin 0.2 -> 0.2 - 1 < 0)
    + rank-contrastive (labels [2, 0]: -2 (2 - log(e^2 + 3)) / 12) + negative-pair loss
    (softplus(0) * 2 clips = 2 log 2)."""
    outputs = {"saliency": torch.tensor([[1.0, 0.0]]), "saliency_neg": torch.tensor([[0.0, 0.0]])}
    batch = {"video_mask": torch.ones(1, 2), "saliency_pos": torch.tensor([[0]]), "saliency_neg": torch.tensor([[1]]),
             "saliency_all": torch.tensor([[2.0, 0.0]])}
    loss = SetCriterion(HungarianMatcher()).saliency_loss(outputs, batch)
    expected = 0.0 - 2 * (2.0 - math.log(math.exp(2.0) + 3.0)) / 12 + 2 * math.log(2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_tdem_attention_mask_blocks_text_tokens_like_the_padding_mask() -> None:
    """``attn_mask`` True = blocked: blocking text token 2 for every head and position gives the
    output of a text mask without token 2."""
    with torch.random.fork_rng():  # seeded weights, the global RNG left as it was
        torch.manual_seed(1)
        tdem = TDEM(d_model=4, nhead=2, dropout=0.0, beta=0.5).eval()
        video, text = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
        block = torch.zeros(2, 3, 3, dtype=torch.bool)
        block[:, :, 2] = True
        with_mask = tdem(video, torch.ones(1, 3), text, torch.ones(1, 3), attn_mask=block)
        padded = tdem(video, torch.ones(1, 3), text, torch.tensor([[1, 1, 0]]))
        torch.testing.assert_close(with_mask, padded, atol=1e-6, rtol=1e-6)
        assert not torch.allclose(with_mask, tdem(video, torch.ones(1, 3), text, torch.ones(1, 3)), atol=1e-4)


def test_to_windows_release_options() -> None:
    """``span_scale="duration"``: spans are scaled by the duration (19 s), not the clip length
    (20 s): [0.1, 0.5] -> [1.9, 9.5]; ``widen_short=False`` keeps a window shorter than a clip
    ([10, 10.4] s rounds to the empty [10, 10]); an unknown scale is an error."""
    out = to_windows([[0.1, 0.5]], [0.5], n_clips=10, clip_len=2.0, duration=19.0, round_to_clip=False,
                     span_scale="duration")
    assert out == [[1.9, 9.5, 0.5]]
    out = to_windows([[0.5, 0.52]], [0.5], n_clips=10, clip_len=2.0, duration=19.0, widen_short=False)
    assert out == [[10.0, 10.0, 0.5]]
    with pytest.raises(ValueError):
        to_windows([[0.1, 0.5]], [0.5], n_clips=10, clip_len=2.0, duration=19.0, span_scale="seconds")


def test_pick_takes_exactly_count_eligible_positions() -> None:
    """Per row: min(count, #eligible) positions, all eligible, uniformly spread over draws."""
    gen = torch.Generator().manual_seed(0)
    eligible = torch.tensor([[True, False, True, True, False, True], [True, True, False, False, False, False]])
    hits = torch.zeros(2, 6)
    for _ in range(400):
        chosen = _pick(eligible, torch.tensor([2, 5]), gen)
        assert chosen.sum(1).tolist() == [2, 2]
        assert not (chosen & ~eligible).any()
        hits += chosen.float()
    # row 0: each of the 4 eligible positions in half of the draws
    assert ((hits[0, eligible[0]] / 400 - 0.5).abs() < 0.1).all()


def test_jittered_counts_keep_or_repeat_by_the_tempo_rate() -> None:
    """Rate fixed by jitter (r, r): r = 0.5 keeps floor(0.5 n) clips once; r = 1 keeps n;
    r = 1.5 keeps n and repeats floor(0.5 n) of them (count 2)."""
    gen = torch.Generator().manual_seed(0)
    eligible = torch.ones(1, 10, dtype=torch.bool)
    n = torch.tensor([7])
    half = _jittered_counts(eligible, n, (0.5, 0.5), gen)
    assert half.sum().item() == 3 and half.max().item() == 1
    same = _jittered_counts(eligible, n, (1.0, 1.0), gen)
    assert same.sum().item() == 7 and same.max().item() == 1
    more = _jittered_counts(eligible, n, (1.5, 1.5), gen)
    assert (more > 0).sum().item() == 7 and (more == 2).sum().item() == 3


def test_plan_layout_counts_without_jitter() -> None:
    """No jitter, alpha 0.7: target of 20 clips with block [5, 8): 17 background clips ->
    floor(0.7 * 17) = 11 own clips + the 3 block clips; the other video of 10 clips gives
    floor(0.3 * 10) = 3 clips (> 2, kept). With 4 clips the other set (floor(1.2) = 1) is dropped."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([20, 10, 4])
    start, end = torch.tensor([5, 0, 0]), torch.tensor([8, 1, 1])
    lay = plan_layouts(lengths, start, end, torch.tensor([0, 0]), torch.tensor([1, 2]),
                       torch.tensor([False, False]), gen, alpha=0.7, jitter=(1.0, 1.0))
    assert lay.length.tolist() == [11 + 3 + 3, 11 + 3]
    assert lay.own.sum(1).tolist() == [14, 14]
    assert lay.mask.sum(1).tolist() == [17, 14]


def test_choose_partners_mix_takes_best_or_worst_about_half_the_time() -> None:
    """``mix``: each anchor takes the most similar eligible row or the least similar one with
    p = 1/2, never a row in between; ``random`` never an ineligible row."""
    sim = torch.tensor([[1.0, 0.9, 0.5, 0.1]] * 400)  # every anchor row: best 1, worst 3
    eligible = torch.tensor([[False, True, True, True]]).expand(400, 4)
    gen = torch.Generator().manual_seed(0)
    anchors = torch.arange(400)
    picks = choose_partners(anchors, eligible, "mix", gen, sim)
    assert set(picks.tolist()) == {1, 3}
    assert abs((picks == 1).float().mean().item() - 0.5) < 0.1
    random_picks = choose_partners(anchors, eligible, "random", gen)
    assert set(random_picks.tolist()) == {1, 2, 3}


def test_pad_length_cuts_or_pads_with_zeros() -> None:
    """Along dim 1: cut to the width, or zero-padded to it."""
    x = torch.arange(6.0).reshape(1, 3, 2)
    assert pad_length(x, 2).tolist() == [[[0.0, 1.0], [2.0, 3.0]]]
    assert pad_length(x, 4).tolist() == [[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [0.0, 0.0]]]


def test_soft_nms_hand_values() -> None:
    """Windows [0,10] .9, [1,10] .8, [20,30] .7, [0,5] .6, thresh 0.3, sigma 0.5; IoU =
    intersection / hull. Keep [0,10]: [1,10] (IoU 0.9) -> .8 e^(-0.81/0.5), [0,5] (0.5) ->
    .6 e^(-0.25/0.5). Keep [20,30] (.7, overlaps nothing). Keep [0,5]: [1,10] (IoU 4/10) ->
    times e^(-0.16/0.5). Keep [1,10]. top_k 2 stops after two."""
    windows = [[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [0.0, 5.0]]
    kept, decayed = soft_nms(windows, [0.9, 0.8, 0.7, 0.6], 0.3, 0.5, 10)
    assert kept.tolist() == [[0.0, 10.0], [20.0, 30.0], [0.0, 5.0], [1.0, 10.0]]
    expected = [0.9, 0.7, 0.6 * math.exp(-0.5), 0.8 * math.exp(-1.62) * math.exp(-0.32)]
    assert decayed.tolist() == pytest.approx(expected, rel=1e-12)
    two, _ = soft_nms(windows, [0.9, 0.8, 0.7, 0.6], 0.3, 0.5, 2)
    assert two.tolist() == [[0.0, 10.0], [20.0, 30.0]]
    # IoU exactly at the threshold (0.5 for [0, 5] under [0, 10]) is not decayed
    _, same = soft_nms([[0.0, 10.0], [0.0, 5.0]], [0.9, 0.6], 0.5, 0.5, 10)
    assert same.tolist() == [0.9, 0.6]
    single, score = soft_nms([[1.0, 2.0]], [0.4], 0.3, 0.5, 10)
    assert single.tolist() == [[1.0, 2.0]] and score.tolist() == [0.4]


def test_soft_nms_iou_uses_the_hull_of_the_two_windows() -> None:
    """IoU = intersection / hull, hull from the smaller start to the larger end:
    [5, 15] (kept first) against [0, 10]: 5 / 15 (not above 0.4: no decay);
    [10, 20] against [11, 20] (starts away from 0): 9 / 10 -> decay e^(-0.81 / 0.5);
    a hull of exactly 1 ([0, 1] against [0, 0.5]: 0.5) decays too;
    two windows already decay (no shortcut for pairs); disjoint windows never do."""
    _, scores = soft_nms([[5.0, 15.0], [0.0, 10.0]], [0.9, 0.8], 0.4, 0.5, 10)
    assert scores.tolist() == [0.9, 0.8]
    _, scores = soft_nms([[10.0, 20.0], [11.0, 20.0]], [0.9, 0.8], 0.3, 0.5, 10)
    assert scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-1.62)], rel=1e-12)
    _, scores = soft_nms([[0.0, 1.0], [0.0, 0.5]], [0.9, 0.8], 0.3, 0.5, 10)
    assert scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-0.5)], rel=1e-12)
    _, scores = soft_nms([[0.0, 1.0], [2.0, 3.0]], [0.9, 0.8], 0.3, 0.5, 10)
    assert scores.tolist() == [0.9, 0.8]


def test_temporal_nms_iou_of_windows_away_from_zero() -> None:
    """True IoU (union, not hull) of windows that do not start at 0: [10, 20] vs [11, 20] is
    0.9 (dropped at 0.5); [0, 0.5] vs [0, 0.4] (union 0.5 < 1) is 0.8 (dropped); close but
    disjoint [0, 1] and [2, 3] are both kept; no windows -> an empty int64 index."""
    assert temporal_nms(np.array([[10.0, 20.0], [11.0, 20.0], [30.0, 40.0]]), 0.5).tolist() == [0, 2]
    assert temporal_nms(np.array([[0.0, 0.5], [0.0, 0.4]]), 0.5).tolist() == [0]
    assert temporal_nms(np.array([[0.0, 1.0], [2.0, 3.0]]), 0.3).tolist() == [0, 1]
    empty = temporal_nms(np.zeros((0, 2)), 0.5)
    assert empty.dtype == np.int64 and empty.shape == (0,)


def test_to_windows_edges() -> None:
    """Negative starts clip to 0; a short window at the very start widens to [0, clip]; values
    round to 4 decimals; the default keeps 10 windows; 20 equal scores keep their order."""
    out = to_windows([[-0.05, 0.2]], [0.5], n_clips=10, clip_len=2.0, duration=20.0, round_to_clip=False)
    assert out == [[0.0, 4.0, 0.5]]
    out = to_windows([[0.0, 0.01]], [0.5], n_clips=10, clip_len=2.0, duration=20.0)
    assert out == [[0.0, 2.0, 0.5]]
    out = to_windows([[0.1061728, 0.2123456]], [0.123456], n_clips=10, clip_len=2.0, duration=20.0,
                     round_to_clip=False)
    assert out == [[2.1235, 4.2469, 0.1235]]
    many = [[i / 40, i / 40 + 0.01] for i in range(20)]
    assert len(to_windows(many, [0.5] * 20, n_clips=10, clip_len=2.0, duration=20.0, round_to_clip=False)) == 10
    ordered = to_windows(many, [0.5] * 20, n_clips=10, clip_len=2.0, duration=20.0, round_to_clip=False, top_k=20)
    assert [w[0] for w in ordered] == [round(i / 40 * 20, 4) for i in range(20)]


def test_set_losses_match_with_the_class_term_and_skip_padding_targets() -> None:
    """The set loss matches with the logits: q0 (width off by 0.2, logits [5, 0]) wins over the
    exact q1 (logits [0, 5]), so loss_span = 0.1, not 0. A padding target slot (mask False) is
    never matched: the result is the same with or without it."""
    criterion = SetCriterion(HungarianMatcher(), eos_coef=0.1)
    logits = torch.tensor([[[[5.0, 0.0], [0.0, 5.0]]]])
    spans = torch.tensor([[[[0.5, 0.2], [0.5, 0.4]]]])
    one = criterion.set_losses(logits, spans, torch.tensor([TARGET]), torch.tensor([[True]]))
    assert one["loss_span"].tolist() == pytest.approx([0.1], abs=1e-6)
    padded = criterion.set_losses(logits, spans, torch.tensor([[TARGET[0], [0.9, 0.1]]]),
                                  torch.tensor([[True, False]]))
    assert padded["loss_span"].tolist() == pytest.approx([0.1], abs=1e-6)
    assert padded["loss_label"].item() == pytest.approx(one["loss_label"].item(), abs=1e-7)


def test_criterion_uses_its_own_margin_and_tau_and_the_last_layer_without_aux() -> None:
    """margin 0.5 (negative clip 0 scores 1, positive clip 1 scores 0): 2 * (0.5 + 1 - 0) = 3;
    tau 1 in the rank-contrastive term (log p = 1 - log(e + 3)), negative pairs 2 log 2; with
    aux=False over three layers only the last one (exact spans: span loss 0) counts."""
    outputs = {"saliency": torch.tensor([[1.0, 0.0]]), "saliency_neg": torch.tensor([[0.0, 0.0]])}
    batch = {"video_mask": torch.ones(1, 2), "saliency_pos": torch.tensor([[1]]), "saliency_neg": torch.tensor([[0]]),
             "saliency_all": torch.tensor([[2.0, 0.0]])}
    loss = SetCriterion(HungarianMatcher(), margin=0.5, tau=1.0).saliency_loss(outputs, batch)
    expected = 2 * (0.5 + 1.0 - 0.0) - 2 * (1.0 - math.log(math.e + 3.0)) / 12 + 2 * math.log(2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    off, exact = [[0.2, 0.2], [0.8, 0.2]], [[0.5, 0.4], [0.9, 0.1]]
    layers = {"all_logits": torch.zeros(3, 1, 2, 2), "all_spans": torch.tensor([[off], [off], [exact]]),
              "saliency": torch.zeros(1, 2)}
    parts = SetCriterion(HungarianMatcher(), aux=False)(layers, {**batch, "spans": torch.tensor([TARGET]),
                                                                "span_mask": torch.tensor([[True]])})
    assert parts["loss_span"].item() == pytest.approx(0.0, abs=1e-6) and "loss_span_0" not in parts


def test_criterion_and_matcher_defaults() -> None:
    """Documented defaults: matcher costs span 10, giou 1, class 4; the criterion's no-object
    weight 0.1 (class weights [1, 0.1]), kept out of the state dict (not a checkpoint entry)."""
    matcher = HungarianMatcher()
    assert (matcher.cost_span, matcher.cost_giou, matcher.cost_class) == (10.0, 1.0, 4.0)
    criterion = SetCriterion(matcher)
    assert criterion.class_weight.tolist() == pytest.approx([1.0, 0.1])
    assert "class_weight" not in criterion.state_dict()
    assert (criterion.margin, criterion.tau, criterion.aux) == (0.2, 0.5, True)


def test_eligible_partners_keep_the_video_rule_and_the_similarity_bound_inclusive() -> None:
    """The near-duplicate filter keeps a similarity exactly at the bound and adds to (never
    replaces) the other-video rule."""
    sim = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.3], [0.3, 0.3, 1.0]])
    video_id = torch.tensor([1, 2, 1])
    assert eligible_partners(video_id, exclude_above=0.8, sim=sim).tolist() == [
        [False, True, False], [True, False, True], [False, True, False]]
    same = eligible_partners(video_id, exclude_above=0.5, sim=sim, same_video=True)
    assert same.tolist() == [[False, False, True], [False, False, True], [True, True, False]]


def test_pair_similarity_default_topk_is_50() -> None:
    """One video of 8 clips (64 clip pairs with itself): the 8 diagonal cosines are 1 and the 56
    others 0.5, so the 50 best pairs average (8 + 42 * 0.5) / 50 = 0.58 (51: 29.5 / 51)."""
    video = torch.full((1, 8, 9), 0.0)
    video[0, :, 0] = 1.0
    video[0, torch.arange(8), torch.arange(1, 9)] = 1.0  # each clip: e_0 + e_i -> cosine 0.5 across clips
    sim = pair_similarity(video, torch.ones(1, 8), [(0, 9)])
    assert sim.item() == pytest.approx((8 + 42 * 0.5) / 50, rel=1e-6)


def test_tef_of_a_single_clip_video() -> None:
    """One valid clip: n = 1, so its endpoints are [0, 1]; padding stays 0."""
    assert_values(tef(torch.tensor([[1, 0, 0]])), [[[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    assert tef(torch.tensor([[1, 0, 0]])).dtype == torch.float32


def test_tdem_with_beta_one_returns_the_video_itself() -> None:
    """beta = 1: the module is the identity, the very tensor given (even for a sample whose
    text is all padding, where attention would be undefined)."""
    torch.manual_seed(0)
    module = TDEM(4, 2, dropout=0.0, beta=1.0)
    video = torch.randn(2, 3, 4)
    text_mask = torch.tensor([[1, 1], [0, 0]])
    out = module(video, torch.ones(2, 3), torch.randn(2, 2, 4), text_mask)
    assert out is video


def test_tdem_layers_and_dropout() -> None:
    """The flow MLP is (LayerNorm, Dropout, Linear, ReLU) twice; the attention uses the same
    dropout."""
    module = TDEM(4, 2, dropout=0.25)
    kinds = [type(layer).__name__ for layer in module.flow_mlp]
    assert kinds == ["LayerNorm", "Dropout", "Linear", "ReLU"] * 2
    assert [layer.p for layer in module.flow_mlp if isinstance(layer, torch.nn.Dropout)] == [0.25, 0.25]
    assert module.attn.dropout == 0.25


def test_soft_nms_degenerate_cases() -> None:
    """Two zero-length windows at the same point have an empty hull: IoU 0, no decay; top_k 0
    keeps nothing (empty arrays, not an error)."""
    kept, scores = soft_nms([[5.0, 5.0], [5.0, 5.0]], [0.9, 0.8], 0.3, 0.5, 10)
    assert kept.tolist() == [[5.0, 5.0], [5.0, 5.0]] and scores.tolist() == [0.9, 0.8]
    none, no_scores = soft_nms([[0.0, 1.0], [2.0, 3.0]], [0.9, 0.8], 0.3, 0.5, 0)
    assert none.shape == (0, 2) and no_scores.shape == (0,)


def test_to_windows_sorts_ties_stably_among_other_scores() -> None:
    """Scores alternating 0.5, 0.7 over 20 windows: the ten 0.7 windows come first in their
    listed order (a non-stable sort reorders them)."""
    spans = [[i / 20, (i + 1) / 20] for i in range(20)]
    out = to_windows(spans, [0.5, 0.7] * 10, n_clips=20, clip_len=1.0, duration=20.0, round_to_clip=False)
    assert [w[0] for w in out] == [1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0]
    assert {w[2] for w in out} == {0.7}


def test_to_windows_chooses_soft_or_hard_nms_by_threshold_and_sigma() -> None:
    """[0, 5] .9, [0, 4] .8, [6, 9] .7 (seconds). Soft-NMS (thresh 0.5, sigma 0.5): [0, 4] has
    IoU 4/5 with [0, 5] and decays to .8 e^(-0.64/0.5), listed in the order kept; hard NMS
    (sigma 0) drops it; a threshold of 0 means no NMS at all, soft or hard."""
    spans, scores = [[0.0, 0.5], [0.0, 0.4], [0.6, 0.9]], [0.9, 0.8, 0.7]
    kwargs = {"n_clips": 10, "clip_len": 1.0, "duration": 10.0, "round_to_clip": False}
    soft = to_windows(spans, scores, nms_thresh=0.5, nms_sigma=0.5, **kwargs)
    assert soft == [[0.0, 5.0, 0.9], [6.0, 9.0, 0.7], [0.0, 4.0, round(0.8 * math.exp(-1.28), 4)]]
    hard = to_windows(spans, scores, nms_thresh=0.5, **kwargs)
    assert hard == [[0.0, 5.0, 0.9], [6.0, 9.0, 0.7]]
    everything = [[0.0, 5.0, 0.9], [0.0, 4.0, 0.8], [6.0, 9.0, 0.7]]
    assert to_windows(spans, scores, nms_thresh=0.0, nms_sigma=0.5, **kwargs) == everything
    assert to_windows(spans, scores, nms_thresh=0.0, **kwargs) == everything
    # sigma 2 (> 1) is soft-NMS as well: .8 e^(-0.64/2)
    assert to_windows(spans, scores, nms_thresh=0.5, nms_sigma=2.0, **kwargs)[2][2] == round(0.8 * math.exp(-0.32), 4)
    # a threshold of 0.9 (< 1) still applies soft-NMS, which then decays nothing (IoU 0.8)
    assert to_windows(spans, scores, nms_thresh=0.9, nms_sigma=0.5, **kwargs) == everything
    # soft-NMS sees only the first top_k windows
    assert len(to_windows(spans, scores, nms_thresh=0.5, nms_sigma=0.5, top_k=2, **kwargs)) == 2


def test_to_windows_short_window_near_zero_keeps_start_zero() -> None:
    """Rounded to 2 s clips, [0.2, 0.6] s becomes [0, 0], widened to [0, 2] (start stays 0)."""
    out = to_windows([[0.01, 0.03]], [0.5], n_clips=10, clip_len=2.0, duration=20.0)
    assert out == [[0.0, 2.0, 0.5]]


def test_gt_block_of_a_centred_window() -> None:
    """Centre 0.5, width 0.5 on 10 clips: [2.5, 7.5] clips -> block floor 2 to ceil 8."""
    first, last = gt_blocks(torch.tensor([[[0.5, 0.5]]]), torch.tensor([[True]]), torch.tensor([10]))
    assert (first.tolist(), last.tolist()) == ([2], [8])


def test_jittered_counts_rate_is_the_first_float64_draw_of_the_generator() -> None:
    """rate = low + (high - low) * U, U the generator's first float64 uniform: seed 0 gives
    U = 0.97005..., rate 1.47005 on n = 100 eligible clips: all 100 kept and floor(47.005) = 47
    repeated (147 copies); seed 1 gives U = 0.06105..., rate 0.56105: floor(56.105) = 56 kept."""
    eligible = torch.ones(1, 100, dtype=torch.bool)
    n = torch.tensor([100])
    assert torch.rand(1, generator=torch.Generator().manual_seed(0), dtype=torch.float64).item() == pytest.approx(
        0.9700530018, abs=1e-9)
    up = _jittered_counts(eligible, n, (0.5, 1.5), torch.Generator().manual_seed(0))
    assert (up.sum().item(), (up == 2).sum().item(), (up == 1).sum().item()) == (147, 47, 53)
    down = _jittered_counts(eligible, n, (0.5, 1.5), torch.Generator().manual_seed(1))
    assert (down.sum().item(), down.max().item()) == (56, 1)


def test_pick_and_jittered_counts_draw_only_from_the_given_generator() -> None:
    """The same seeded generator gives the same subsets and copy counts whatever the global
    torch seed: nothing is drawn from the global stream."""
    eligible = torch.ones(2, 40, dtype=torch.bool)

    def draws(global_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)
        gen = torch.Generator().manual_seed(7)
        return [_pick(eligible, torch.tensor([10, 20]), gen),
                _jittered_counts(eligible, torch.tensor([20, 30]), (1.5, 1.5), gen),
                _jittered_counts(eligible, torch.tensor([20, 30]), (0.5, 1.5), gen)]

    first, second = draws(1), draws(2)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert first[0].sum(1).tolist() == [10, 20]
    # rate 1.5: 20 (30) clips of 40 kept, floor(0.5 * 20) = 10 (15) of them repeated
    assert first[1].sum(1).tolist() == [30, 45] and (first[1] == 2).sum(1).tolist() == [10, 15]


def test_choose_partners_minus_one_only_for_the_anchor_without_partner_and_own_generator() -> None:
    """Anchor 0 may pair with row 1 only, anchor 1 with nobody: [1, -1] for every strategy
    (the "no partner" test is per anchor, not over the batch). The random and mix draws come
    from the given generator alone: the same seed, whatever the global seed, same partners."""
    eligible = torch.tensor([[False, True, False], [False, False, False], [True, True, False]])
    sim = torch.tensor([[1.0, 0.2, 0.9], [0.2, 1.0, 0.1], [0.9, 0.1, 1.0]])
    anchors = torch.tensor([0, 1])
    for strategy in ("sim", "dissim", "mix", "random"):
        partners = choose_partners(anchors, eligible, strategy, torch.Generator().manual_seed(0), sim)
        assert partners.tolist() == [1, -1], strategy
    many = torch.arange(3).repeat(20)
    wide = torch.ones(3, 3, dtype=torch.bool) & ~torch.eye(3, dtype=torch.bool)
    for strategy in ("mix", "random"):
        runs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            runs.append(choose_partners(many, wide, strategy, torch.Generator().manual_seed(3), sim))
        assert torch.equal(runs[0], runs[1]), strategy


def test_plan_layout_counts_in_float64_and_from_the_given_generator() -> None:
    """Target of 93 clips with block [0, 3): 90 background clips, alpha 0.7: in float64
    90 * 0.7 = 62.99999999999999, floor 62 (Python's int(90 * 0.7), the reference's count;
    float32 would round the product to 63); the other video of 10 clips gives floor(10 * 0.3)
    = 3. With jitter, the same seeded generator gives the same layout whatever the global seed."""
    lengths = torch.tensor([93, 10])
    start, end = torch.tensor([0, 0]), torch.tensor([3, 1])
    target, other, first = torch.tensor([0]), torch.tensor([1]), torch.tensor([False])
    lay = plan_layouts(lengths, start, end, target, other, first, torch.Generator().manual_seed(0),
                       alpha=0.7, jitter=(1.0, 1.0))
    assert (lay.length.item(), lay.own.sum().item()) == (62 + 3 + 3, 62 + 3)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        runs.append(plan_layouts(torch.tensor([40, 40]), start, end, target, other, first,
                                 torch.Generator().manual_seed(5), alpha=0.5, jitter=(0.5, 1.5)))
    assert torch.equal(runs[0].row, runs[1].row) and torch.equal(runs[0].clip, runs[1].clip)
    assert torch.equal(runs[0].length, runs[1].length)
