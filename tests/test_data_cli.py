"""`mrbench data info` and `mrbench data pack` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.features import FeatureStore, PackedStore
from mrbench.data.schema import Query, write_annotations
from tests.conftest import run_cli


def test_info_qvhighlights_real_files(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "stats.json"
    assert run_cli(["data", "info", "qvhighlights", "--root", str(shared_data / "qvhighlights"), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in text.splitlines()[3:]}
    assert (rows["train"][1], rows["val"][1], rows["test"][1]) == ("7218", "1550", "1542")
    stats = json.loads(out_json.read_text())
    assert stats["val"]["videos"] == 1519 and stats["val"]["windows"] == 2803
    assert stats["test"]["windows"] == 0
    # val windows by length bucket (the reference evaluator's short/middle/long ranges)
    assert stats["val"]["short_windows"] + stats["val"]["middle_windows"] + stats["val"]["long_windows"] == 2803


def test_info_unknown_name_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["data", "info", "no_such_dataset"]) == 2
    assert "neither a dataset directory nor one of" in capsys.readouterr().err


def _dataset_dir(root: Path) -> DatasetDir:
    directory = DatasetDir(root)
    store = FeatureStore(directory.features_root)
    rng = np.random.default_rng(0)
    records = []
    for i in range(4):
        store.write_video("clip_features", f"v{i}", rng.standard_normal((10, 4)).astype(np.float32))
        store.write_text(i, rng.standard_normal((5, 4)).astype(np.float32))
        records.append(Query(qid=i, query="q", vid=f"v{i}", duration=20, windows=[[2 * i, 2 * i + 4]]))
    write_annotations(directory.annotation_path("train"), records)
    directory.write_info(DatasetInfo(name="tiny", clip_len=2.0, video_features={"clip_features": 4},
                                     splits=["train"], kind="synthetic"))
    return directory


def test_info_and_pack_on_a_dataset_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _dataset_dir(tmp_path / "ds")
    assert run_cli(["data", "info", str(directory.root)]) == 0
    assert "synthetic dataset 'tiny'" in capsys.readouterr().out
    packed_root = tmp_path / "packed"
    code = run_cli(["data", "pack", "--features", str(directory.features_root), "--out", str(packed_root),
                    "--annotations", str(directory.annotation_path("train"))])
    assert code == 0
    packed = PackedStore(packed_root)
    plain = FeatureStore(directory.features_root)
    for i in range(4):
        np.testing.assert_array_equal(packed.load_video(f"v{i}")["clip_features"], plain.load_video(f"v{i}")["clip_features"])
        np.testing.assert_array_equal(packed.load_text(i)["last_hidden_state"], plain.load_text(i)["last_hidden_state"])
    # without --annotations every file found is packed (qids parsed from the file names)
    assert run_cli(["data", "pack", "--features", str(directory.features_root), "--out", str(tmp_path / "all")]) == 0
    assert PackedStore(tmp_path / "all").names("clip_features") == ["v0", "v1", "v2", "v3"]
