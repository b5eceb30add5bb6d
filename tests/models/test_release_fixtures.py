"""Release fidelity: QD-DETR and TD-DETR release checkpoints load onto mrbench's models and
reproduce the official outputs and losses of ``../shared/reference/release_fixtures`` (1e-5),
with the release-behaviour options; the options that make the difference are shown to matter;
the key mappings cover the full-size release checkpoints; a release ``.ckpt`` predicts end to
end through ``mrbench predict`` and scores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reference_models import build_model, load_release_checkpoint  # noqa: E402
from reference_models.core.release import (  # noqa: E402
    detect_format,
    mapping_problems,
    model_from_release,
    release_config,
)
from tests.conftest import run_cli  # noqa: E402
from tests.models.conftest import make_dataset  # noqa: E402
from tests.models.release import load_fixture, release_batch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

FIXTURES = ("qddetr_b3", "qddetr_b1", "tddetr_b3", "tddetr_b1")
ATOL = 1e-5


def run(f: dict, **overrides: object) -> tuple[dict, dict, dict]:
    """Outputs (with the negative pass, as the release runs it in eval) and losses."""
    model, _ = model_from_release({"model": f["state_dict"], "opt": f["args"]},
                                  {f"model.{k}": v for k, v in overrides.items()})
    batch = release_batch(f)
    with torch.no_grad():
        outputs = model(batch, negatives=True)
        losses = model.criterion(outputs, batch)
    return outputs, losses, batch


def output_diffs(outputs: dict, reference: dict, mask: torch.Tensor) -> dict[str, float]:
    """Max |difference| per official output (saliency on valid clips)."""
    diffs = {
        "pred_logits": (outputs["all_logits"][-1] - reference["pred_logits"]).abs().max().item(),
        "pred_spans": (outputs["all_spans"][-1] - reference["pred_spans"]).abs().max().item(),
        "saliency_scores": (outputs["saliency"] - reference["saliency_scores"])[mask].abs().max().item(),
        "saliency_scores_neg": (outputs["saliency_neg"] - reference["saliency_scores_neg"])[mask].abs().max().item(),
    }
    for i, aux in enumerate(reference["aux_outputs"]):
        diffs[f"aux{i}_logits"] = (outputs["all_logits"][i] - aux["pred_logits"]).abs().max().item()
        diffs[f"aux{i}_spans"] = (outputs["all_spans"][i] - aux["pred_spans"]).abs().max().item()
    return diffs


def loss_diffs(losses: dict, reference: dict) -> dict[str, float]:
    """Max |difference| per official loss term (``class_error`` is a metric, not computed)."""
    diffs = {k: abs(losses[k].item() - v) for k, v in reference.items() if k.startswith("loss_") and k != "loss_total"}
    diffs["loss_total"] = abs(losses["loss"].item() - reference["loss_total"])
    return diffs


# (fixture, head-major mask, outputs key, losses key): the release's own numbers need the
# head-major mask; the mask-fixed numbers (and batch-of-one files, where both agree) without it
CASES = [(name, head_major, "outputs", "losses") for name in FIXTURES for head_major in (True,) if name.endswith("b3")]
CASES += [(name, False, "outputs_mask_fixed", "losses_mask_fixed") for name in FIXTURES if name.endswith("b3")]
CASES += [(name, hm, "outputs", "losses") for name in FIXTURES if name.endswith("b1") for hm in (False, True)]


@pytest.mark.parametrize(("name", "head_major", "outputs_key", "losses_key"), CASES)
def test_release_outputs_and_losses(name: str, head_major: bool, outputs_key: str, losses_key: str) -> None:
    f = load_fixture(name)
    outputs, losses, batch = run(f, t2v_head_major_mask=head_major)
    diffs = {**output_diffs(outputs, f[outputs_key], batch["video_mask"]), **loss_diffs(losses, f[losses_key])}
    assert max(diffs.values()) < ATOL, diffs
    assert set(diffs) >= {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_span_0", "loss_giou_0",
                          "loss_label_0", "loss_total"}


@pytest.mark.parametrize("name", ["qddetr_b3", "tddetr_b3"])
def test_matcher_indices(name: str) -> None:
    f = load_fixture(name)
    model, _ = model_from_release({"model": f["state_dict"], "opt": f["args"]}, {"model.t2v_head_major_mask": True})
    batch = release_batch(f)
    ref = f["outputs"]
    layers = {"final": (ref["pred_logits"], ref["pred_spans"])}
    layers.update({f"aux_{i}": (a["pred_logits"], a["pred_spans"]) for i, a in enumerate(ref["aux_outputs"])})
    for layer, (logits, spans) in layers.items():
        b, q, w = model.criterion.matcher(logits, spans, batch["spans"], batch["span_mask"])
        for sample, (pred, tgt) in enumerate(f["matcher_indices"][layer]):
            mine = sorted(zip(q[b == sample].tolist(), w[b == sample].tolist(), strict=True))
            assert mine == sorted(zip(pred, tgt, strict=True)), (layer, sample)


def test_the_options_make_the_difference() -> None:
    """Which options reproduce the release: without the head-major mask the batch of 3 is the
    mask-fixed one (not the release's); with TDEM on x instead of x + pos TD-DETR differs."""
    td = load_fixture("tddetr_b3")
    fixed, _, batch = run(td, t2v_head_major_mask=False)
    official = output_diffs(fixed, td["outputs"], batch["video_mask"])
    assert official["pred_spans"] > 1e-3 and official["saliency_scores"] > 1e-2, official
    no_pos, no_pos_losses, _ = run(td, t2v_head_major_mask=False, temporal_uses_pos=False)
    diffs = output_diffs(no_pos, td["outputs_mask_fixed"], batch["video_mask"])
    assert min(diffs["pred_logits"], diffs["pred_spans"], diffs["saliency_scores"]) > 10 * ATOL, diffs
    assert loss_diffs(no_pos_losses, td["losses_mask_fixed"])["loss_total"] > 1e-3
    # batch-of-one: the mask option changes nothing, a sample alone has no batch-mates
    one = load_fixture("tddetr_b1")
    alone, _, mask = run(one, t2v_head_major_mask=False)
    in_batch, _, _ = run(one, t2v_head_major_mask=True)
    assert torch.equal(alone["all_spans"], in_batch["all_spans"])
    # the mask-fixed sample 0 of the batch of 3 is the sample alone (batch-independent)
    assert (fixed["all_spans"][:, :1] - alone["all_spans"]).abs().max() < ATOL


@pytest.mark.parametrize("name", ["qddetr_b3", "tddetr_b3"])
def test_mapping_covers_the_full_size_release_checkpoint(name: str) -> None:
    """The same key mapping against ``checkpoint_manifest`` (every official key but the unused
    text position table maps, shapes equal) and the official parameter count."""
    manifest = load_fixture(name)["checkpoint_manifest"]
    shapes = {k: tuple(v) for k, v in manifest["shapes"].items()}
    fmt = detect_format(dict.fromkeys(shapes), manifest["args"])
    model = build_model(release_config(fmt, manifest["args"]))
    assert mapping_problems(fmt, {k: tuple(v.shape) for k, v in model.state_dict().items()}, shapes) == []
    unused = sum(int(torch.Size(s).numel()) for k, s in shapes.items() if fmt.is_unused(k))
    assert sum(p.numel() for p in model.parameters()) == manifest["n_params"] - unused
    assert fmt.model == {"qddetr_b3": "qd_detr", "tddetr_b3": "tddetr"}[name]


def test_release_config_from_args() -> None:
    td = load_fixture("tddetr_b3")["checkpoint_manifest"]["args"]
    config = release_config(detect_format(frozenset({"video_embed.weight",
                                                     "transformer.t2v_encoder.layers.0.self_attn_flow.in_proj_weight"}), td), td)
    m, loss, t = config.model, config.loss, config.train
    assert (m.t2v_layers, m.enc_layers, m.dec_layers, m.hidden, m.video_dim, m.text_dim) == (4, 4, 4, 256, 2818, 512)
    assert (m.temporal, m.beta, m.temporal_uses_pos, m.t2v_head_major_mask) == ("tdem", 0.7, True, False)
    assert (loss.span, loss.giou, loss.cost_span, loss.cost_giou) == (1.0, 10.0, 1.0, 10.0)
    assert (t.span_scale, t.widen_short, t.batch_size, config.vsdc.slots) == ("duration", False, 32, True)


# ----------------------------------------------------------------------------------------------
# the checkpoint file and mrbench predict
# ----------------------------------------------------------------------------------------------
def write_release_ckpt(f: dict, path: Path) -> Path:
    """A release-style ``.ckpt``: the official layout, ``opt`` an argparse namespace."""
    torch.save({"model": f["state_dict"], "optimizer": {}, "epoch": 7, "opt": argparse.Namespace(**f["args"])}, path)
    return path


@pytest.fixture(scope="module")
def release_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset with the fixtures' feature sizes (16-d video + TEF, 12-d text)."""
    return make_dataset(tmp_path_factory.mktemp("release_data"), {"val": 12}, video_dims={"clip_features": 16},
                        text_dim=12)


@pytest.mark.parametrize("name", ["qddetr_b3", "tddetr_b3"])
def test_load_release_checkpoint(name: str, tmp_path: Path) -> None:
    f = load_fixture(name)
    model, config = load_release_checkpoint(write_release_ckpt(f, tmp_path / "official.ckpt"),
                                            overrides={"model.t2v_head_major_mask": True})
    assert not model.training and config.model_name == {"qddetr_b3": "qd_detr", "tddetr_b3": "tddetr"}[name]
    batch = release_batch(f)
    with torch.no_grad():
        outputs = model(batch, negatives=True)
    assert max(output_diffs(outputs, f["outputs"], batch["video_mask"]).values()) < ATOL


def test_predict_with_a_release_checkpoint_end_to_end(release_data: Path, tmp_path: Path) -> None:
    from mrbench.scoring import score

    ckpt = write_release_ckpt(load_fixture("tddetr_b3"), tmp_path / "official.ckpt")
    out = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(ckpt), "--data", str(release_data), "--split", "val",
                    "--out", str(out), "--device", "cpu"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12
    for r in records:
        windows = r["pred_relevant_windows"]
        assert len(windows) == 5 and all(0 <= s <= e for s, e, _ in windows)
    report = score(str(out), gt=release_data / "annotations" / "val.jsonl", clip_len=2.0)
    assert 0.0 <= report.brief["MR-full-mAP"] <= 100.0
    # with the head-major mask (batch-dependent) the same file predicts too
    assert run_cli(["predict", "--checkpoint", str(ckpt), "--data", str(release_data), "--split", "val",
                    "--out", str(tmp_path / "hm.jsonl"), "--device", "cpu",
                    "--set", "model.t2v_head_major_mask=true"]) == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"\x80\x04not a pickle at all" * 3, "not a readable checkpoint"),
    (None, "no known release format"),
    ("list", "not a checkpoint"),
])
def test_bad_checkpoints_give_one_line_and_exit_2(content: bytes | str | None, message: str, release_data: Path,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.ckpt"
    if content is None:  # a release layout with unknown weights
        torch.save({"model": {"backbone.weight": torch.zeros(2)}, "opt": {"dset_name": "hl"}}, path)
    elif content == "list":
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(content)
    code = run_cli(["predict", "--checkpoint", str(path), "--data", str(release_data), "--split", "val",
                    "--out", str(tmp_path / "p.jsonl"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "p.jsonl").exists()
