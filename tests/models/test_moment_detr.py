"""Moment-DETR: release parity on ``../shared/reference/release_fixtures/momentdetr_b3.pt`` (1e-5,
outputs and every loss term, matcher indices), the key mapping against the full-size release
checkpoint, parameter counts, batch independence, overfitting a tiny batch, and a release
``.ckpt`` through ``load_release_checkpoint`` and ``mrbench predict``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from reference_models import build_model, create_model, load_release_checkpoint  # noqa: E402
from reference_models.core.release import (  # noqa: E402
    detect_format,
    mapping_problems,
    model_from_release,
    release_config,
)
from reference_models.core.span import cxw_to_xx, paired_giou  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.models.conftest import make_dataset  # noqa: E402
from tests.models.release import load_fixture, n_params, release_batch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

ATOL = 1e-5


def batch_of(f: dict) -> dict[str, torch.Tensor]:
    """A fixture's official inputs and targets as an mrbench batch (``relevant`` from the summed
    saliency scores, ``video_id`` from the YouTube ids when the fixture has ``vid`` s)."""
    targets = f["targets"]
    size = len(targets["span_labels"])
    vids = f.get("call_kwargs", {}).get("vid") or [f"v{i}_0_1" for i in range(size)]
    ytids = [v.rsplit("_", 2)[0] for v in vids]
    return {
        **release_batch(f),
        "relevant": targets.get("relevant_clips", targets["saliency_all_labels"]) > 0,
        "video_id": torch.tensor([sorted(set(ytids)).index(y) for y in ytids]),
    }


def head_diffs(outputs: dict, reference: dict, mask: torch.Tensor) -> dict[str, float]:
    """Max |difference| of logits, spans (each decoder layer) and saliency (valid clips)."""
    diffs = {
        "pred_logits": (outputs["all_logits"][-1] - reference["pred_logits"]).abs().max().item(),
        "pred_spans": (outputs["all_spans"][-1] - reference["pred_spans"]).abs().max().item(),
        "saliency_scores": (outputs["saliency"] - reference["saliency_scores"])[mask].abs().max().item(),
    }
    for i, aux in enumerate(reference["aux_outputs"]):
        diffs[f"aux{i}_logits"] = (outputs["all_logits"][i] - aux["pred_logits"]).abs().max().item()
        diffs[f"aux{i}_spans"] = (outputs["all_spans"][i] - aux["pred_spans"]).abs().max().item()
    return diffs


def loss_diffs(losses: dict, reference: dict) -> dict[str, float]:
    """|difference| per official loss term (``class_error`` is a metric) and of the total."""
    diffs = {k: abs(losses[k].item() - v) for k, v in reference.items()
             if k.startswith("loss_") and k != "loss_total"}
    diffs["loss_total"] = abs(losses["loss"].item() - reference["loss_total"])
    return diffs


def matcher_agrees(model: torch.nn.Module, f: dict, batch: dict) -> None:
    ref = f["outputs"]
    layers = {"final": (ref["pred_logits"], ref["pred_spans"])}
    layers.update({f"aux_{i}": (a["pred_logits"], a["pred_spans"]) for i, a in enumerate(ref["aux_outputs"])})
    for layer, (logits, spans) in layers.items():
        b, q, w = model.criterion.matcher(logits, spans, batch["spans"], batch["span_mask"])
        for sample, (pred, tgt) in enumerate(f["matcher_indices"][layer]):
            mine = sorted(zip(q[b == sample].tolist(), w[b == sample].tolist(), strict=True))
            assert mine == sorted(zip(pred, tgt, strict=True)), (layer, sample)


def manifest_maps(name: str, model_name: str) -> None:
    """The key mapping covers the full-size release checkpoint (shapes equal, every official key
    used but the declared unused ones) and the counts agree."""
    manifest = load_fixture(name)["checkpoint_manifest"]
    shapes = {k: tuple(v) for k, v in manifest["shapes"].items()}
    fmt = detect_format(dict.fromkeys(shapes), manifest["args"])
    assert fmt.model == model_name
    model = build_model(release_config(fmt, manifest["args"]))
    assert mapping_problems(fmt, {k: tuple(v.shape) for k, v in model.state_dict().items()}, shapes) == []
    unused = sum(int(torch.Size(s).numel()) for k, s in shapes.items() if fmt.is_unused(k))
    assert n_params(model) == manifest["n_params"] - unused


def toy_batch(size: int = 4, length: int = 12, video_dim: int = 10, text_dim: int = 6, seed: int = 0) -> dict:
    """A labelled batch with padding: sample i has ``length - i`` clips and 5 - i % 3 tokens; the
    window's clips carry a signal the text points at."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(size, length, video_dim, generator=g) * 0.5
    text = torch.randn(size, 5, text_dim, generator=g)
    video_mask = torch.zeros(size, length, dtype=torch.bool)
    text_mask = torch.zeros(size, 5, dtype=torch.bool)
    spans = torch.zeros(size, 1, 2)
    relevant = torch.zeros(size, length, dtype=torch.bool)
    pos, neg = torch.zeros(size, 2, dtype=torch.long), torch.zeros(size, 2, dtype=torch.long)
    for i in range(size):
        n = length - i
        video_mask[i, :n] = True
        text_mask[i, : 5 - i % 3] = True
        start = (i * 3) % (n - 4)
        relevant[i, start:start + 4] = True
        video[i, start:start + 4, : text_dim] += 2 * text[i, 0]
        spans[i, 0] = torch.tensor([(start + 2) / n, 4 / n])
        pos[i] = torch.tensor([start, start + 3])
        neg[i] = torch.tensor([(start + 5) % n, (start + 6) % n])
    video[~video_mask] = 0
    text[~text_mask] = 0
    return {
        "video": video, "video_mask": video_mask, "text": text, "text_mask": text_mask, "spans": spans,
        "span_mask": torch.ones(size, 1, dtype=torch.bool), "saliency_pos": pos, "saliency_neg": neg,
        "saliency_all": relevant.float() * 4, "relevant": relevant, "video_id": torch.arange(size),
    }


