"""Hostile options and inputs to ``mrbench synth``, and what a kill or a second writer does to a
dataset folder: the old or the new dataset stays whole (docs/security.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrbench.data.dataset import DatasetDir
from mrbench.data.features import FeatureStore
from mrbench.io import folder_lock, lock_path, recover_swap, staging_paths, swap_in
from tests.conftest import assert_confined, run_guarded, snapshot

SMALL = ["--n-train", "8", "--n-val", "4", "--n-ood", "2", "--n-clips", "20", "--quiet"]
RECORD = {"qid": 1, "query": "a person walks", "duration": 30, "vid": "v1", "relevant_windows": [[2, 8]]}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim.txt").write_text("keep me\n")
    return tmp_path


def _annotations(path: Path, **fields: object) -> None:
    path.write_text(json.dumps({**RECORD, **fields}) + "\n" + json.dumps({**RECORD, "qid": 2, "vid": "v2"}) + "\n")


def assert_whole(path: Path) -> None:
    """A complete dataset: its description, every split and every feature file it names."""
    directory = DatasetDir(path)
    info = directory.info()
    store = FeatureStore(directory.features_root)
    for split in info.splits:
        records = directory.load(split, require_windows=False)
        store.check(records.vids, [r.qid for r in records], sorted(info.video_features))


BAD_OPTIONS = [
    ("--clip-len", "nan"), ("--clip-len", "0"), ("--clip-len", "-1"), ("--clip-len", "inf"), ("--clip-len", "1e-300"),
    ("--clip-len", "1e9"), ("--seed", "-1"), ("--seed", str(2**64)), ("--seed", "nan"), ("--seed", "true"),
    ("--n-clips", "0"), ("--n-clips", "1000000000000"), ("--n-train", "-1"), ("--n-train", "1000000000000"),
    ("--dims", "0,0"), ("--dims", "99999999999,1"), ("--dims", "a,b"), ("--dims", "1,2,3,4"),
    ("--concepts", "0"), ("--concepts", "1000000000"), ("--places", "0"), ("--places", "1000000000"),
    ("--content", "nan"), ("--content", "-1"), ("--rho-scene", "nan"), ("--rho-flank", "2"),
    ("--rho-position", "-0.5"), ("--flank-width", "-1"), ("--distractors", "-1"),
]


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=[f"{o}={v}" for o, v in BAD_OPTIONS])
def test_bad_numeric_options(work: Path, option: str, value: str) -> None:
    before = snapshot(work)
    result = run_guarded(["synth", "--out", "ds", *SMALL, option, value])
    assert result.code == 2 and (option.lstrip("-").replace("-", "_") in result.err or option in result.err), result.err
    assert_confined(before, snapshot(work))


ANNOTATIONS = [
    ("vid escapes", {"vid": "../../escaped"}, "vid"),
    ("vid absolute", {"vid": "/tmp/escaped"}, "vid"),
    ("vid with NUL", {"vid": "v\x00"}, "vid"),
    ("qid with a path", {"qid": "../../q"}, "qid"),
    ("duration 1e12 s", {"duration": 1e12}, "duration"),
    ("duration beyond float range", {"duration": 10**400}, "duration"),
    ("duration a boolean", {"duration": True}, "duration"),
    ("window beyond float range", {"relevant_windows": [[0, 10**400]]}, "relevant_windows"),
]


@pytest.mark.parametrize(("case", "fields", "words"), ANNOTATIONS, ids=[c[0] for c in ANNOTATIONS])
def test_hostile_annotation_files(work: Path, case: str, fields: dict, words: str) -> None:
    _annotations(work / "in.jsonl", **fields)
    before = snapshot(work)
    result = run_guarded(["synth", "--out", "ds", "--annotations", "in.jsonl", "--quiet"])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work))


def test_empty_and_binary_annotation_files(work: Path) -> None:
    (work / "empty.jsonl").write_text("")
    (work / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    for name, words in (("empty.jsonl", "no queries"), ("binary.jsonl", "UTF-8")):
        result = run_guarded(["synth", "--out", "ds", "--annotations", name, "--quiet"])
        assert result.code == 2 and words in result.err, result.err
    assert not (work / "ds").exists()


OUTPUTS = [
    ("--out is a file", ["--out", "victim.txt"], "victim.txt"),
    ("--out under a file", ["--out", "victim.txt/ds"], "victim.txt"),
    ("--out holds the annotations (--force)", ["--out", "in", "--annotations", "in/a.jsonl", "--force"], "overwrite"),
    ("--out is a dangling link", ["--out", "dangling"], "dangling"),
]


@pytest.mark.parametrize(("case", "args", "words"), OUTPUTS, ids=[c[0] for c in OUTPUTS])
def test_outputs_never_overwrite_inputs(work: Path, case: str, args: list[str], words: str) -> None:
    (work / "in").mkdir()
    _annotations(work / "in" / "a.jsonl")
    os.symlink(work / "nowhere" / "x", work / "dangling")
    before = snapshot(work)
    result = run_guarded(["synth", *args, "--quiet"])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work))


def test_second_writer_and_resume_are_refused_while_locked(work: Path) -> None:
    assert run_guarded(["synth", "--out", "ds", *SMALL]).code == 0
    before = snapshot(work)
    with folder_lock(work / "ds", command="mrbench synth (the first)"):
        for extra in ([], ["--force"], ["--resume"]):
            result = run_guarded(["synth", "--out", "ds", *SMALL, *extra])
            assert result.code == 2 and "the first" in result.err and f"pid {os.getpid()}" in result.err
    assert snapshot(work) == before


def test_a_stale_lock_is_taken_over_with_a_warning(work: Path) -> None:
    lock_path(work / "ds").write_text(json.dumps({"pid": 2**22 + 4321, "host": "h", "command": "mrbench synth (killed)"}))
    result = run_guarded(["synth", "--out", "ds", *SMALL])
    assert result.code == 0 and "stale lock" in result.err and "killed" in result.err
    assert_whole(work / "ds")
    assert not lock_path(work / "ds").exists()


def test_a_failure_during_force_keeps_the_old_dataset(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mrbench.data.synth as synth

    assert run_guarded(["synth", "--out", "ds", *SMALL]).code == 0
    before = snapshot(work / "ds")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "ds")

    monkeypatch.setattr(synth, "_truth_bytes", broken)  # fails after every feature file is written
    result = run_guarded(["synth", "--out", "ds", *SMALL, "--seed", "1", "--force"])
    assert result.code == 2 and "No space left" in result.err
    assert snapshot(work / "ds") == before
    assert not any(p.exists() for p in staging_paths(work / "ds"))


def test_a_kill_during_force_keeps_the_old_or_the_new_dataset(work: Path) -> None:
    assert run_guarded(["synth", "--out", "ds", *SMALL]).code == 0
    before = snapshot(work / "ds")
    staging, _ = staging_paths(work / "ds")
    command = [sys.executable, "-m", "mrbench", "synth", "--out", "ds", "--n-train", "600", "--n-val", "10",
               "--n-ood", "10", "--seed", "7", "--force", "--quiet"]
    process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # until the new dataset is half-written (or the run is over)
            if process.poll() is not None or any((staging / "features").glob("*/*.npz")):
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert_whole(work / "ds")
    killed_early = snapshot(work / "ds") == before
    assert killed_early or DatasetDir(work / "ds").info().extra["config"]["seed"] == 7
    result = run_guarded(["synth", "--out", "ds", *SMALL, "--seed", "3", "--force"])  # starts over cleanly
    assert result.code == 0
    assert_whole(work / "ds")
    assert DatasetDir(work / "ds").info().extra["config"]["seed"] == 3
    assert not any(p.exists() for p in staging_paths(work / "ds"))


def _folder(path: Path, content: str) -> Path:
    path.mkdir()
    (path / "marker").write_text(content)
    return path


def test_swap_keeps_a_whole_folder_at_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mrbench.io as mio

    target = tmp_path / "out"
    staging, replaced = staging_paths(target)
    _folder(target, "old")
    _folder(staging, "new")
    swap_in(staging, target)  # the atomic exchange where the system has one
    assert (target / "marker").read_text() == "new" and not staging.exists() and not replaced.exists()

    # without an atomic exchange: a kill after the old folder moved aside...
    monkeypatch.setattr(mio, "_exchange", lambda first, second: False)
    _folder(staging, "newer")
    real_replace = os.replace
    calls = []

    def killed_on_second_rename(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for SIGKILL between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(mio.os, "replace", killed_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        swap_in(staging, target)
    monkeypatch.setattr(mio.os, "replace", real_replace)
    assert not target.exists() and (replaced / "marker").read_text() == "new"
    recover_swap(target)  # ...the next writer puts the old one back
    assert (target / "marker").read_text() == "new" and not replaced.exists() and not staging.exists()

    # ...and a kill after the new folder arrived but before the old one was removed
    _folder(replaced, "stale")
    recover_swap(target)
    assert (target / "marker").read_text() == "new" and not replaced.exists()


def test_planted_swap_links_are_never_followed(work: Path) -> None:
    victim = work / "victim_dir"
    victim.mkdir()
    (victim / "precious").write_text("keep")
    staging, replaced = staging_paths(work / "ds")
    os.symlink(victim, replaced)
    os.symlink(victim, staging)
    assert run_guarded(["synth", "--out", "ds", *SMALL]).code == 0
    assert_whole(work / "ds")
    assert not (work / "ds").is_symlink() and sorted(p.name for p in victim.iterdir()) == ["precious"]


def test_a_failed_fresh_run_says_resume_finishes_it(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mrbench.data.synth as synth

    real = synth._truth_bytes

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "ds/truth.parquet")

    monkeypatch.setattr(synth, "_truth_bytes", broken)
    result = run_guarded(["synth", "--out", "ds", *SMALL])
    assert result.code == 2 and "No space left" in result.err and "--resume" in result.err
    monkeypatch.setattr(synth, "_truth_bytes", real)
    assert run_guarded(["synth", "--out", "ds", *SMALL, "--resume"]).code == 0
    assert_whole(work / "ds")


def test_a_run_refused_before_writing_leaves_nothing(work: Path) -> None:
    (work / "a.jsonl").write_text(json.dumps({**RECORD, "duration": 1e12}) + "\n")
    assert run_guarded(["synth", "--out", "ds", "--annotations", "a.jsonl", "--quiet"]).code == 2
    assert not (work / "ds").exists() and not list(work.glob(".ds*"))
