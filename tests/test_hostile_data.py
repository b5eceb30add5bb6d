"""Hostile dataset folders, feature files and mirrors for ``mrbench data info|pack|download``
(docs/security.md)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrbench.io import npz_bytes
from tests.conftest import assert_confined, require_shared, run_guarded, snapshot

INFO = {"name": "d", "clip_len": 2.0, "video_features": {"clip_features": 4}, "splits": ["val"], "kind": "dataset"}
RECORD = {"qid": 1, "query": "q", "duration": 20, "vid": "v1", "relevant_windows": [[2, 6]]}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ds/`` (dataset.json, one split, 4-dim features of one video) and ``victim.txt``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds" / "annotations").mkdir(parents=True)
    (tmp_path / "ds" / "annotations" / "val.jsonl").write_text(json.dumps(RECORD) + "\n")
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps(INFO))
    features = tmp_path / "ds" / "features" / "clip_features"
    features.mkdir(parents=True)
    (features / "v1.npz").write_bytes(npz_bytes({"features": np.ones((10, 4), np.float32)}))
    (tmp_path / "victim.txt").write_text("keep me\n")
    return tmp_path


DATASET_JSON = [
    ("not JSON", "{"),
    ("a list", "[1, 2]"),
    ("nested too deeply", "[" * 5000 + "]" * 5000),
    ("name a number", json.dumps({**INFO, "name": 1})),
    ("clip_len a string", json.dumps({**INFO, "clip_len": "2"})),
    ("clip_len 1e-300", json.dumps({**INFO, "clip_len": 1e-300})),
    ("feature type escapes", json.dumps({**INFO, "video_features": {"../../x": 4}})),
    ("feature size huge", json.dumps({**INFO, "video_features": {"clip_features": 10**12}})),
    ("split escapes", json.dumps({**INFO, "splits": ["../../x"]})),
    ("max_clips a boolean", json.dumps({**INFO, "max_clips": True})),
    ("unknown field", json.dumps({**INFO, "rm": "-rf"})),
    ("integer of 5000 digits", '{"name": "d", "clip_len": ' + "9" * 5000 + "}"),
]


@pytest.mark.parametrize(("case", "text"), DATASET_JSON, ids=[c[0] for c in DATASET_JSON])
def test_hostile_dataset_json(work: Path, case: str, text: str) -> None:
    (work / "ds" / "dataset.json").write_text(text)
    before = snapshot(work)
    assert run_guarded(["data", "info", "ds", "--json", "stats.json"]).code == 2
    assert run_guarded(["mask", "--data", "ds", "--split", "val", "--out", "out", "--quiet"]).code == 2
    assert snapshot(work) == before


@pytest.mark.parametrize("target", ["ds/dataset.json", "ds/annotations/val.jsonl", "ds/new.json"])
def test_info_json_never_lands_in_the_dataset(work: Path, target: str) -> None:
    before = snapshot(work)
    result = run_guarded(["data", "info", "ds", "--json", target])
    assert result.code == 2 and "--json" in result.err
    assert snapshot(work) == before


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _npz_bomb() -> bytes:
    """An .npz whose deflated member claims (and would inflate to) 4 GB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("features.npy", "w",
                                                                                       force_zip64=True) as member:
        member.write(_npy_header((2**28, 4)))
        chunk = bytes(1 << 24)
        for _ in range(4):  # only 64 MiB really written: the header's claim is what counts
            member.write(chunk)
    return buffer.getvalue()


FEATURES = [
    ("truncated npz", "v1.npz", lambda raw: raw[:100], "cannot read"),
    ("not a zip", "v1.npz", lambda raw: b"PK\x03\x04" + b"\x00" * 50, "cannot read"),
    ("npz without the key", "v1.npz", lambda raw: npz_bytes({"other": np.ones(3)}), "no key"),
    ("truncated npy", "v1.npy", lambda raw: _npy_header((10, 4))[:20], "cannot read"),
    ("npy header claims 1e11 clips", "v1.npy", lambda raw: _npy_header((10**11, 4)) + bytes(64), "out of range"),
    ("npy header of 4 dimensions", "v1.npy", lambda raw: _npy_header((2, 2, 2, 2)) + bytes(64), "out of range"),
    ("npz member header corrupted", "v1.npz",
     lambda raw: npz_bytes({"features": np.ones((2, 4), np.float32)}).replace(b"(2, 4)", b"(99999999999, 4)"[:6]),
     "cannot read"),
]