def assert_batch_independent(model: torch.nn.Module) -> None:
    """Each sample's outputs alone equal its outputs among padded batch-mates (eval, defaults)."""
    model.eval()
    batch = toy_batch()
    with torch.no_grad():
        together = model(batch)
        for i in range(batch["video"].shape[0]):
            n, t = int(batch["video_mask"][i].sum()), int(batch["text_mask"][i].sum())
            alone = model({"video": batch["video"][i:i + 1, :n], "video_mask": batch["video_mask"][i:i + 1, :n],
                           "text": batch["text"][i:i + 1, :t], "text_mask": batch["text_mask"][i:i + 1, :t]})
            for key in ("all_logits", "all_spans"):
                assert (together[key][:, i] - alone[key][:, 0]).abs().max() < ATOL, (key, i)
            assert (together["saliency"][i, :n] - alone["saliency"][0]).abs().max() < ATOL, i


def assert_overfits(model: torch.nn.Module, steps: int, factor: float = 10.0) -> None:
    """``steps`` AdamW steps on one batch: the loss falls ``factor``-fold and every sample's
    top-scored span matches its window (gIoU >= 0.5)."""
    torch.manual_seed(0)
    batch = toy_batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0, foreach=True)
    model.train()
    first = None
    for _ in range(steps):
        loss = model.criterion(model(batch), batch)["loss"]
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        decoded = model.decode(model(batch))
        final = model.criterion(model(batch, negatives=True), batch)["loss"].item()
    top = decoded["spans"][torch.arange(4), decoded["scores"].argmax(1)]
    giou = paired_giou(top, cxw_to_xx(batch["spans"][:, 0]))
    assert final < first / factor, (first, final)
    assert giou.min() >= 0.5, giou


def write_release_ckpt(f: dict, path: Path) -> Path:
    """A release-style ``.ckpt``: the official layout, ``opt`` an argparse namespace."""
    torch.save({"model": f["state_dict"], "optimizer": {}, "epoch": 3, "opt": argparse.Namespace(**f["args"])}, path)
    return path


