"""Core pieces of the reference models: span ops, matcher, losses, config, parameter counts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from mrbench.errors import MrbenchError  # noqa: E402
from reference_models import create_model, list_models, resolve_config  # noqa: E402
from reference_models.core.losses import (  # noqa: E402
    SetCriterion,
    margin_loss,
    negative_pair_loss,
    rank_contrastive_loss,
)
from reference_models.core.matcher import HungarianMatcher  # noqa: E402
from reference_models.core.postprocess import temporal_nms, to_windows  # noqa: E402
from reference_models.core.span import (  # noqa: E402
    cxw_to_xx,
    paired_giou,
    pairwise_giou,
    pairwise_iou,
    xx_to_cxw,
)

pytestmark = pytest.mark.torch


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- span ops ---------------------------------------------------------------------------------
def test_span_conversions_roundtrip() -> None:
    xx = torch.tensor([[0.1, 0.5], [0.0, 1.0], [0.3, 0.3]])
    assert torch.allclose(xx_to_cxw(xx), torch.tensor([[0.3, 0.4], [0.5, 1.0], [0.3, 0.0]]))
    assert torch.allclose(cxw_to_xx(xx_to_cxw(xx)), xx)


def test_iou_and_giou_hand_values() -> None:
    a = torch.tensor([[0.0, 0.4]])
    b = torch.tensor([[0.2, 0.6], [0.5, 0.7]])
    iou, union = pairwise_iou(a, b)
    # overlap 0.2 / union 0.6; disjoint: 0 / 0.6
    assert torch.allclose(iou, torch.tensor([[1 / 3, 0.0]]))
    assert torch.allclose(union, torch.tensor([[0.6, 0.6]]))
    # giou: hull 0.6 -> 1/3 - 0; hull 0.7 -> 0 - 0.1 / 0.7
    giou = pairwise_giou(a, b)
    assert torch.allclose(giou, torch.tensor([[1 / 3, -0.1 / 0.7]]))
    assert torch.allclose(paired_giou(a.expand(2, 2), b), giou[0])


# --- matcher -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_matcher_equals_brute_force(seed: int) -> None:
    rng = torch.Generator().manual_seed(seed)
    batch, queries = 3, 5
    counts = [1 + (seed + b) % 4 for b in range(batch)]
    width = max(counts)
    logits = torch.randn(batch, queries, 2, generator=rng)
    spans = torch.rand(batch, queries, 2, generator=rng) * torch.tensor([1.0, 0.5]) + torch.tensor([0.0, 0.05])
    targets = torch.rand(batch, width, 2, generator=rng) * torch.tensor([1.0, 0.5]) + torch.tensor([0.0, 0.05])
    mask = torch.arange(width)[None, :] < torch.tensor(counts)[:, None]
    matcher = HungarianMatcher(10.0, 1.0, 4.0)
    b_idx, q_idx, t_idx = matcher(logits, spans, targets, mask)
    cost = matcher.cost(logits, spans, targets)
    for b in range(batch):
        chosen = (b_idx == b)
        assert sorted(t_idx[chosen].tolist()) == list(range(counts[b]))
        got = float(cost[b, q_idx[chosen], t_idx[chosen]].sum())
        best = min(
            float(sum(cost[b, q, t] for t, q in enumerate(perm)))
            for perm in itertools.permutations(range(queries), counts[b])
        )
        assert got == pytest.approx(best, abs=1e-5)


def test_matcher_cost_hand_value() -> None:
    # pred (0.35, 0.3) vs target (0.3, 0.2): L1 0.15, gIoU 2/3, p_fg 0.5
    cost = HungarianMatcher(10.0, 1.0, 4.0).cost(
        torch.zeros(1, 1, 2), torch.tensor([[[0.35, 0.3]]]), torch.tensor([[[0.3, 0.2]]])
    )
    assert float(cost) == pytest.approx(1.5 - 2 / 3 - 2.0, abs=1e-6)


# --- losses ------------------------------------------------------------------------------------
def test_margin_loss_hand_value() -> None:
    scores = torch.tensor([[1.0, 0.5, 0.0]])
    # pairs (0 vs 2): max(0, 0.2 + 0 - 1) = 0; (1 vs 0): max(0, 0.2 + 1 - 0.5) = 0.7; 0.7 / 2 * 2
    assert float(margin_loss(scores, torch.tensor([[0, 1]]), torch.tensor([[2, 0]]), 0.2)) == pytest.approx(0.7)


def test_negative_pair_loss_hand_value() -> None:
    s_neg = torch.tensor([[0.0, math.log(3.0)], [0.0, 5.0]])
    mask = torch.tensor([[True, True], [True, False]])
    # row 0: log 2 + log 4; row 1: log 2 (second clip masked); mean over rows
    expected = (math.log(8.0) + math.log(2.0)) / 2
    assert float(negative_pair_loss(s_neg, mask)) == pytest.approx(expected, rel=1e-6)


def test_rank_contrastive_hand_values() -> None:
    mask = torch.tensor([[True, True]])
    # all logits equal: log-prob -log 4 for each of the 4 entries; ranks 1 and 2 have a positive
    zeros = torch.zeros(1, 2)
    loss = rank_contrastive_loss(zeros, zeros, torch.tensor([[2.0, 0.0]]), mask, tau=0.5)
    assert float(loss) == pytest.approx(2 * math.log(4.0) / 12, rel=1e-6)
    # logits [1, 0 | 0, 0] / 0.5 = [2, 0, 0, 0]; only rank 1: -(2 - log(e^2 + 3)) / 12
    loss = rank_contrastive_loss(torch.tensor([[1.0, 0.0]]), zeros, torch.tensor([[1.0, 0.0]]), mask, tau=0.5)
    assert float(loss) == pytest.approx((math.log(math.e**2 + 3) - 2) / 12, rel=1e-6)
    # a padded clip takes no probability mass: one valid clip of each half, logits [0, 0]
    loss = rank_contrastive_loss(torch.tensor([[0.0, 9.0]]), torch.tensor([[0.0, 9.0]]),
                                 torch.tensor([[1.0, 0.0]]), torch.tensor([[True, False]]), tau=0.5)
    assert float(loss) == pytest.approx(math.log(2.0) / 12, rel=1e-5)


def test_set_loss_hand_values() -> None:
    criterion = SetCriterion(HungarianMatcher(10.0, 1.0, 4.0), span=10.0, giou=1.0, label=4.0, saliency=0.0, eos_coef=0.1)
    outputs = {
        "all_logits": torch.zeros(1, 1, 2, 2),
        "all_spans": torch.tensor([[[[0.5, 0.2], [0.35, 0.3]]]]),
        "saliency": torch.zeros(1, 3),
    }
    batch = {
        "spans": torch.tensor([[[0.3, 0.2]]]), "span_mask": torch.tensor([[True]]),
        "video_mask": torch.ones(1, 3, dtype=torch.bool),
        "saliency_pos": torch.tensor([[0, 0]]), "saliency_neg": torch.tensor([[1, 1]]),
        "saliency_all": torch.zeros(1, 3),
    }
    losses = criterion(outputs, batch)
    # query 1 is matched (cost -1.17 < 0): L1 mean(0.05, 0.1), 1 - gIoU = 1/3
    assert float(losses["loss_span"]) == pytest.approx(0.075, abs=1e-6)
    assert float(losses["loss_giou"]) == pytest.approx(1 / 3, abs=1e-6)
    # CE with zero logits: matched query log 2 (weight 1), other query 0.1 * log 2; plain mean
    assert float(losses["loss_label"]) == pytest.approx(0.55 * math.log(2.0), abs=1e-6)
    assert float(losses["loss"]) == pytest.approx(10 * 0.075 + 1 / 3 + 4 * 0.55 * math.log(2.0), abs=1e-5)


def test_aux_layers_get_their_own_matching() -> None:
    criterion = SetCriterion(HungarianMatcher(), saliency=0.0)
    spans = torch.tensor([[[[0.3, 0.2], [0.8, 0.1]]], [[[0.8, 0.1], [0.3, 0.2]]]])  # [D=2, B=1, Q=2, 2]
    outputs = {"all_logits": torch.zeros(2, 1, 2, 2), "all_spans": spans, "saliency": torch.zeros(1, 2)}
    batch = {"spans": torch.tensor([[[0.3, 0.2]]]), "span_mask": torch.tensor([[True]]),
             "video_mask": torch.ones(1, 2, dtype=torch.bool), "saliency_pos": torch.zeros(1, 2, dtype=torch.long),
             "saliency_neg": torch.ones(1, 2, dtype=torch.long), "saliency_all": torch.zeros(1, 2)}
    losses = criterion(outputs, batch)
    assert float(losses["loss_span"]) == pytest.approx(0.0, abs=1e-7)
    assert float(losses["loss_span_0"]) == pytest.approx(0.0, abs=1e-7)
    assert float(losses["loss_giou_0"]) == pytest.approx(0.0, abs=1e-6)


# --- post-processing ---------------------------------------------------------------------------
def test_to_windows_rounds_clips_and_sorts() -> None:
    spans = np.array([[0.1, 0.34], [0.5, 0.52], [0.9, 1.2]])
    windows = to_windows(spans, np.array([0.2, 0.9, 0.5]), n_clips=50, clip_len=2.0, duration=99.0)
    # best first; 0.5..0.52 -> 50..52 s; 0.9..1.2 -> 90..120 s, clipped to the 99 s duration
    assert windows[0] == [50.0, 52.0, 0.9]
    assert windows[1][:2] == [90.0, 99.0]
    assert windows[2][:2] == [10.0, 34.0]


def test_temporal_nms_drops_overlaps() -> None:
    windows = np.array([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0]])
    assert temporal_nms(windows, 0.5).tolist() == [0, 2]


# --- config, registry, models ------------------------------------------------------------------
def test_registry_and_overrides() -> None:
    assert "qd_detr" in list_models()
    config = resolve_config("qd_detr", "charades_sta", {"lr": "3e-4", "model.t2v_layers": "3"})
    assert config.train.lr == pytest.approx(3e-4) and config.model.t2v_layers == 3
    assert config.data.clip_len == 1.0
    with pytest.raises(MrbenchError, match="unknown config key"):
        resolve_config("qd_detr", "tiny", {"model.nope": 1})
    with pytest.raises(MrbenchError, match="unknown model"):
        create_model("nope")


def test_qd_detr_official_parameter_count() -> None:
    # competitors.md §2: 7.59 M with video 2304 + 512 + 2 TEF, text 512, hidden 256, 2/2/2 layers
    model = create_model("qd_detr", preset="qvhighlights")
    assert n_params(model) == pytest.approx(7.59e6, rel=0.01)


def test_qd_detr_forward_shapes_and_padding_invariance() -> None:
    model = create_model("qd_detr", preset="tiny", video_dim=10, text_dim=6).eval()
    torch.manual_seed(0)
    batch = {
        "video": torch.randn(2, 7, 10), "video_mask": torch.ones(2, 7, dtype=torch.bool),
        "text": torch.randn(2, 4, 6), "text_mask": torch.ones(2, 4, dtype=torch.bool),
    }
    batch["video_mask"][1, 5:] = False
    batch["text_mask"][0, 3:] = False
    out = model(batch)
    q = model.config.model.num_queries
    assert out["all_spans"].shape == (2, 2, q, 2) and out["all_logits"].shape == (2, 2, q, 2)
    assert out["saliency"].shape == (2, 7)
    # padding more does not change the outputs of the valid part
    padded = {k: torch.cat([v, torch.zeros_like(v[:, :3])], 1) for k, v in batch.items() if k.startswith("video")}
    out2 = model({**batch, **padded})
    assert torch.allclose(out["all_spans"], out2["all_spans"], atol=1e-5)
    assert torch.allclose(out["saliency"][1, :5], out2["saliency"][1, :5], atol=1e-5)


def test_cli_module_imports_without_torch() -> None:
    import subprocess
    import sys

    code = "import sys, mrbench.cli.models; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
