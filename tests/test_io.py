"""``mrbench.io``'s JSON parsing: the same values as the standard library, exact error locations."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    RUN_RECORD,
    StagedRun,
    differing_settings,
    json_lines,
    json_loads,
    lock_path,
    staged_output,
    staging_paths,
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_same_values_as_the_standard_library(value: object) -> None:
    """Round trip through ``json.dumps``: floats (shortest repr), huge ints and infinities alike."""
    text = json.dumps(value)
    assert repr(json_loads(text)) == repr(json.loads(text))


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_correctly_rounded(number: float) -> None:
    for text in (repr(number), f"{number:.17g}", f"{number:.6e}"):
        assert json_loads(text) == json.loads(text)


def test_standard_library_extensions_still_parse() -> None:
    """NaN and Infinity literals (which orjson refuses) reach validation, which names the field."""
    value = json_loads('{"pred_relevant_windows": [[NaN, Infinity, 1]]}')
    start, end, _ = value["pred_relevant_windows"][0]
    assert math.isnan(start) and end == math.inf
    assert json_loads('{"a": 1, "a": 2}') == {"a": 2}  # the last duplicate key wins in both
    for number in (2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30):  # beyond 64 bits: still an int
        assert json_loads(f'{{"qid": {number}}}') == {"qid": number}
        assert type(json_loads(str(number))) is int


def test_json_lines_names_file_line_and_column() -> None:
    text = '{"qid": 1}\n\n{"qid": 2}\r\n{"qid": 3,}\n'
    with pytest.raises(ValidationError) as error:
        list(json_lines(text, "preds.jsonl"))
    message = str(error.value)
    assert "preds.jsonl" in message and "4" in message and "column 11" in message
    assert list(json_lines(text.replace(",}", "}"), "x")) == [(1, {"qid": 1}), (3, {"qid": 2}), (4, {"qid": 3})]


def test_json_lines_split_only_at_line_breaks() -> None:
    """A string may hold U+2028, U+2029 or U+0085 (valid JSON): they do not end the line."""
    text = '{"query": "a\u2028b\x85c\u2029d"}\r{"qid": 2}\r\n\n{"qid": 3}'
    assert list(json_lines(text, "x")) == [(1, {"query": "a\u2028b\x85c\u2029d"}), (2, {"qid": 2}), (4, {"qid": 3})]


# --- the staged-output protocol (mrbench.io.staged_output) -----------------------------------
SETTINGS = {"version": 1, "config": {"seed": 0, "size": 3}}


def _recorded(target: Path) -> dict | None:
    """What a complete result records: here, ``settings.json`` inside it."""
    path = target / "settings.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _produce(target: Path, settings: dict = SETTINGS, *, fail_after: int | None = None, **options: object) -> StagedRun:
    """Write files 0..size-1 (skipping those a resumed run has) and the settings, failing after
    ``fail_after`` new files."""
    with staged_output(target, settings, recorded=_recorded, what="toy result", **options) as run:
        if run.done:
            return run
        for index in range(settings["config"]["size"]):
            part = run.folder / f"part{index}"
            if run.resumed and part.is_file():
                continue
            if fail_after is not None and index >= fail_after:
                raise MrbenchError("disk full")
            part.write_text(f"{settings['config']['seed']}:{index}")
        (run.folder / "settings.json").write_text(json.dumps(settings))
    return run


def _files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_staged_output_swaps_in_a_complete_result(tmp_path: Path) -> None:
    target = tmp_path / "out"
    run = _produce(target)
    assert run.folder == staging_paths(target)[0] and not run.resumed and not run.done
    assert _files(target) == {"part0": "0:0", "part1": "0:1", "part2": "0:2", "settings.json": json.dumps(SETTINGS)}
    assert not any(p.exists() for p in staging_paths(target)) and not lock_path(target).exists()
    with pytest.raises(MrbenchError, match="already exists and is not empty .--force replaces a toy result"):
        _produce(target)
    replaced = {"version": 1, "config": {"seed": 5, "size": 2}}
    _produce(target, replaced, replace=True)
    assert _files(target) == {"part0": "5:0", "part1": "5:1", "settings.json": json.dumps(replaced)}


def test_resume_with_the_same_settings_continues(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(MrbenchError, match="disk full .the interrupted run is kept in .*--resume finishes it"):
        _produce(target, fail_after=2)
    staging, _ = staging_paths(target)
    assert not target.exists() and _files(staging).keys() == {"part0", "part1", RUN_RECORD}
    (staging / "part0").write_text("kept")  # a resumed run keeps what is there
    with pytest.raises(MrbenchError, match="pass --resume to finish it"):
        _produce(target)
    run = _produce(target, resume=True)
    assert run.resumed and _files(target)["part0"] == "kept" and _files(target)["part2"] == "0:2"
    assert RUN_RECORD not in _files(target) and not staging.exists()
    assert _produce(target, resume=True).done  # complete with the same settings: nothing to do


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    other = {"version": 1, "config": {"seed": 9, "size": 3}}
    with pytest.raises(MrbenchError):
        _produce(target, fail_after=1)
    with pytest.raises(MrbenchError, match=r"interrupted run made with other settings \(differing: seed\)"):
        _produce(target, other, resume=True)
    assert (staging_paths(target)[0] / "part0").is_file()  # refused without touching it
    _produce(target, resume=True)
    with pytest.raises(MrbenchError, match=r"complete toy result made with other settings \(differing: seed\)"):
        _produce(target, other, resume=True)
    assert differing_settings({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 2, "d": 4}, "e": 0}) == ["d", "e"]


def test_a_failure_with_nothing_to_resume_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(MrbenchError, match="^disk full$"):
        with staged_output(target, SETTINGS, recorded=_recorded, resumable=lambda folder: False):
            raise MrbenchError("disk full")
    assert not target.exists() and not any(p.exists() for p in staging_paths(target))
    _produce(target)
    before = _files(target)
    with pytest.raises(MrbenchError, match="^disk full$"):  # --force never keeps a half-built result
        _produce(target, {"version": 1, "config": {"seed": 1, "size": 3}}, replace=True, fail_after=1)
    assert _files(target) == before and not any(p.exists() for p in staging_paths(target))


def test_a_legacy_in_place_run_is_adopted_on_resume(tmp_path: Path) -> None:
    """A run an earlier version left elsewhere (its record inside) is moved into staging and finished."""
    target, old = tmp_path / "out", tmp_path / "out.partial"
    old.mkdir()
    (old / RUN_RECORD).write_text(json.dumps(SETTINGS))
    (old / "part1").write_text("old")
    with pytest.raises(MrbenchError, match="out.partial holds an interrupted run"):
        _produce(target, legacy=[old])
    _produce(target, resume=True, legacy=[old])
    assert _files(target)["part1"] == "old" and not old.exists()


_KILLED_WRITER = """
import json, sys, time
from pathlib import Path
from mrbench.io import staged_output
target, seed = Path(sys.argv[1]), int(sys.argv[2])
with staged_output(target, {"seed": seed}, recorded=lambda t: {}, replace=True) as run:
    for index in range(400):
        (run.folder / f"part{index}").write_text(str(seed))
        time.sleep(0.005)
"""


def test_a_kill_at_any_moment_leaves_the_old_or_the_new_result_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    for index in range(400):
        (target / f"part{index}").write_text("old")
    staging, _ = staging_paths(target)
    for delay in (0.0, 0.3, 1.0):
        process = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target), "1"])
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert set(_files(target).values()) == {"old"} and len(_files(target)) == 400
    assert staging.is_dir()  # the killed run's staging folder; the lock went with the process
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target), "2"], check=True)
    assert set(_files(target).values()) == {"2"} and len(_files(target)) == 400 and not staging.exists()