def predict_end_to_end(name: str, data: Path, tmp_path: Path) -> None:
    """``mrbench predict --checkpoint official.ckpt`` on a tiny dataset, then the scorer."""
    from mrbench.scoring import score

    ckpt = write_release_ckpt(load_fixture(name), tmp_path / "official.ckpt")
    out = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(ckpt), "--data", str(data), "--split", "val",
                    "--out", str(out), "--device", "cpu"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12
    for r in records:
        assert len(r["pred_relevant_windows"]) == 5 and all(0 <= s <= e for s, e, _ in r["pred_relevant_windows"])
    report = score(str(out), gt=data / "annotations" / "val.jsonl", clip_len=2.0)
    assert 0.0 <= report.brief["MR-full-mAP"] <= 100.0


@pytest.fixture(scope="module")
def release_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset with the fixtures' feature sizes (16-d video + TEF, 12-d text)."""
    return make_dataset(tmp_path_factory.mktemp("release_data"), {"val": 12}, video_dims={"clip_features": 16},
                        text_dim=12)


# ----------------------------------------------------------------------------------------------
def test_release_outputs_and_losses() -> None:
    """momentdetr_b3: no batch-dependence quirk in this model, so the default options reproduce it."""
    f = load_fixture("momentdetr_b3")
    model, config = model_from_release({"model": f["state_dict"], "opt": f["args"]})
    assert config.model_name == "moment_detr" and config.model.activation == "relu"
    batch = batch_of(f)
    with torch.no_grad():
        outputs = model(batch)
        losses = model.criterion(outputs, batch)
    diffs = {**head_diffs(outputs, f["outputs"], batch["video_mask"]), **loss_diffs(losses, f["losses"])}
    assert max(diffs.values()) < ATOL, diffs
    assert set(diffs) >= {"loss_span", "loss_giou", "loss_label", "loss_saliency", "loss_span_0", "loss_giou_0",
                          "loss_label_0", "loss_total", "aux0_spans"}
    matcher_agrees(model, f, batch)


def test_mapping_covers_the_full_size_release_checkpoint() -> None:
    manifest_maps("momentdetr_b3", "moment_detr")


@pytest.mark.parametrize(("preset", "expected"), [("qvhighlights", 4_814_601), ("charades_sta", 4_814_601),
                                                  ("tiny", 405_001)])
def test_parameter_counts(preset: str, expected: int) -> None:
    model = create_model("moment_detr", preset=preset)
    assert n_params(model) == expected
    if preset == "qvhighlights":  # competitors.md §1: 4.82 M (with the release's unused 8.7 k text table)
        assert n_params(model) == pytest.approx(4.82e6, rel=0.02)


def test_presets() -> None:
    config = create_model("moment_detr", preset="charades_sta").config
    assert (config.model.activation, config.train.lr, config.data.clip_len, config.train.span_scale) == (
        "relu", 2e-4, 1.0, "duration")


def test_forward_does_not_depend_on_batch_mates() -> None:
    assert_batch_independent(create_model("moment_detr", preset="tiny", video_dim=10, text_dim=6))


def test_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = create_model("moment_detr", preset="tiny", video_dim=10, text_dim=6, dropout=0.0, input_dropout=0.0)
    assert_overfits(model, steps=40)


def test_load_release_checkpoint(tmp_path: Path) -> None:
    f = load_fixture("momentdetr_b3")
    model, config = load_release_checkpoint(write_release_ckpt(f, tmp_path / "official.ckpt"))
    assert not model.training and config.model_name == "moment_detr"
    batch = batch_of(f)
    with torch.no_grad():
        assert max(head_diffs(model(batch), f["outputs"], batch["video_mask"]).values()) < ATOL


def test_predict_with_a_release_checkpoint_end_to_end(release_data: Path, tmp_path: Path) -> None:
    predict_end_to_end("momentdetr_b3", release_data, tmp_path)
