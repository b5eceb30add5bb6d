"""The ``tddetr`` model: registry, presets, parameter counts, TDEM in every T2V layer, VSDC
in the trainer, and a tiny run whose loss falls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reference_models import create_model, list_models, resolve_config  # noqa: E402
from reference_models.core.tdem import TDEM  # noqa: E402
from reference_models.core.vsdc import VSDC  # noqa: E402
from tests.conftest import REPO  # noqa: E402

pytestmark = pytest.mark.torch


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered() -> None:
    assert "tddetr" in list_models()


@pytest.mark.parametrize(("preset", "expected"), [("qvhighlights", 14.96e6), ("charades_sta", 11.67e6)])
def test_official_parameter_counts(preset: str, expected: float) -> None:
    """tddetr.md §3.2: 14.96 M on QVHighlights (2818-d video, 512-d text), 11.67 M at 3/3 layers."""
    model = create_model("tddetr", preset=preset, video_dim=2818, text_dim=512)
    assert abs(n_params(model) - expected) / expected < 0.01, n_params(model)
    plain = create_model("tddetr", preset=preset, video_dim=2818, text_dim=512, temporal="")
    # TDEM's share: one MHA + two LN-Linear per T2V layer + one shared start token
    layers = model.config.model.t2v_layers
    assert n_params(model) - n_params(plain) == layers * (4 * 256 * 256 + 4 * 256 + 2 * (512 + 256 * 257)) + 256


def test_presets() -> None:
    qvh = resolve_config("tddetr", "qvhighlights")
    assert (qvh.model.t2v_layers, qvh.model.enc_layers, qvh.model.dec_layers) == (4, 4, 4)
    assert (qvh.loss.span, qvh.loss.giou, qvh.loss.label, qvh.loss.saliency) == (1, 10, 4, 1)
    assert (qvh.train.lr, qvh.train.lr_drop, qvh.train.epochs) == (1e-4, 80, 200)
    assert qvh.model.temporal == "tdem" and qvh.model.beta == 0.7
    cha = resolve_config("tddetr", "charades_sta")
    assert (cha.model.t2v_layers, cha.model.enc_layers, cha.model.dec_layers) == (3, 3, 3)
    assert (cha.loss.span, cha.loss.giou, cha.loss.label, cha.loss.saliency) == (10, 1, 4, 4)
    assert (cha.loss.cost_span, cha.loss.cost_giou, cha.loss.cost_class) == (10, 1, 4)
    assert (cha.train.lr, cha.train.epochs, cha.data.clip_len) == (2e-4, 100, 1.0)
    assert resolve_config("tddetr", "tiny").model.temporal == "tdem"


def test_tdem_in_every_t2v_layer_sharing_one_start_token() -> None:
    model = create_model("tddetr", preset="qvhighlights")
    modules = [layer.temporal for layer in model.t2v]
    assert len(modules) == 4 and all(isinstance(m, TDEM) and m.beta == 0.7 for m in modules)
    assert all(m.start_token is modules[0].start_token for m in modules)
    assert not any(isinstance(m, TDEM) for m in create_model("qd_detr", preset="qvhighlights").modules())


def test_tiny_trains_with_vsdc_and_loss_falls(tiny_data: Path, tmp_path: Path) -> None:
    from reference_models.train import Trainer

    config = resolve_config("tddetr", "tiny", {"train.progress": False, "train.eval_split": ""})
    assert config.train.batch_size == 8
    trainer = Trainer(config, tiny_data, tmp_path / "run", device="cpu")
    assert isinstance(trainer.batch_augment, VSDC)
    losses = [trainer.train_epoch(epoch)["loss"] for epoch in range(6)]
    # tiny: per batch of 8, 4 queries kept and 4 anchors, each giving a pair (2 samples)
    assert trainer.last_samples == 3 * len(trainer.train_set) // 2
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:2]) / 2, losses


def test_tiny_run_end_to_end_through_the_cli(tiny_data: Path, tmp_path: Path) -> None:
    """``mrbench train-reference tddetr --preset tiny`` then ``mrbench predict``; the predictions
    pass ``mrbench.score``."""
    from click.testing import CliRunner

    from mrbench.cli import cli
    from mrbench.scoring import score

    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(cli, ["train-reference", "tddetr", "--data", str(tiny_data), "--out", str(run),
                                 "--preset", "tiny", "--set", "train.epochs=2", "--set", "train.progress=false",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [0, 1]
    saved = json.loads((run / "config.json").read_text())
    assert saved["model_name"] == "tddetr" and saved["model"]["temporal"] == "tdem"
    preds = tmp_path / "preds.jsonl"
    result = runner.invoke(cli, ["predict", "--checkpoint", str(run / "best.pt"), "--data", str(tiny_data),
                                 "--split", "val", "--out", str(preds), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(records) == 16 and all(len(r["pred_relevant_windows"]) <= 10 for r in records)
    report = score(preds, gt=tiny_data / "annotations" / "val.jsonl", clip_len=2.0)
    assert report.to_dict()["mrbench"]["n_missing"] == 0 and "MR-full-mAP" in report.brief

    # the GPU benchmark's summary reads this log format (the GPU script itself needs a device)
    summary = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu" / "summarize.py"), str(tmp_path), "run"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    row = summary[1].split()
    assert row[0] == "run" and f"{log[1]['epoch_s']:.2f}" in row and row[-1].endswith("x")  # steady s/epoch


def test_vsdc_settings_per_preset() -> None:
    class Dataset:
        source_slices = [(0, 24), (24, 40)]

    model = create_model("tddetr", preset="tiny")
    for preset, fraction, keep in [("qvhighlights", 1.0, True), ("charades_sta", 1.0, True), ("tiny", 0.5, False)]:
        config = resolve_config("tddetr", preset)
        aug = model.batch_augment(Dataset(), config)
        assert (aug.config.anchor_fraction, aug.config.keep_originals) == (fraction, keep)
        assert (aug.config.alpha, aug.config.strategy, aug.config.topk) == (0.7, "sim", 50)
        assert aug.sources == [(0, 24), (24, 40)] and aug.tef


def test_vsdc_settings_are_a_config_section() -> None:
    """``--set vsdc.*`` reaches VSDC; the section round-trips; a saved config without it loads."""
    from reference_models.core.config import Config

    class Dataset:
        source_slices = [(0, 24)]

    config = resolve_config("tddetr", "tiny", {"vsdc.strategy": "random", "vsdc.topk": "20", "alpha": "0.5"})
    aug = create_model("tddetr", preset="tiny").batch_augment(Dataset(), config)
    assert (aug.config.strategy, aug.config.topk, aug.config.alpha) == ("random", 20, 0.5)
    assert aug.config.anchor_fraction == 0.5  # the tiny preset's value survives other overrides
    assert Config.from_dict(config.to_dict()) == config
    legacy = config.to_dict()
    del legacy["vsdc"]
    assert Config.from_dict(legacy).vsdc == Config().vsdc
    with pytest.raises(Exception, match="unknown"):
        resolve_config("tddetr", "tiny", {"vsdc.bogus": "1"})
