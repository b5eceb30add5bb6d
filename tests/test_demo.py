"""``mrbench demo`` end to end on a small synthetic dataset (the full-size run is timed by hand:
see docs/leaderboard.md)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from mrbench.cli import main
from mrbench.data.synth import JOB_FILE, SynthConfig, job_record
from mrbench.leaderboard import check_path


def _entries(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "submissions").iterdir() if not p.name.startswith("_"))


def test_demo_baselines_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    main(["demo", "--models", "none", "--queries", "40", "--out", str(out)])
    printed = capsys.readouterr()
    assert "synth-default / val" in printed.out and "synth-default / test_ood" in printed.out
    assert "Blind: position prior" in printed.out
    for stage in ("[1/6] synth", "[2/6] mask", "[3/6] baselines", "[6/6] leaderboard"):
        assert stage in printed.err
    assert _entries(out) == [
        f"baseline-{b}-{s}" for b in ("length-prior", "position-prior", "uniform-random", "whole-video") for s in ("test-ood", "val")
    ]
    assert len(check_path(out / "submissions")) == 8
    board = (out / "leaderboards" / "README.md").read_text(encoding="utf-8")
    assert board.index("split `val`") < board.index("split `test_ood`")
    assert (out / "leaderboards" / "synth-default" / "val" / "standard_vs_spurious.png").is_file()


@pytest.mark.slow
@pytest.mark.torch
def test_demo_trains_both_reference_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("mrbench.cli.models") is None:
        pytest.skip("needs torch and the reference models (pip install -e .[models])")
    out = tmp_path / "demo"
    main(["demo", "--queries", "48", "--epochs", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    for name in ("QD-DETR (tiny preset)", "TD-DETR (tiny preset)", "Blind: whole video"):
        assert printed.count(name) == 2  # one row per leaderboard (val, test_ood)
    assert "qd-detr-tiny-val" in _entries(out) and "tddetr-tiny-test-ood" in _entries(out)
    subs = {s.entry_id: s for s in check_path(out / "submissions")}
    assert subs["tddetr-tiny-val"].test_answers_used  # val selected the checkpoint
    assert not subs["tddetr-tiny-test-ood"].test_answers_used
    assert "total:" in printed

    # an interrupted demo resumes: finished training runs are kept, the rest is completed
    (out / "data" / "dataset.json").unlink()  # as if synth had been killed before its last write
    (out / "data" / JOB_FILE).write_text(json.dumps(job_record(SynthConfig(n_train=48, n_val=12, n_ood=12))))
    weights = out / "runs" / "qd_detr-seed0" / "last.pt"
    stamp = weights.stat().st_mtime_ns
    shutil.rmtree(out / "runs" / "tddetr-seed0")
    main(["demo", "--queries", "48", "--epochs", "1", "--out", str(out), "--resume"])
    resumed = capsys.readouterr().out
    assert weights.stat().st_mtime_ns == stamp  # the finished run was not retrained
    assert (out / "runs" / "tddetr-seed0" / "best.pt").is_file()
    assert resumed.split("stage times")[0] == printed.split("stage times")[0]  # the same tables
    with pytest.raises(SystemExit) as done:
        main(["demo", "--resume"])
    assert done.value.code == 2
