"""Hostile options and folders for ``mrbench demo``: refused before any stage runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrbench.io import folder_lock
from tests.conftest import assert_confined, run_guarded, snapshot


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, with ``victim.txt``; the pipeline itself must never start."""
    import mrbench.cli.demo as demo

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the demo started although its arguments are bad")

    monkeypatch.setattr(demo, "run_demo", never)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim.txt").write_text("keep me\n")
    return tmp_path


BAD = [
    ["--queries", "0"], ["--queries", "-5"], ["--queries", str(10**12)], ["--queries", "nan"],
    ["--epochs", "0"], ["--epochs", "-1"], ["--epochs", str(10**9)], ["--seeds", "-1"], ["--seeds", "0,0"],
    ["--seeds", str(2**64)], ["--models", "../../x"], ["--resume"],
    ["--out", "victim.txt"], ["--out", "victim.txt/run"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_arguments_stop_before_any_stage(work: Path, args: list[str]) -> None:
    before = snapshot(work)
    assert run_guarded(["demo", *args]).code == 2
    assert_confined(before, snapshot(work))


def test_a_second_demo_in_the_same_folder_is_refused(work: Path) -> None:
    with folder_lock(work / "run", command="mrbench demo (the first)"):
        result = run_guarded(["demo", "--out", "run", "--models", "none"])
    assert result.code == 2 and "the first" in result.err
