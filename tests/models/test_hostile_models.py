"""Hostile options and outputs for ``mrbench train-reference`` and ``mrbench predict``: one error
line and exit 2, inputs never overwritten, one writer per run folder (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrbench.io import folder_lock
from tests.conftest import run_guarded, snapshot

TRAIN = ["--preset", "tiny", "--set", "train.epochs=1", "--set", "train.progress=false", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch QD-DETR run on the tiny dataset (its folder)."""
    run = tmp_path_factory.mktemp("hostile_run") / "run"
    result = run_guarded(["train-reference", "qd_detr", "--data", tiny_data, "--out", run, *TRAIN])
    assert result.code == 0, result.err
    return run


def test_train_out_inside_the_dataset_is_refused(tiny_data: Path) -> None:
    before = snapshot(tiny_data)
    result = run_guarded(["train-reference", "qd_detr", "--data", tiny_data, "--out", tiny_data / "run", *TRAIN])
    assert result.code == 2 and "inside the input folder" in result.err
    assert snapshot(tiny_data) == before


def test_train_out_that_is_a_file_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("keep me\n")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        result = run_guarded(["train-reference", "qd_detr", "--data", tiny_data, "--out", out, *TRAIN])
        assert result.code == 2 and "file" in result.err
    assert (tmp_path / "file").read_text() == "keep me\n"


def test_a_second_trainer_on_a_locked_run_names_the_holder(trained: Path, tiny_data: Path) -> None:
    before = snapshot(trained)
    with folder_lock(trained, command="mrbench train-reference qd_detr (holder)"):
        result = run_guarded(["train-reference", "qd_detr", "--data", tiny_data, "--out", trained, "--resume",
                              *TRAIN])
    assert result.code == 2 and "is being written by" in result.err and "(holder)" in result.err
    assert snapshot(trained) == before


def test_predict_never_writes_over_its_checkpoint(trained: Path, tiny_data: Path) -> None:
    before = snapshot(trained)
    result = run_guarded(["predict", "--checkpoint", trained / "best.pt", "--data", tiny_data, "--split", "val",
                          "--out", trained / "best.pt", "--device", "cpu"])
    assert result.code == 2 and "would overwrite the input" in result.err
    assert snapshot(trained) == before


def test_predict_out_inside_the_dataset_is_refused(trained: Path, tiny_data: Path) -> None:
    before = snapshot(tiny_data)
    result = run_guarded(["predict", "--checkpoint", trained / "best.pt", "--data", tiny_data, "--split", "val",
                          "--out", tiny_data / "annotations" / "val.jsonl", "--device", "cpu"])
    assert result.code == 2 and "inside the input folder" in result.err
    assert snapshot(tiny_data) == before


@pytest.mark.parametrize("value", ["0", "-3", "nan", "1e3x"])
def test_predict_batch_size_must_be_positive(trained: Path, tiny_data: Path, tmp_path: Path, value: str) -> None:
    result = run_guarded(["predict", "--checkpoint", trained / "best.pt", "--data", tiny_data, "--split", "val",
                          "--out", tmp_path / "p.jsonl", "--batch-size", value, "--device", "cpu"])
    assert result.code == 2 and "--batch-size" in result.err
    assert not (tmp_path / "p.jsonl").exists()


BAD_SETTINGS = [
    ("train.epochs", "-1"), ("train.epochs", "0"), ("train.epochs", "true"), ("train.epochs", "nan"),
    ("train.batch_size", "0"), ("train.batch_size", "1e12"), ("train.lr", "nan"), ("train.lr", "0"),
    ("train.lr", "-1e-3"), ("train.grad_clip", "inf"), ("train.seed", "-1"), ("train.seed", str(2**32)),
    ("model.dropout", "1.5"), ("model.hidden", "0"), ("train.eval_every", "0"), ("vsdc.alpha", "2"),
]


@pytest.mark.parametrize(("key", "value"), BAD_SETTINGS, ids=[f"{k}={v}" for k, v in BAD_SETTINGS])
def test_train_settings_out_of_range_are_one_line(tiny_data: Path, tmp_path: Path, key: str, value: str) -> None:
    result = run_guarded(["train-reference", "tddetr", "--data", tiny_data, "--out", tmp_path / "run", *TRAIN,
                          "--set", f"{key}={value}"])
    assert result.code == 2 and repr(key) in result.err
    assert not (tmp_path / "run").exists()
