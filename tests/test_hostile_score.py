"""Hostile inputs to ``mrbench score``: each case is one line and exit 2 (or a clean 0), writes
nothing but its own output, and never changes an input (docs/security.md)."""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_confined, run_guarded, snapshot

N_QUERIES = 12
DURATION = 60


def _gt_lines() -> list[dict]:
    return [
        {"qid": q, "query": f"query {q}", "duration": DURATION, "vid": f"v{q}",
         "relevant_clip_ids": [2 + q, 3 + q], "saliency_scores": [[1, 2, 3], [2, 2, 2]],
         "relevant_windows": [[4 + 2 * q, 8 + 2 * q]]}
        for q in range(N_QUERIES)
    ]


def _pred_lines() -> list[dict]:
    return [
        {"qid": q, "pred_relevant_windows": [[4 + 2 * q, 8 + 2 * q, 0.9], [0, 10, 0.1]],
         "pred_saliency_scores": [0.1] * (DURATION // 2)}
        for q in range(N_QUERIES)
    ]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with gt.jsonl, pred.jsonl, masked.jsonl and a masked variant ``variant/``; the
    current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MRBENCH_SIZE_LIMIT_FACTOR", raising=False)
    (tmp_path / "gt.jsonl").write_text(_jsonl(_gt_lines()))
    (tmp_path / "pred.jsonl").write_text(_jsonl(_pred_lines()))
    (tmp_path / "masked.jsonl").write_text(_jsonl(_pred_lines()))
    variant = tmp_path / "variant"
    (variant / "annotations").mkdir(parents=True)
    (variant / "annotations" / "val.jsonl").write_text(_jsonl(_gt_lines()))
    queries = {str(q): {"masked_windows": [[2.0 + 2 * q, 10.0 + 2 * q]]} for q in range(N_QUERIES)}
    (variant / "manifest.json").write_text(json.dumps({"split": "val", "queries": queries}))
    return tmp_path


def _write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return setup


def _gzip_bomb(size: int) -> bytes:
    """``size`` bytes of spaces, deflated (about 1000:1)."""
    stream = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1 << 20)
    parts = [stream.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + stream.flush()


def _pred_with(**fields: object) -> str:
    rows = _pred_lines()
    rows[0] = {**rows[0], **fields}
    return _jsonl(rows)


def _gt_with(**fields: object) -> str:
    rows = _gt_lines()
    rows[0] = {**rows[0], **fields}
    return _jsonl(rows)


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        os.symlink(root / target, root / name)
    return setup


def _bundle(**fields: object) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / "b").mkdir()
        (root / "b" / "bundle.json").write_text(json.dumps({"mrbench_bundle": 1, "meta": {}, **fields}))
    return setup


# (case, setup, arguments, words expected in the error line)
CASES = [
    ("gzip bomb", _write("bomb.jsonl.gz", _gzip_bomb(64 << 20)), ["bomb.jsonl.gz", "--gt", "gt.jsonl"],
     "--size-limit-factor"),
    ("corrupt gzip", _write("c.jsonl.gz", gzip.compress(b"x" * 5000)[:40] + b"\xff" * 20), ["c.jsonl.gz", "--gt", "gt.jsonl"],
     "gzip"),
    ("truncated gzip", _write("t.jsonl.gz", gzip.compress(_pred_with().encode())[:-30]), ["t.jsonl.gz", "--gt", "gt.jsonl"],
     "truncated"),
    ("line longer than the bound", _write("long.jsonl", _pred_with(pad="x" * 200_000)), ["long.jsonl", "--gt", "gt.jsonl"],
     "--size-limit-factor"),
    ("more lines than the bound", _write("many.jsonl", _pred_with() + "\n" * 5000), ["many.jsonl", "--gt", "gt.jsonl"],
     "lines"),
    ("JSON nested too deeply", _write("deep.jsonl", '{"qid": 0, "x": ' + "[" * 5000 + "]" * 5000 + "}\n"),
     ["deep.jsonl", "--gt", "gt.jsonl"], "nested"),
    ("integer of 5000 digits", _write("digits.jsonl", '{"qid": ' + "7" * 5000 + "}\n"), ["digits.jsonl", "--gt", "gt.jsonl"],
     "digits"),
    ("non-UTF-8 predictions", _write("latin.jsonl", b"\xff\xfe{}"), ["latin.jsonl", "--gt", "gt.jsonl"], "UTF-8"),
    ("predictions are a device", None, ["/dev/zero", "--gt", "gt.jsonl"], "regular file"),
    ("booleans as a window", _write("bool.jsonl", _pred_with(pred_relevant_windows=[[True, False, 0.5]])),
     ["bool.jsonl", "--gt", "gt.jsonl"], "pred_relevant_windows"),
    ("window beyond float range", _write("huge.jsonl", _pred_with().replace("[4, 8, 0.9]", "[4, 1" + "0" * 400 + ", 0.9]")),
     ["huge.jsonl", "--gt", "gt.jsonl"], "pred_relevant_windows"),
    ("saliency beyond float range", _write("sal.jsonl", _pred_with().replace("[0.1, ", "[1" + "0" * 400 + ", ", 1)),
     ["sal.jsonl", "--gt", "gt.jsonl"], "pred_saliency_scores"),
    ("ground truth not UTF-8", _write("bad_gt.jsonl", b"\x80\x81"), ["pred.jsonl", "--gt", "bad_gt.jsonl"], "UTF-8"),
    ("ground truth empty", _write("empty.jsonl", ""), ["pred.jsonl", "--gt", "empty.jsonl"], "no queries"),
    ("ground truth a folder", None, ["pred.jsonl", "--gt", "variant"], "directory"),
    ("ground truth a device", None, ["pred.jsonl", "--gt", "/dev/zero"], "regular file"),
    ("duration 1e12 s", _write("long_gt.jsonl", _gt_with(duration=1e12)), ["pred.jsonl", "--gt", "long_gt.jsonl"], "duration"),
    ("duration beyond float range", _write("int_gt.jsonl", _gt_with().replace('"duration": 60', '"duration": 1' + "0" * 400)),
     ["pred.jsonl", "--gt", "int_gt.jsonl"], "duration"),
    ("duration a boolean", _write("bool_gt.jsonl", _gt_with(duration=True)), ["pred.jsonl", "--gt", "bool_gt.jsonl"], "duration"),
    ("--json is the predictions", None, ["pred.jsonl", "--gt", "gt.jsonl", "--json", "pred.jsonl"], "overwrite"),
    ("--json is the ground truth", None, ["pred.jsonl", "--gt", "gt.jsonl", "--json", "gt.jsonl"], "overwrite"),
    ("--json is the masked predictions", None,
     ["pred.jsonl", "--gt", "gt.jsonl", "--masked", "masked.jsonl", "--json", "masked.jsonl"], "overwrite"),
    ("--json is a link to the predictions", _symlink("report.json", "pred.jsonl"),
     ["pred.jsonl", "--gt", "gt.jsonl", "--json", "report.json"], "overwrite"),
    ("--json is the manifest", None,
     ["pred.jsonl", "--masked", "masked.jsonl", "--variant", "variant", "--json", "variant/manifest.json"], "input folder"),
    ("--json under a file", None, ["pred.jsonl", "--gt", "gt.jsonl", "--json", "pred.jsonl/report.json"], "pred.jsonl"),
    ("bundle path escapes its folder", _bundle(predictions="../pred.jsonl"), ["b", "--gt", "gt.jsonl"], "outside"),
    ("bundle absolute path", _bundle(predictions="/etc/hostname"), ["b", "--gt", "gt.jsonl"], "outside"),
    ("bundle variant escapes", _bundle(predictions=_pred_lines(), variant="../variant"), ["b", "--gt", "gt.jsonl"],
     "outside"),
    ("manifest windows malformed", _write("variant/manifest.json", json.dumps(
        {"split": "val", "queries": {str(q): {"masked_windows": [["a", None]]} for q in range(N_QUERIES)}})),
     ["pred.jsonl", "--gt", "gt.jsonl", "--masked", "masked.jsonl", "--variant", "variant"], "masked_windows"),
    ("manifest not an object", _write("variant/manifest.json", "[1, 2]"),
     ["pred.jsonl", "--gt", "gt.jsonl", "--masked", "masked.jsonl", "--variant", "variant"], "manifest"),
]
BAD_OPTIONS = [
    ("--n-boot", "0"), ("--n-boot", "-5"), ("--n-boot", "nan"), ("--n-boot", "true"), ("--n-boot", "1e9"),
    ("--n-boot", "10000000"), ("--seed", "-1"), ("--seed", str(2**64)), ("--seed", "nan"), ("--seed", "1.5"),
    ("--size-limit-factor", "0"), ("--size-limit-factor", "-1"), ("--size-limit-factor", "nan"),
    ("--size-limit-factor", "inf"),
]


@pytest.mark.parametrize(("case", "setup", "args", "words"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_and_exit_2(work: Path, case: str, setup: Callable[[Path], None] | None,
                                              args: list[str], words: str) -> None:
    if setup is not None:
        setup(work)
    before = snapshot(work)
    result = run_guarded(["score", *args])
    assert result.code == 2, case
    assert words in result.err, result.err
    assert snapshot(work) == before


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=[f"{o}={v}" for o, v in BAD_OPTIONS])
def test_bad_numeric_options(work: Path, option: str, value: str) -> None:
    result = run_guarded(["score", "pred.jsonl", "--gt", "gt.jsonl", "--ci", option, value])
    assert result.code == 2 and option in result.err


def test_the_bound_is_raised_by_the_option_it_names(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (work / "long.jsonl").write_text(_pred_with(pad="x" * 200_000))
    assert run_guarded(["score", "long.jsonl", "--gt", "gt.jsonl"]).code == 2
    assert run_guarded(["score", "long.jsonl", "--gt", "gt.jsonl", "--size-limit-factor", "10"]).code == 0
    monkeypatch.setenv("MRBENCH_SIZE_LIMIT_FACTOR", "10")
    assert run_guarded(["score", "long.jsonl", "--gt", "gt.jsonl"]).code == 0


def test_gzip_ground_truth_and_predictions_are_read(work: Path) -> None:
    (work / "gt.jsonl.gz").write_bytes(gzip.compress((work / "gt.jsonl").read_bytes()))
    (work / "pred.jsonl.gz").write_bytes(gzip.compress((work / "pred.jsonl").read_bytes()))
    assert run_guarded(["score", "pred.jsonl.gz", "--gt", "gt.jsonl.gz", "--json", "out/report.json"]).code == 0
    assert json.loads((work / "out" / "report.json").read_text())["brief"]


# --------------------------------------------------------------------------------------------
# fuzzing: valid files, mutated

HOSTILE_VALUES = st.sampled_from([
    None, True, -1, 0, 1e308, -1e308, 10**30, "", "../x", "a/b", "\x00", "<script>", [], {}, [[]],
    [[0, 1]], [[1, 0, 0.5]], [["a", "b", "c"]], [[0, 1e300, 0.5]], float("nan"),
])


@st.composite
def mutated_jsonl(draw: st.DrawFn, rows: list[dict]) -> bytes:
    """A valid JSON Lines file with one of: a field replaced by a hostile value, a field removed,
    a line duplicated or dropped, bytes flipped, inserted or cut."""
    rows = [dict(r) for r in rows]
    kind = draw(st.sampled_from(["value", "drop_field", "duplicate", "drop_line", "flip", "insert", "cut"]))
    index = draw(st.integers(0, len(rows) - 1))
    if kind == "value":
        key = draw(st.sampled_from(sorted(rows[index])))
        rows[index][key] = draw(HOSTILE_VALUES)
    elif kind == "drop_field":
        rows[index].pop(draw(st.sampled_from(sorted(rows[index]))))
    elif kind == "duplicate":
        rows.insert(index, rows[index])
    elif kind == "drop_line":
        rows.pop(index)
    data = bytearray(_jsonl(rows).encode("utf-8"))
    if kind in ("flip", "insert", "cut"):
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data = data[:at]
    return bytes(data)


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=mutated_jsonl(_pred_lines()))
def test_fuzzed_predictions(work: Path, data: bytes) -> None:
    (work / "fuzz.jsonl").write_bytes(data)
    before = snapshot(work)
    run_guarded(["score", "fuzz.jsonl", "--gt", "gt.jsonl", "--masked", "fuzz.jsonl", "--json", "out/report.json"])
    assert_confined(before, snapshot(work), "out")


@FUZZ
@given(data=mutated_jsonl(_gt_lines()))
def test_fuzzed_ground_truth(work: Path, data: bytes) -> None:
    (work / "fuzz_gt.jsonl").write_bytes(data)
    before = snapshot(work)
    run_guarded(["score", "pred.jsonl", "--gt", "fuzz_gt.jsonl", "--allow-missing", "--json", "out/report.json"])
    assert_confined(before, snapshot(work), "out")


def test_bootstrap_replicates_are_bounded_before_allocation(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mrbench.io.MAX_ARRAY_BYTES", 100_000)  # this test's arrays stand for huge ones
    result = run_guarded(["score", "pred.jsonl", "--gt", "gt.jsonl", "--ci", "--n-boot", "100000"])
    assert result.code == 2 and "bootstrap" in result.err and "--size-limit-factor" in result.err
    assert run_guarded(["score", "pred.jsonl", "--gt", "gt.jsonl", "--ci", "--n-boot", "100000",
                        "--size-limit-factor", "100"]).code == 0


def test_ground_truth_windows_are_bounded_before_allocation(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mrbench.io.MAX_ARRAY_BYTES", 100_000)
    (work / "wide.jsonl").write_text(_gt_with(relevant_windows=[[0.0, 1.0]] * 20_000))
    result = run_guarded(["score", "pred.jsonl", "--gt", "wide.jsonl"])
    assert result.code == 2 and "ground-truth windows" in result.err