@pytest.mark.parametrize(("case", "name", "corrupt", "words"), FEATURES, ids=[c[0] for c in FEATURES])
def test_hostile_feature_files_for_pack(work: Path, case: str, name: str, corrupt, words: str) -> None:  # noqa: ANN001
    features = work / "ds" / "features" / "clip_features"
    raw = (features / "v1.npz").read_bytes()
    (features / "v1.npz").unlink()
    (features / name).write_bytes(corrupt(raw))
    before = snapshot(work)
    result = run_guarded(["data", "pack", "--features", "ds/features", "--out", "packed"])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work), "packed")


def test_a_deflate_bomb_in_an_npz_is_refused_from_its_header(work: Path) -> None:
    features = work / "ds" / "features" / "clip_features"
    (features / "v1.npz").write_bytes(_npz_bomb())
    result = run_guarded(["data", "pack", "--features", "ds/features", "--out", "packed"])
    assert result.code == 2 and "out of range" in result.err, result.err


PACK_OUTPUTS = [
    ("--out is the feature root", "ds/features", "input folder"),
    ("--out inside the feature root", "ds/features/packed", "input folder"),
    ("--out under a file", "victim.txt/packed", "victim.txt"),
]


@pytest.mark.parametrize(("case", "out", "words"), PACK_OUTPUTS, ids=[c[0] for c in PACK_OUTPUTS])
def test_pack_never_writes_into_its_input(work: Path, case: str, out: str, words: str) -> None:
    before = snapshot(work)
    result = run_guarded(["data", "pack", "--features", "ds/features", "--out", out])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work))


def test_pack_of_an_empty_annotation_file(work: Path) -> None:
    (work / "empty.jsonl").write_text("\n")
    result = run_guarded(["data", "pack", "--features", "ds/features", "--out", "packed", "--annotations", "empty.jsonl"])
    assert result.code == 2 and "nothing to pack" in result.err


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf", "1e9"])
def test_download_timeout_values(work: Path, value: str) -> None:
    result = run_guarded(["data", "download", "tacos", "--dest", "dl", "--from", "ds", "--timeout", value])
    assert result.code == 2 and "--timeout" in result.err


def test_download_refuses_a_mirror_that_sends_too_much(work: Path) -> None:
    source = require_shared("data", "tacos")
    mirror = work / "mirror"
    shutil.copytree(source, mirror)
    with open(mirror / "tacos_val_release.jsonl", "ab") as handle:
        handle.write(b"x" * 100_000)
    before = snapshot(work)
    result = run_guarded(["data", "download", "tacos", "--dest", "dl", "--from", "mirror"])
    assert result.code == 2 and "more than" in result.err
    assert not [p for p in (work / "dl").rglob("*") if p.name.startswith(".") or p.name == "tacos_val_release.jsonl"]
    assert_confined(before, snapshot(work), "dl")


INFO_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(["../x", "/etc", "a/b", "..", "val\x00"]), st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(-5, 10**7), max_size=3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([*INFO, "text_features", "max_clips", "extra", "other"]), value=INFO_VALUES,
       drop=st.booleans())
def test_fuzzed_dataset_json(work: Path, key: str, value: object, drop: bool) -> None:
    info = dict(INFO)
    if drop:
        info.pop(key, None)
    else:
        info[key] = value
    (work / "ds" / "dataset.json").write_text(json.dumps(info))
    before = snapshot(work)
    run_guarded(["data", "info", "ds", "--json", "out/stats.json"])
    run_guarded(["mask", "--data", "ds", "--split", "val", "--out", "out/masked", "--quiet"])
    assert_confined(before, snapshot(work), "out")
