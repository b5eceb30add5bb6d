"""Position-bias diagnostics: hand values, the density figure, `data info` and the real splits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mrbench.data.cd import load_cd_split
from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.schema import Query, read_annotations, write_annotations
from mrbench.data.shift import position_shift_split
from mrbench.data.stats import (
    POSITION_BINS,
    format_position_stats,
    js_divergence,
    plot_position_density,
    position_stats,
    split_divergence,
    start_end_histogram,
)
from mrbench.errors import MrbenchError
from tests.conftest import require_shared, run_cli, run_guarded


def _q(qid: int, windows: list[list[float]] | None, duration: float = 100.0, vid: str | None = None) -> Query:
    return Query(qid=qid, query="q", vid=vid or f"v{qid}", duration=duration, windows=windows)


def test_js_divergence_hand_values() -> None:
    """p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); KL(p|m) = log2(4/3) = 0.415037,
    KL(q|m) = (log2(2/3) + log2(2)) / 2 = 0.207519; JS = 0.311278. Identical: 0; disjoint: 1."""
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(0.3112781, abs=1e-6)
    assert js_divergence(np.array([2.0, 6.0]), np.array([1.0, 3.0])) == 0.0
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-empty"):
        js_divergence(np.zeros(2), np.ones(2))


def test_histogram_cells_and_clipping() -> None:
    """[0, 10] of 100 s -> cell (start 0, end 1); [50, 100.04] (end past the duration by less than
    the tolerance) -> clipped to 1.0, the last end bin; shares sum to 1."""
    hist = start_end_histogram([_q(1, [[0, 10]]), _q(2, [[50, 100.04]])])
    assert hist.shape == (POSITION_BINS, POSITION_BINS) and hist.sum() == 1.0
    assert hist[0, 1] == 0.5 and hist[5, 9] == 0.5
    assert not start_end_histogram([_q(1, None)]).any()


def test_position_stats_hand_values() -> None:
    """train: [0, 10] and [50, 100] of 100 s: start mean 0.25, end mean 0.55, length share 0.1 and
    0.5 (mean 0.3; deciles 1 and 5); test: [0, 10] only -> JS vs train of (1, 0) against
    (1/2, 1/2) on two cells = 0.311278; a split without windows is None."""
    splits = {"test": [_q(3, [[0, 10]])], "train": [_q(1, [[0, 10]]), _q(2, [[50, 100]])], "blind": [_q(4, None)]}
    stats = position_stats(splits)
    train, test = stats["train"], stats["test"]
    assert train is not None and test is not None and stats["blind"] is None
    assert (train.windows, train.start_mean, train.end_mean) == (2, 0.25, 0.55)
    assert (train.length_share_mean, train.length_share_median) == pytest.approx((0.3, 0.3))
    assert train.length_share_deciles == (0, 0.5, 0, 0, 0, 0.5, 0, 0, 0, 0)
    assert train.start_end_correlation == pytest.approx(1.0)
    assert math.isnan(test.start_end_correlation)
    assert (train.reference, train.js_vs_reference) == ("train", 0.0)
    assert test.js_vs_reference == pytest.approx(0.3112781, abs=1e-6)
    assert test.js_vs_reference == split_divergence(splits["test"], splits["train"])
    text = format_position_stats(stats)
    assert text.splitlines()[1].split() == ["statistic", "test", "train"]
    assert text.splitlines()[-1].split() == ["JS", "vs", "train", "0.311", "0.000"]
    assert position_stats({"a": splits["test"], "b": splits["train"]})["b"].reference == "a"
    with pytest.raises(MrbenchError, match="reference split 'blind' has no ground-truth windows"):
        position_stats(splits, reference="blind")
    assert format_position_stats(position_stats({"x": [_q(4, None)]})) == (
        "position bias: no split has ground-truth windows")


def test_plot_is_deterministic_and_skips_unannotated_splits(tmp_path: Path) -> None:
    splits = {"train": [_q(i, [[i, i + 10.0]]) for i in range(30)], "test": [_q(99, None)],
              "ood": [_q(100 + i, [[60.0 + i, 80.0 + i]]) for i in range(5)]}
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    plot_position_density(splits, first)
    plot_position_density(splits, second)
    data = first.read_bytes()
    assert data.startswith(b"\x89PNG") and data == second.read_bytes()
    assert b"Software" not in data and b"matplotlib" in data
    with pytest.raises(MrbenchError, match="no split has ground-truth windows to plot"):
        plot_position_density({"test": [_q(1, None)]}, tmp_path / "c.png")


def _dataset_dir(root: Path) -> DatasetDir:
    directory = DatasetDir(root)
    directory.features_root.mkdir(parents=True)
    records = [Query(qid=i, query="q", vid=f"v{i}", duration=20, windows=[[2 * i, 2 * i + 4]]) for i in range(4)]
    write_annotations(directory.annotation_path("train"), records)
    directory.write_info(DatasetInfo(name="tiny", clip_len=2.0, video_features={"clip_features": 4},
                                     splits=["train"], kind="synthetic"))
    return directory


def test_data_info_prints_position_bias_writes_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = _dataset_dir(tmp_path / "ds")
    plot, out_json = tmp_path / "density.png", tmp_path / "stats.json"
    assert run_cli(["data", "info", str(directory.root), "--plot", str(plot), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "Position bias per window" in text and f"start/end density: {plot}" in text
    assert plot.read_bytes().startswith(b"\x89PNG")
    position = json.loads(out_json.read_text())["train"]["position"]
    assert position["start_mean"] == pytest.approx(0.15) and position["js_vs_reference"] == 0.0
    assert len(position["joint"]) == POSITION_BINS


@pytest.mark.parametrize("where", ["inside", "same_as_json"])
def test_data_info_plot_never_overwrites_an_input(tmp_path: Path, where: str) -> None:
    directory = _dataset_dir(tmp_path / "ds")
    before = directory.annotation_path("train").read_bytes()
    if where == "inside":
        outcome = run_guarded(["data", "info", directory.root, "--plot", directory.annotation_path("train")])
        assert "--plot" in outcome.err and "lies inside the input folder" in outcome.err
    else:
        target = tmp_path / "x.out"
        outcome = run_guarded(["data", "info", directory.root, "--plot", target, "--json", target])
        assert "--json and --plot name the same file" in outcome.err
        assert not target.exists()
    assert outcome.code == 2
    assert directory.annotation_path("train").read_bytes() == before


def test_real_shift_splits_diverge_more_out_of_distribution() -> None:
    """The published CD splits and the QVHighlights shift split: test_ood is further from train
    than test_iid is (JS over 10 x 10 bins; values in docs/datasets.md)."""
    data = require_shared("data")
    charades = {split: load_cd_split(data / "charades_cd", "charades_cd", split, data / "charades_sta")
                for split in ("train", "test_iid", "test_ood")}
    qvh = position_shift_split([q for name in ("train", "val") for q in
                                read_annotations(data / "qvhighlights" / f"highlight_{name}_release.jsonl").records])
    for splits, iid, ood in ((charades, 0.0131, 0.2188), (qvh, 0.0132, 0.3452)):
        stats = position_stats(splits)
        assert stats["test_iid"].js_vs_reference == pytest.approx(iid, abs=5e-5)
        assert stats["test_ood"].js_vs_reference == pytest.approx(ood, abs=5e-5)
