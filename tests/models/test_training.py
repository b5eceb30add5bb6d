"""End-to-end behaviour of the trainer and the predictor on tiny data (CPU)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from mrbench.errors import MrbenchError  # noqa: E402
from reference_models import resolve_config  # noqa: E402
from reference_models.core.data import MomentDataset, collate, sample_labels  # noqa: E402
from reference_models.train import epoch_batches, train  # noqa: E402
from tests.conftest import REPO, run_cli  # noqa: E402
from tests.models.conftest import make_dataset  # noqa: E402

pytestmark = pytest.mark.torch

QUIET = {"train.progress": False}


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_dataset_items_and_labels(tiny_data: Path) -> None:
    config = resolve_config("qd_detr", "tiny").data
    dataset = MomentDataset(tiny_data, "train", config)
    item = dataset[0]
    n = len(item["video"])
    assert item["video"].shape[1] == 24 + 16 + 2 == dataset.video_dim
    # per-source L2 normalisation, then the TEF
    assert abs(float((item["video"][:, :24] ** 2).sum(1).mean()) - 1.0) < 1e-5
    assert item["video"][0, -2:].tolist() == pytest.approx([0.0, 1.0 / n])
    record = dataset.records[0]
    start, end = record.windows[0]
    center, width = item["windows"][0]
    assert center == pytest.approx((start + end) / 2 / (n * 2.0)) and width == pytest.approx((end - start) / (n * 2.0))
    assert item["relevant"].sum() == len(record.relevant_clip_ids)
    batch = sample_labels(collate([dataset[i] for i in range(8)]), 5, torch.Generator().manual_seed(0))
    rel = batch["relevant"]
    for b in range(8):
        pos, neg = batch["saliency_pos"][b], batch["saliency_neg"][b]
        assert rel[b, pos].all() and batch["video_mask"][b, neg].all()
        assert not rel[b, neg[1]]  # the easy negative lies outside the relevant clips
        sums = batch["saliency_all"][b]
        assert sums[pos[0]] == sums[rel[b]].max() and sums[neg[0]] == sums[rel[b]].min()


def test_packed_store_gives_the_same_items(tiny_data: Path, tmp_path: Path) -> None:
    from mrbench.data.features import pack_features

    packed = tmp_path / "packed"
    shutil.copytree(tiny_data, packed, ignore=shutil.ignore_patterns("features"))
    config = resolve_config("qd_detr", "tiny").data
    plain = MomentDataset(tiny_data, "val", config)
    pack_features(tiny_data / "features", packed / "features", sorted({r.vid for r in plain.records}),
                  [r.qid for r in plain.records])
    other = MomentDataset(packed, "val", config)
    for i in range(len(plain)):
        a, b = plain[i], other[i]
        assert a.keys() == b.keys()
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_window_subsampling_keeps_real_windows_first() -> None:
    windows = torch.rand(3, 7, 2)
    mask = torch.arange(7)[None, :] < torch.tensor([[7], [2], [6]])
    batch = {"windows": windows, "window_mask": mask, "relevant": torch.ones(3, 4, dtype=torch.bool),
             "video_mask": torch.ones(3, 4, dtype=torch.bool), "hard_pair": -torch.ones(3, 2, dtype=torch.long),
             "saliency_all": torch.ones(3, 4)}
    out = sample_labels(batch, 5, torch.Generator().manual_seed(1))
    assert out["span_mask"].sum(1).tolist() == [5, 2, 5]
    assert out["span_mask"][1, :2].all()
    for b in range(3):
        for span in out["spans"][b][out["span_mask"][b]]:
            assert any(torch.equal(span, w) for w in windows[b][mask[b]])


def test_epoch_batches_shard_global_batches() -> None:
    whole = epoch_batches(10, 4, seed=3, epoch=1)
    parts = [epoch_batches(10, 4, seed=3, epoch=1, rank=r, world=2) for r in range(2)]
    for k, batch in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][k], parts[1][k]]), batch)
    assert sorted(torch.cat(whole).tolist()) == list(range(10))
    assert not torch.equal(torch.cat(whole), torch.cat(epoch_batches(10, 4, seed=3, epoch=2)))


def test_resident_split_trains_like_the_loader(tiny_data: Path, tmp_path: Path) -> None:
    # the whole split padded to its longest video gives the same losses and metrics (without
    # dropout: its masks are drawn over the padded shape, so they differ with the padding)
    logs = []
    for mode in ("off", "on"):
        config = resolve_config("qd_detr", "tiny", {**QUIET, "train.epochs": 1, "train.device_resident": mode,
                                                    "model.dropout": 0.0, "model.input_dropout": 0.0})
        assert config.train.device_resident == mode
        train(config, tiny_data, tmp_path / mode)
        logs.append(read_log(tmp_path / mode)[0])
    assert logs[0]["train"] == pytest.approx(logs[1]["train"], rel=1e-5)
    assert logs[0]["eval"] == logs[1]["eval"]


@pytest.mark.slow
def test_tiny_preset_overfits_32_queries(tiny_data: Path, tmp_path: Path) -> None:
    config = resolve_config("qd_detr", "tiny", {
        **QUIET, "train.epochs": 70, "train.batch_size": 8, "train.eval_every": 5,
        "train.eval_split": "train", "train.select_metric": "MR-full-R1@0.7", "train.allow_split_overlap": True,
        "model.dropout": 0.0, "model.input_dropout": 0.0,
    })
    with pytest.warns(UserWarning, match="flagged"):
        best = train(config, tiny_data, tmp_path / "run")
    assert best["metric"] == "MR-full-R1@0.7"
    assert best["split_overlap"] == {"train_split": "train", "eval_split": "train", "queries": 32, "videos": 32}
    assert best["value"] >= 90.0, read_log(tmp_path / "run")[-1]["eval"]


@pytest.mark.slow
def test_resume_continues_exactly(tiny_data: Path, tmp_path: Path) -> None:
    overrides = {**QUIET, "train.epochs": 4, "train.eval_every": 100}
    train(resolve_config("qd_detr", "tiny", overrides), tiny_data, tmp_path / "full")
    train(resolve_config("qd_detr", "tiny", {**overrides, "train.epochs": 2}), tiny_data, tmp_path / "part")
    train(resolve_config("qd_detr", "tiny", overrides), tiny_data, tmp_path / "part", resume=True)
    full, part = read_log(tmp_path / "full"), read_log(tmp_path / "part")
    assert [e["epoch"] for e in part] == [0, 1, 2, 3]
    for a, b in zip(full, part, strict=True):
        assert a["train"] == b["train"]
    assert full[-1]["eval"] == part[-1]["eval"]
    weights_full = torch.load(tmp_path / "full" / "last.pt", weights_only=False)["model"]
    weights_part = torch.load(tmp_path / "part" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(weights_full[k], weights_part[k]) for k in weights_full)
    with pytest.raises(MrbenchError, match=r"differing: train.lr, train.seed\)"):
        train(resolve_config("qd_detr", "tiny", {**overrides, "train.lr": 1e-2, "train.seed": 5}), tiny_data,
              tmp_path / "part", resume=True)


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", {"train": 8, "val": 4}, seed=5)
    sets = ["train.epochs=1", "train.batch_size=8", "train.progress=false", "loss.saliency=0",
            "model.dropout=0", "model.input_dropout=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "reference_models.train", "qd_detr", str(data), str(tmp_path / "ddp"), "--preset", "tiny"]
    for item in sets:
        cmd += ["--set", item]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    single = resolve_config("qd_detr", "tiny", dict(s.split("=") for s in sets))
    train(single, data, tmp_path / "one")
    ddp, one = read_log(tmp_path / "ddp")[0], read_log(tmp_path / "one")[0]
    # one global batch of 8 = one step; the rank-averaged losses equal the single-process ones
    for key in ("loss", "loss_span", "loss_giou", "loss_label"):
        assert ddp["train"][key] == pytest.approx(one["train"][key], rel=1e-4, abs=1e-6)
    # the gradients agree: Adam's first moment after one step is (1 - beta1) * grad
    ckpt_ddp = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)
    ckpt_one = torch.load(tmp_path / "one" / "last.pt", weights_only=False)
    state_ddp, state_one = ckpt_ddp["optimizer"]["state"], ckpt_one["optimizer"]["state"]
    assert state_ddp.keys() == state_one.keys() and len(state_one) > 0
    for key in state_one:
        assert torch.allclose(state_ddp[key]["exp_avg"], state_one[key]["exp_avg"], rtol=1e-3, atol=1e-7), key
    grads = torch.cat([s["exp_avg"].flatten() for s in state_one.values()])
    assert float(grads.abs().max()) > 1e-4  # the step did move the model


@pytest.fixture(scope="module")
def trained_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    code = run_cli(["train-reference", "qd_detr", "--data", str(tiny_data), "--out", str(run), "--preset", "tiny",
                    "--set", "train.epochs=3", "--set", "train.progress=false"])
    assert code == 0
    return run


def test_cli_train_writes_resolved_config_and_checkpoints(trained_run: Path) -> None:
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model_name"] == "qd_detr" and config["preset"] == "tiny"
    assert config["model"]["video_dim"] == 42 and config["model"]["text_dim"] == 16
    assert config["data"]["video_types"] == ["slowfast_features", "clip_features"]
    assert (trained_run / "best.pt").is_file() and (trained_run / "last.pt").is_file()
    log = read_log(trained_run)
    assert [e["epoch"] for e in log] == [0, 1, 2]
    assert all("MR-full-mAP" in e["eval"] for e in log)


def test_predictions_pass_the_scorer(trained_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    preds = tmp_path / "preds.jsonl"
    code = run_cli(["predict", "--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_data),
                    "--split", "val", "--out", str(preds)])
    assert code == 0
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(records) == 16
    gt = {r["qid"]: r for r in map(json.loads, (tiny_data / "annotations" / "val.jsonl").read_text().splitlines())}
    for record in records:
        windows = record["pred_relevant_windows"]
        assert 1 <= len(windows) <= 10
        scores = [w[2] for w in windows]
        assert scores == sorted(scores, reverse=True)
        duration = gt[record["qid"]]["duration"]
        assert all(0 <= s < e <= duration and s % 2 == 0 for s, e, _ in windows)
        assert len(record["pred_saliency_scores"]) == duration / 2
    report_path = tmp_path / "report.json"
    code = run_cli(["score", str(preds), "--gt", str(tiny_data / "annotations" / "val.jsonl"),
                    "--json", str(report_path)])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["mrbench"]["n_queries"] == 16 and report["mrbench"]["n_missing"] == 0
    assert "MR-full-mAP" in report["brief"] and "HL-min-VeryGood-mAP" in report["brief"]


def test_predict_rejects_mismatched_features(trained_run: Path, tmp_path: Path) -> None:
    from mrbench.data.dataset import DatasetDir, DatasetInfo

    other = make_dataset(tmp_path / "other", {"val": 2})
    info = DatasetDir(other).info()
    DatasetDir(other).write_info(DatasetInfo(**{**info.__dict__, "video_features": {"slowfast_features": 24}}))
    code = run_cli(["predict", "--checkpoint", str(trained_run / "best.pt"), "--data", str(other),
                    "--split", "val", "--out", str(tmp_path / "p.jsonl")])
    assert code == 2


def test_predict_on_masked_variants_feeds_the_spurious_score(trained_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    masked = tmp_path / "masked"
    assert run_cli(["mask", "--data", str(tiny_data), "--split", "val", "--out", str(masked), "--seeds", "0,1",
                    "--quiet"]) == 0
    code = run_cli(["predict", "--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_data),
                    "--split", "val", "--variant", str(masked), "--out", str(tmp_path / "m.jsonl")])
    assert code == 0
    files = sorted(tmp_path.glob("m.seed*.jsonl"))
    assert [f.name for f in files] == ["m.seed0.jsonl", "m.seed1.jsonl"]
    vids = {json.loads(line)["vid"] for line in files[0].read_text().splitlines()}
    assert all("__mask_q" in vid for vid in vids)
    preds = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_data),
                    "--split", "val", "--out", str(preds)]) == 0
    report_path = tmp_path / "report.json"
    argv = ["score", str(preds), "--gt", str(tiny_data / "annotations" / "val.jsonl"), "--variant", str(masked),
            "--json", str(report_path)]
    for f in files:
        argv += ["--masked", str(f)]
    assert run_cli(argv) == 0
    spurious = json.loads(report_path.read_text())["spurious"]
    assert spurious["n_files"] == 2 and "Spurious-mAP" in spurious["brief"]


@pytest.mark.parametrize("argv, message", [
    (["nope"], "unknown model"),
    (["qd_detr", "--preset", "huge"], "unknown preset"),
    (["qd_detr", "--set", "lr"], "key=value"),
    (["qd_detr", "--set", "model.hidden=big"], "expects an integer"),
    (["qd_detr", "--resume"], "last.pt"),
])
def test_cli_train_errors_are_one_line(argv: list[str], message: str, tiny_data: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["train-reference", *argv, "--data", str(tiny_data), "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
