"""CG-DETR: release parity on ``../shared/reference/release_fixtures/cgdetr_b3.pt`` and
``cgdetr_b1.pt`` (1e-5: outputs, the attention maps and correlation-learner outputs, every loss
term) with the release-behaviour options where needed, the options shown to matter, the key
mapping against the full-size release checkpoint, parameter counts, batch independence, real
negatives, overfitting a tiny batch, and a release ``.ckpt`` through ``load_release_checkpoint``
and ``mrbench predict``."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from reference_models import create_model, load_release_checkpoint  # noqa: E402
from reference_models.core.release import model_from_release  # noqa: E402
from tests.models.release import load_fixture, n_params  # noqa: E402
from tests.models.test_moment_detr import (  # noqa: E402
    ATOL,
    assert_batch_independent,
    assert_overfits,
    batch_of,
    head_diffs,
    loss_diffs,
    manifest_maps,
    matcher_agrees,
    predict_end_to_end,
    release_data,  # noqa: F401 -- module fixture
    toy_batch,
    write_release_ckpt,
)

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]


def run(f: dict, head_major: bool, release_losses: bool) -> tuple[torch.nn.Module, dict, dict, dict]:
    """Model, outputs (negative pass and correlation learner on, as the release's training path),
    losses and batch of a fixture with the given options."""
    model, _ = model_from_release({"model": f["state_dict"], "opt": f["args"]},
                                  {"model.t2v_head_major_mask": head_major, "loss.cg_release_losses": release_losses})
    batch = batch_of(f)
    with torch.no_grad():
        outputs = model(batch, negatives=True, targets=True)
        losses = model.criterion(outputs, batch)
    return model, outputs, losses, batch


def cg_diffs(outputs: dict, reference: dict, mask: torch.Tensor) -> dict[str, float]:
    """Heads, saliency, T2V attention and engagement, dummies, the negative pass and the
    correlation learner's outputs where the reference has them."""
    diffs = head_diffs(outputs, reference, mask)
    diffs["cate_attn_weights"] = (outputs["attn"] - reference["cate_attn_weights"]).abs().max().item()
    diffs["t2vattnvalues"] = (outputs["attn_saliency"] - reference["t2vattnvalues"])[mask].abs().max().item()
    diffs["dummy_tokens"] = (outputs["dummies"] - reference["dummy_tokens"]).abs().max().item()
    if reference["saliency_scores_neg"] is not None:
        real = reference["real_neg_mask"]
        assert torch.equal(outputs["real_neg"], real)
        diffs["saliency_scores_neg"] = (outputs["saliency_neg"][real] - reference["saliency_scores_neg"])[
            mask[real]].abs().max().item()
        diffs["t2vattnvalues_neg"] = (outputs["attn_saliency_neg"][real] - reference["t2vattnvalues_neg"])[
            mask[real]].abs().max().item()
    else:
        assert not outputs["real_neg"].any()
    if reference["memory_moment"] is not None:
        pairs = {"moment": "memory_moment", "nonmoment": "nmmemory_moment", "sentence": "sentence_txt",
                 "sentence_dummy": "sentence_dummy", "moment_to_text": "moment2txt_similarity"}
        for mine, theirs in pairs.items():
            diffs[theirs] = (outputs[mine] - reference[theirs]).abs().max().item()
        diffs["src_vid"] = (outputs["clip_features"] - reference["src_vid"])[mask].abs().max().item()
    return diffs


# (fixture, head-major mask, release losses, outputs key, losses key). The release's own batch of
# 3 needs both options; its mask-fixed numbers (not official) need the release losses only (the
# batch is padded); the batch of one has no batch-mates and no padding: every option agrees.
CASES = [
    ("cgdetr_b3", True, True, "outputs_with_targets", "losses"),
    ("cgdetr_b3", False, True, "outputs_mask_fixed", "losses_mask_fixed"),
    ("cgdetr_b1", False, False, "outputs_with_targets", "losses"),
    ("cgdetr_b1", True, True, "outputs_with_targets", "losses"),
]


@pytest.mark.parametrize(("name", "head_major", "release_losses", "outputs_key", "losses_key"), CASES)
def test_release_outputs_and_losses(name: str, head_major: bool, release_losses: bool, outputs_key: str,
                                    losses_key: str) -> None:
    f = load_fixture(name)
    _, outputs, losses, batch = run(f, head_major, release_losses)
    diffs = {**cg_diffs(outputs, f[outputs_key], batch["video_mask"]), **loss_diffs(losses, f[losses_key])}
    assert max(diffs.values()) < ATOL, diffs
    assert set(diffs) >= {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_ms_align", "loss_distill",
                          "loss_orthogonal_dummy", "loss_span_0", "loss_giou_0", "loss_label_0", "loss_total"}


def test_inference_path_and_matcher() -> None:
    """The release's inference outputs (no targets) and its matcher indices."""
    f = load_fixture("cgdetr_b3")
    model, _ = model_from_release({"model": f["state_dict"], "opt": f["args"]}, {"model.t2v_head_major_mask": True})
    batch = batch_of(f)
    with torch.no_grad():
        outputs = model(batch, negatives=True)
    assert "moment" not in outputs
    assert max(cg_diffs(outputs, f["outputs"], batch["video_mask"]).values()) < ATOL
    matcher_agrees(model, f, batch)


def test_the_options_make_the_difference() -> None:
    """Without the head-major mask the batch of 3 is not the release's; without the release losses
    the padded batch's saliency and distillation terms differ; the batch of one agrees either way."""
    f = load_fixture("cgdetr_b3")
    _, fixed, fixed_losses, batch = run(f, False, True)
    official = cg_diffs(fixed, f["outputs_with_targets"], batch["video_mask"])
    assert official["pred_spans"] > 1e-3 and official["saliency_scores"] > 1e-2, official
    assert loss_diffs(fixed_losses, f["losses"])["loss_total"] > 1e-3
    _, _, sound_losses, _ = run(f, True, False)
    diffs = loss_diffs(sound_losses, f["losses"])
    assert diffs["loss_saliency"] > 1e-4 and diffs["loss_distill"] > 1e-4 and diffs["loss_ms_align"] > 1e-4, diffs
    one = load_fixture("cgdetr_b1")
    _, alone, alone_losses, _ = run(one, False, False)
    _, released, released_losses, _ = run(one, True, True)
    assert torch.equal(alone["all_spans"], released["all_spans"])
    assert abs(alone_losses["loss"].item() - released_losses["loss"].item()) < ATOL
    # the mask-fixed sample 0 of the batch of 3 is the sample alone (batch-independent)
    assert (fixed["all_spans"][:, :1] - alone["all_spans"]).abs().max() < ATOL


def test_mapping_covers_the_full_size_release_checkpoint() -> None:
    manifest_maps("cgdetr_b3", "cg_detr")


@pytest.mark.parametrize(("preset", "expected"), [("qvhighlights", 12_474_411), ("charades_sta", 12_474_411),
                                                  ("tiny", 569_436)])
def test_parameter_counts(preset: str, expected: int) -> None:
    model = create_model("cg_detr", preset=preset)
    assert n_params(model) == expected
    if preset == "qvhighlights":  # competitors.md §3: 12.62 M built by the release (with 0.16 M unused)
        assert n_params(model) == pytest.approx(12.62e6, rel=0.02)


def test_presets() -> None:
    qvh = create_model("cg_detr", preset="qvhighlights").config
    assert (qvh.model.t2v_layers, qvh.model.enc_layers, qvh.model.dec_layers, qvh.model.num_dummies,
            qvh.model.total_prompts, qvh.model.num_prompts, qvh.model.dummy_layers) == (2, 3, 3, 45, 10, 1, 2)
    cha = create_model("cg_detr", preset="charades_sta").config
    assert (cha.model.num_prompts, cha.loss.saliency, cha.train.lr, cha.train.epochs, cha.data.clip_len) == (
        2, 4.0, 2e-4, 200, 1.0)
    assert not qvh.model.t2v_head_major_mask and not qvh.loss.cg_release_losses


def test_forward_does_not_depend_on_batch_mates() -> None:
    assert_batch_independent(create_model("cg_detr", preset="tiny", video_dim=10, text_dim=6))


def test_real_negatives_follow_the_video() -> None:
    """A rolled partner from the same video is no negative: its row has no negative scores and
    the loss ranks it alone."""
    model = create_model("cg_detr", preset="tiny", video_dim=10, text_dim=6).eval()
    batch = toy_batch()
    batch["video_id"] = torch.tensor([7, 7, 3, 5])
    with torch.no_grad():
        outputs = model(batch, negatives=True, targets=True)
        losses = model.criterion(outputs, batch)
    assert outputs["real_neg"].tolist() == [False, True, True, True]
    assert outputs["saliency_neg"][0].abs().max() == 0 and outputs["saliency_neg"][1].abs().max() > 0
    assert all(torch.isfinite(v) for v in losses.values())


def test_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = create_model("cg_detr", preset="tiny", video_dim=10, text_dim=6, dropout=0.0, input_dropout=0.0,
                         hidden=32, dim_ff=64, num_dummies=4, total_prompts=3)  # smaller: seconds on a busy CPU
    assert_overfits(model, steps=60, factor=5.0)


def test_load_release_checkpoint(tmp_path: Path) -> None:
    f = load_fixture("cgdetr_b3")
    model, config = load_release_checkpoint(write_release_ckpt(f, tmp_path / "official.ckpt"),
                                            overrides={"model.t2v_head_major_mask": True})
    assert not model.training and config.model_name == "cg_detr"
    assert (config.model.num_dummies, config.model.total_prompts, config.model.num_prompts) == (4, 5, 2)
    batch = batch_of(f)
    with torch.no_grad():
        assert max(head_diffs(model(batch), f["outputs"], batch["video_mask"]).values()) < ATOL


def test_predict_with_a_release_checkpoint_end_to_end(release_data: Path, tmp_path: Path) -> None:  # noqa: F811
    predict_end_to_end("cgdetr_b3", release_data, tmp_path)
