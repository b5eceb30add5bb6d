"""BAM-DETR: presets and parameter counts, batch independence by default, a tiny batch is
overfit, release parity on ``bamdetr_b3.pt`` (outputs, losses, matcher, the in-place anchor
clamp) with the release-behaviour options, the full-size key mapping, the release checkpoint
through ``mrbench predict``, and hand values of the boundary blocks and the release's soft-NMS."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from reference_models import (  # noqa: E402
    build_model,
    create_model,
    list_models,
    load_release_checkpoint,
    resolve_config,
)
from reference_models.bam_detr import clamp_anchors_  # noqa: E402
from reference_models.core.boundary import (  # noqa: E402
    BoundarySampler,
    boundary_loss,
    boundary_targets,
    quality_loss,
)
from reference_models.core.postprocess import soft_nms, to_windows  # noqa: E402
from reference_models.core.release import (  # noqa: E402
    detect_format,
    mapping_problems,
    model_from_release,
    release_config,
)
from tests.conftest import run_cli  # noqa: E402
from tests.models.conftest import make_dataset  # noqa: E402
from tests.models.release import load_fixture, n_params, release_batch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

ATOL = 1e-5
#: the release's 14,503,994 minus its unused 32 x 256 + 512 text position table
QVH_PARAMS = 14_503_994 - 8_704


# ----------------------------------------------------------------------------------------------
# registry, presets, parameters
# ----------------------------------------------------------------------------------------------
def test_registered_with_the_release_settings() -> None:
    assert "bam_detr" in list_models()
    for preset in ("qvhighlights", "charades_sta", "tiny"):
        c = resolve_config("bam_detr", preset)
        loss, t = c.loss, c.train
        assert (loss.span, loss.giou, loss.label, loss.quality, loss.boundary, loss.saliency) == (10, 1, 0, 2, 1, 1)
        assert (loss.cost_span, loss.cost_giou, loss.cost_class) == (10, 1, 0)
        assert (t.nms_thresh, t.nms_sigma) == (0.3, 0.5)
        assert not c.model.t2v_head_major_mask and not c.model.boundary_padded_length
    q = resolve_config("bam_detr", "qvhighlights")
    assert (q.train.lr, q.train.lr_drop, q.train.lr_gamma, q.train.epochs, q.train.batch_size) == (1e-4, 80, 0.1, 200, 32)
    assert (q.model.enc_layers, q.model.t2v_layers, q.model.dec_layers, q.model.num_queries) == (2, 2, 2, 10)
    assert (q.train.span_scale, q.train.widen_short, q.train.amp) == ("duration", False, "off")
    ch = resolve_config("bam_detr", "charades_sta")
    assert (ch.data.clip_len, ch.train.lr, ch.train.epochs, ch.train.train_split) == (1.0, 2e-4, 100, "train_minus_val")


@pytest.mark.parametrize(("preset", "expected"), [("qvhighlights", QVH_PARAMS), ("charades_sta", QVH_PARAMS),
                                                  ("tiny", 789_864)])
def test_parameter_counts(preset: str, expected: int) -> None:
    model = create_model("bam_detr", preset)
    assert n_params(model) == expected
    if preset != "tiny":
        assert abs(n_params(model) / 14.50e6 - 1) < 0.02
        # the release's unused modules are built frozen: about 12.5 M parameters are trained
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert 12.4e6 < trained < 12.6e6


# ----------------------------------------------------------------------------------------------
# batch independence, overfitting
# ----------------------------------------------------------------------------------------------
def random_batch(lengths: list[int], tokens: list[int], video_dim: int, text_dim: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    b, L, T = len(lengths), max(lengths), max(tokens)
    video_mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    text_mask = torch.arange(T)[None] < torch.tensor(tokens)[:, None]
    batch = {
        "video": torch.randn(b, L, video_dim, generator=g) * video_mask[..., None],
        "video_mask": video_mask,
        "text": torch.randn(b, T, text_dim, generator=g) * text_mask[..., None],
        "text_mask": text_mask,
    }
    starts = torch.rand(b, generator=g) * 0.5
    batch["spans"] = torch.stack([starts + 0.2, torch.full((b,), 0.3)], -1)[:, None]  # cxw, one window
    batch["span_mask"] = torch.ones(b, 1, dtype=torch.bool)
    inside = [(int(s * n) + 1, int((s + 0.3) * n) - 1) for s, n in zip(starts.tolist(), lengths, strict=True)]
    batch["saliency_pos"] = torch.tensor([[lo, hi] for lo, hi in inside])
    batch["saliency_neg"] = torch.tensor([[hi + 1, 0] for _, hi in inside])
    labels = torch.zeros(b, L)
    for i, (lo, hi) in enumerate(inside):
        labels[i, lo:hi + 1] = 4.0
    batch["saliency_all"] = labels
    return batch


def alone(batch: dict, i: int) -> dict:
    n, t = int(batch["video_mask"][i].sum()), int(batch["text_mask"][i].sum())
    one = {k: v[i:i + 1] for k, v in batch.items()}
    for key, size in (("video", n), ("video_mask", n), ("saliency_all", n), ("text", t), ("text_mask", t)):
        one[key] = one[key][:, :size]
    return one


def test_padded_batches_do_not_depend_on_batch_mates() -> None:
    """Default options: each sample's outputs (every layer, quality, boundary maps, saliency), also
    next to the batched negative pass, equal those of the sample alone; the release's
    padded-length option makes them differ."""
    torch.manual_seed(0)
    model = create_model("bam_detr", "tiny", **{"model.video_dim": 10, "model.text_dim": 6}).eval()
    batch = random_batch([23, 15, 9], [3, 7, 5], 10, 6)
    with torch.no_grad():
        full = model(batch, negatives=True)
        for i in range(3):
            solo = model(alone(batch, i), negatives=False)
            n = int(batch["video_mask"][i].sum())
            diffs = [(full[k][:, i] - solo[k][:, 0]).abs().max().item() for k in ("all_spans", "all_quality", "all_logits")]
            diffs += [(full[k][i, :n] - solo[k][0]).abs().max().item() for k in ("saliency", "boundary")]
            assert max(diffs) < 1e-5, (i, diffs)
        release = build_model(resolve_config("bam_detr", "tiny", {"model.video_dim": 10, "model.text_dim": 6,
                                                                  "model.boundary_padded_length": True}))
        release.load_state_dict(model.state_dict())
        release.eval()
        padded = release(batch, negatives=False)
        solo = release(alone(batch, 2), negatives=False)
        # (at initialisation the offset heads are zero, so the spans do not move yet; quality does)
        assert (padded["all_quality"][:, 2] - solo["all_quality"][:, 0]).abs().max() > 1e-4


def test_tiny_batch_is_overfit() -> None:
    """40 AdamW steps on 4 queries (the tiny preset at width 32): the loss falls by 5x and the
    best-quality span of every query finds its window (IoU >= 0.7)."""
    torch.manual_seed(0)
    model = create_model("bam_detr", "tiny", **{"model.video_dim": 10, "model.text_dim": 6, "model.dropout": 0.0,
                                                "model.input_dropout": 0.0, "model.hidden": 32, "model.dim_ff": 64})
    batch = random_batch([20, 16, 12, 18], [4, 6, 3, 5], 10, 6, seed=1)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=4e-3, foreach=True)
    model.train()
    first = None
    for _ in range(40):
        losses = model.criterion(model(batch), batch)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        first = first if first is not None else losses["loss"].item()
    assert losses["loss"].item() < first / 5, (first, losses["loss"].item())
    model.eval()
    with torch.no_grad():
        decoded = model.decode(model(batch))
    best = decoded["spans"][torch.arange(4), decoded["scores"].argmax(1)]
    gold = torch.stack([batch["spans"][:, 0, 0] - 0.15, batch["spans"][:, 0, 0] + 0.15], -1)
    inter = (torch.minimum(best[:, 1], gold[:, 1]) - torch.maximum(best[:, 0], gold[:, 0])).clamp(min=0)
    iou = inter / ((best[:, 1] - best[:, 0]) + 0.3 - inter)
    assert (iou >= 0.7).all(), iou


# ----------------------------------------------------------------------------------------------
# release parity (../shared/reference/release_fixtures/bamdetr_b3.pt)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture() -> dict:
    return load_fixture("bamdetr_b3")


def run(f: dict, **options: bool) -> tuple[torch.nn.Module, dict, dict, dict]:
    model, _ = model_from_release({"model": f["state_dict"], "opt": f["args"]},
                                  {f"model.{k}": v for k, v in options.items()})
    batch = release_batch(f)
    with torch.no_grad():
        outputs = model(batch, negatives=True)  # the release runs the negative pass in eval too
        losses = model.criterion(outputs, batch)
    return model, outputs, losses, batch


def output_diffs(out: dict, ref: dict, mask: torch.Tensor) -> dict[str, float]:
    diffs = {
        "pred_logits": (out["all_logits"][-1] - ref["pred_logits"]).abs().max().item(),
        "pred_spans": (out["all_spans"][-1] - ref["pred_spans"]).abs().max().item(),
        "pred_quality": (out["all_quality"][-1] - ref["pred_quality"][..., 0]).abs().max().item(),
        "memory_boundary": (out["boundary"] - ref["memory_boundary"]).abs().max().item(),
        "saliency_scores": (out["saliency"] - ref["saliency_scores"])[mask].abs().max().item(),
        "saliency_scores_neg": (out["saliency_neg"] - ref["saliency_scores_neg"])[mask].abs().max().item(),
    }
    for i, aux in enumerate(ref["aux_outputs"]):
        diffs[f"aux{i}_logits"] = (out["all_logits"][i] - aux["pred_logits"]).abs().max().item()
        diffs[f"aux{i}_spans"] = (out["all_spans"][i] - aux["pred_spans"]).abs().max().item()
        diffs[f"aux{i}_spans_raw"] = (out["all_anchors"][i] - aux["pred_spans_raw"]).abs().max().item()
        diffs[f"aux{i}_quality"] = (out["all_quality"][i] - aux["pred_quality"][..., 0]).abs().max().item()
    return diffs


def loss_diffs(losses: dict, ref: dict) -> dict[str, float]:
    diffs = {k: abs(losses[k].item() - v) for k, v in ref.items() if k.startswith("loss_") and k != "loss_total"}
    diffs["loss_total"] = abs(losses["loss"].item() - ref["loss_total"])
    return diffs


@pytest.mark.parametrize(("head_major", "outputs_key", "losses_key"), [
    (True, "outputs", "losses"), (False, "outputs_mask_fixed", "losses_mask_fixed")])
def test_release_outputs_and_losses(fixture: dict, head_major: bool, outputs_key: str, losses_key: str) -> None:
    """With the release's boundary pathway on the padded length (and its head-major mask for the
    official numbers) every output and loss term agrees within 1e-5."""
    _, out, losses, batch = run(fixture, t2v_head_major_mask=head_major, boundary_padded_length=True)
    diffs = {**output_diffs(out, fixture[outputs_key], batch["video_mask"]), **loss_diffs(losses, fixture[losses_key])}
    assert max(diffs.values()) < ATOL, diffs
    assert set(diffs) >= {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_quality", "loss_boundary",
                          "loss_span_0", "loss_giou_0", "loss_label_0", "loss_quality_0", "loss_total"}


def test_the_options_make_the_difference(fixture: dict) -> None:
    """Without the padded-length option the batch of 3 is not the release's; without the
    head-major mask it is the mask-fixed one, not the official one."""
    _, out, losses, batch = run(fixture, boundary_padded_length=False)
    diffs = output_diffs(out, fixture["outputs_mask_fixed"], batch["video_mask"])
    assert diffs["pred_spans"] > 1e-3 and loss_diffs(losses, fixture["losses_mask_fixed"])["loss_boundary"] > 1e-4
    _, out, _, _ = run(fixture, boundary_padded_length=True)
    assert output_diffs(out, fixture["outputs"], batch["video_mask"])["pred_spans"] > 1e-3


def test_matcher_indices(fixture: dict) -> None:
    model, _ = model_from_release({"model": fixture["state_dict"], "opt": fixture["args"]})
    batch = release_batch(fixture)
    ref = fixture["outputs"]
    layers = {"final": (ref["pred_logits"], ref["pred_spans"])}
    layers.update({f"aux_{i}": (a["pred_logits"], a["pred_spans"]) for i, a in enumerate(ref["aux_outputs"])})
    for layer, (logits, spans) in layers.items():
        b, q, w = model.criterion.matcher(logits, spans, batch["spans"], batch["span_mask"])
        for sample, (pred, tgt) in enumerate(fixture["matcher_indices"][layer]):
            mine = sorted(zip(q[b == sample].tolist(), w[b == sample].tolist(), strict=True))
            assert mine == sorted(zip(pred, tgt, strict=True)), (layer, sample)


def test_anchor_clamp_in_place_matches_state_dict_after_forward(fixture: dict) -> None:
    model, _, _, _ = run(fixture)
    after = fixture["state_dict_after_forward"]["query_embed.weight"]
    assert not torch.equal(fixture["state_dict"]["query_embed.weight"], after)  # the forward changed it
    assert torch.equal(model.state_dict()["anchors.weight"], after)
    table = after.clone()
    clamp_anchors_(table)
    assert torch.equal(table, after)  # idempotent


def test_mapping_covers_the_full_size_release_checkpoint(fixture: dict) -> None:
    manifest = fixture["checkpoint_manifest"]
    shapes = {k: tuple(v) for k, v in manifest["shapes"].items()}
    fmt = detect_format(dict.fromkeys(shapes), manifest["args"])
    assert fmt.name == "bam_detr"
    config = release_config(fmt, manifest["args"])
    model = build_model(config)
    assert mapping_problems(fmt, {k: tuple(v.shape) for k, v in model.state_dict().items()}, shapes) == []
    table = sum(math.prod(s) for k, s in shapes.items() if k.startswith("txt_position_embed."))
    assert n_params(model) == manifest["n_params"] - table == QVH_PARAMS
    assert (config.preset, config.train.nms_thresh, config.train.nms_sigma, config.loss.quality) == (
        "qvhighlights", 0.3, 0.5, 2.0)


def write_release_ckpt(f: dict, path: Path) -> Path:
    torch.save({"model": f["state_dict"], "optimizer": {}, "epoch": 3, "opt": argparse.Namespace(**f["args"])}, path)
    return path


def test_release_checkpoint_loads_and_predicts_end_to_end(fixture: dict, tmp_path: Path) -> None:
    from mrbench.scoring import score

    ckpt = write_release_ckpt(fixture, tmp_path / "official.ckpt")
    model, config = load_release_checkpoint(ckpt, overrides={"model.t2v_head_major_mask": True,
                                                            "model.boundary_padded_length": True})
    assert config.model_name == "bam_detr" and not model.training
    batch = release_batch(fixture)
    with torch.no_grad():
        out = model(batch, negatives=True)
    assert max(output_diffs(out, fixture["outputs"], batch["video_mask"]).values()) < ATOL

    data = make_dataset(tmp_path / "data", {"val": 8}, video_dims={"clip_features": 16}, text_dim=12)
    preds = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(ckpt), "--data", str(data), "--split", "val",
                    "--out", str(preds), "--device", "cpu"]) == 0
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(records) == 8
    for r in records:
        windows = r["pred_relevant_windows"]
        assert len(windows) == 5 and all(0 <= s <= e for s, e, _ in windows)
        assert [w[2] for w in windows] == sorted((w[2] for w in windows), reverse=True)
    report = score(str(preds), gt=data / "annotations" / "val.jsonl", clip_len=2.0)
    assert 0.0 <= report.brief["MR-full-mAP"] <= 100.0


# ----------------------------------------------------------------------------------------------
# hand values: sampler, losses, soft-NMS
# ----------------------------------------------------------------------------------------------
def test_sampler_reads_linear_interpolation_on_the_samples_own_grid() -> None:
    """One head, two points with fixed offsets (+1, +2 clips) and equal weights, identity value
    and output projections: the result is the mean of the values read at b*(W-1) + 1 and + 2
    (clamped to the last valid clip)."""
    s = BoundarySampler(2, 1, points=2)
    with torch.no_grad():
        s.point_offsets.weight.zero_()
        s.point_offsets.bias.copy_(torch.tensor([1.0, 2.0]))
        s.point_weights.weight.zero_()
        s.point_weights.bias.zero_()
        s.value_proj.weight.copy_(torch.cat([torch.eye(2), torch.zeros(2, 2)], 1))
        s.value_proj.bias.zero_()
        s.output_proj.weight.copy_(torch.eye(2))
        s.output_proj.bias.zero_()
    clips = torch.arange(8, dtype=torch.float32)
    value = torch.stack([clips, 10 * clips, clips, clips], -1)[None]  # [1, 8, 4], 5 valid clips
    point = torch.tensor([[0.25, 0.9]])  # on W = 5: positions 0.25 * 4 = 1 and 0.9 * 4 = 3.6
    out = s(torch.zeros(1, 2, 2), value, point, torch.tensor([5.0]))
    # point 0.25: offsets /W -> 0.25 + 0.2 and + 0.4 -> positions 1.8, 2.6 -> mean 2.2
    # point 0.9: 1.1 -> clamp 1 -> 4, and 1.3 -> 4: both read clip 4
    assert torch.allclose(out[0, :, 0], torch.tensor([2.2, 4.0]), atol=1e-6)
    assert torch.allclose(out[0, :, 1], torch.tensor([22.0, 40.0]), atol=1e-5)


def test_quality_loss_hand_value() -> None:
    spans = torch.tensor([[[0.5, 0.4], [0.5, 0.2], [0.1, 0.1]]])  # xx (0.3,0.7) (0.4,0.6) (0.05,0.15)
    targets = torch.tensor([[[0.5, 0.4]]])
    quality = torch.tensor([[0.9, 0.2, 0.3]])
    # IoUs 1, 0.5, 0: one per bin -> (|0.9-1| + |0.2-0.5| + |0.3-0|) / 3
    value = quality_loss(quality, spans, targets, torch.ones(1, 1, dtype=torch.bool))
    assert value.item() == pytest.approx((0.1 + 0.3 + 0.3) / 3, abs=1e-6)


def test_boundary_targets_and_loss_hand_values() -> None:
    targets = torch.tensor([[[0.5, 0.4]]])  # xx (0.3, 0.7) on 10 clips: 3 .. 7, length 4
    left, right = boundary_targets(targets, torch.ones(1, 1, dtype=torch.bool), torch.tensor([10.0]), 12)
    # left: centres in [3 - 1, 3 + 0.4] -> 2.5 (clip 2); right: [7 - 0.4, 7 + 1] -> 7.5 (clip 7)
    assert left[0].nonzero().flatten().tolist() == [2]
    assert right[0].nonzero().flatten().tolist() == [7]
    # maps whose tanh-mean is 0.5 everywhere: BCE = log 2 at every clip; per side the balanced
    # weights sum to 2 over the valid clips, so the loss is (2 log2 * 0.5 * 2) * 0.5 = log 2
    maps = torch.full((1, 12, 4), math.atanh(0.5))
    mask = torch.arange(12)[None] < 10
    value = boundary_loss(maps, targets, torch.ones(1, 1, dtype=torch.bool), mask)
    assert value.item() == pytest.approx(math.log(2), rel=1e-5)


def test_soft_nms_is_the_release_gaussian_decay() -> None:
    windows = np.array([[0.0, 10.0], [2.0, 10.0], [20.0, 30.0]])
    scores = np.array([0.9, 0.8, 0.5])
    kept, decayed = soft_nms(windows, scores, 0.3, 0.5, 10)
    # IoU(w0, w1) = 8 / 10 (intersection over hull) > 0.3: 0.8 * exp(-0.64 / 0.5) = 0.2225
    assert kept.tolist() == [[0.0, 10.0], [20.0, 30.0], [2.0, 10.0]]
    assert decayed == pytest.approx([0.9, 0.5, 0.8 * math.exp(-0.64 / 0.5)])
    rows = to_windows(np.array([[0.0, 0.5], [0.1, 0.5], [0.6, 0.9]]), np.array([0.9, 0.8, 0.5]), 10, 2.0, 20.0,
                      nms_thresh=0.3, nms_sigma=0.5)
    assert [r[:2] for r in rows] == [[0.0, 10.0], [12.0, 18.0], [2.0, 10.0]]
    hard = to_windows(np.array([[0.0, 0.5], [0.1, 0.5], [0.6, 0.9]]), np.array([0.9, 0.8, 0.5]), 10, 2.0, 20.0,
                      nms_thresh=0.3)
    assert [r[:2] for r in hard] == [[0.0, 10.0], [12.0, 18.0]]
