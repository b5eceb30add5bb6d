"""Hostile options, folders and manifests for ``mrbench mask`` and ``mrbench mask verify``
(docs/security.md)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrbench.io import folder_lock
from tests.conftest import assert_confined, run_guarded, snapshot


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset and one masked variant of its val split (made once)."""
    from mrbench.data.synth import SynthConfig, generate
    from mrbench.masking.build import build, source_from_dir

    root = tmp_path_factory.mktemp("mask")
    generate(SynthConfig(n_train=4, n_val=6, n_ood=1, n_clips=20), root / "ds", progress=False)
    build(source_from_dir(root / "ds", "val"), root / "variant")
    return root


@pytest.fixture
def work(tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(dataset / "ds", tmp_path / "ds", symlinks=True)
    shutil.copytree(dataset / "variant", tmp_path / "variant", symlinks=True)
    (tmp_path / "victim.txt").write_text("keep me\n")
    return tmp_path


MASK = ["mask", "--data", "ds", "--split", "val", "--quiet"]
BAD_OPTIONS = [
    ("--margin", "nan"), ("--margin", "inf"), ("--margin", "-1"), ("--margin", "1e400"),
    ("--clip-len", "nan"), ("--clip-len", "0"), ("--clip-len", "1e-300"), ("--clip-len", "1e9"),
    ("--seeds", "-1"), ("--seeds", "1,1"), ("--seeds", "a"), ("--seeds", str(2**64)), ("--seeds", ""),
    ("--workers", "0"), ("--workers", "1000000"), ("--strategy", "rm"), ("--split", "../../x"), ("--split", "val/.."),
]


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=[f"{o}={v}" for o, v in BAD_OPTIONS])
def test_bad_options(work: Path, option: str, value: str) -> None:
    before = snapshot(work)
    result = run_guarded([*MASK, "--out", "out", option, value])
    assert result.code == 2, result.err
    assert_confined(before, snapshot(work))


OUTPUTS = [
    ("--out is the dataset", "ds", "overwrite"),
    ("--out is the feature root", "ds/features", "input folder"),
    ("--out inside the feature root", "ds/features/masked", "input folder"),
    ("--out contains the dataset", ".", "overwrite"),
    ("--out is a file", "victim.txt", "victim.txt"),
    ("--out under a file", "victim.txt/out", "victim.txt"),
]


@pytest.mark.parametrize(("case", "out", "words"), OUTPUTS, ids=[c[0] for c in OUTPUTS])
def test_outputs_never_overwrite_inputs(work: Path, case: str, out: str, words: str) -> None:
    before = snapshot(work)
    result = run_guarded([*MASK, "--out", out])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work))


def test_second_writer_is_refused(work: Path) -> None:
    with folder_lock(work / "out", command="mrbench mask (the first)"):
        for extra in ([], ["--resume"]):
            result = run_guarded([*MASK, "--out", "out", *extra])
            assert result.code == 2 and "the first" in result.err
    assert not (work / "out").exists() and not (work / "out.partial").exists()


def test_a_failure_before_any_feature_leaves_no_partial(work: Path) -> None:
    shutil.rmtree(work / "ds" / "features" / "clip_features")
    result = run_guarded([*MASK, "--out", "out"])
    assert result.code == 2
    assert not (work / "out.partial").exists() and not (work / "out").exists()


def test_a_feature_file_with_a_huge_header_is_one_line(work: Path) -> None:
    import io

    import numpy as np

    vid = json.loads((work / "ds" / "annotations" / "val.jsonl").read_text().splitlines()[0])["vid"]
    victim = work / "ds" / "features" / "clip_features" / f"{vid}.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 128)})
    victim.unlink()
    victim.with_suffix(".npy").write_bytes(header.getvalue() + b"\x00" * 64)
    result = run_guarded([*MASK, "--out", "out"])
    assert result.code == 2 and "out of range" in result.err, result.err


VERIFY_CASES = [
    ("not JSON", lambda m: "{"),
    ("a list", lambda m: [1]),
    ("split escapes", lambda m: {**m, "split": "../../x"}),
    ("file escapes", lambda m: {**m, "files": {"../../victim.txt": "0" * 64}}),
    ("vid escapes", lambda m: {**m, "queries": {k: {**v, "vid": "../../v"} for k, v in m["queries"].items()}}),
    ("n_clips 1e12", lambda m: {**m, "queries": {k: {**v, "n_clips": 10**12} for k, v in m["queries"].items()}}),
    ("clip range outside", lambda m: {**m, "queries": {k: {**v, "masked_clips": [[0, 10**6]]} for k, v in m["queries"].items()}}),
    ("types escape", lambda m: {**m, "types": ["../../x"]}),
    ("seed a boolean", lambda m: {**m, "seed": True}),
]


@pytest.mark.parametrize(("case", "mutate"), VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_hostile_manifest_for_verify(work: Path, case: str, mutate) -> None:  # noqa: ANN001
    path = work / "variant" / "manifest.json"
    changed = mutate(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    before = snapshot(work)
    assert run_guarded(["mask", "verify", "variant"]).code == 2
    assert snapshot(work) == before


MANIFEST_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(["../x", "/etc/passwd", "a/../../b", "features/../../victim.txt"]),
    st.lists(st.integers(-5, 10**7), max_size=3), st.lists(st.lists(st.integers(-5, 50), max_size=3), max_size=3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_manifest(work: Path, data: st.DataObject) -> None:
    path = work / "variant" / "manifest.json"
    original = path.read_text()
    manifest = json.loads(original)
    where = data.draw(st.sampled_from(["top", "query", "file"]))
    if where == "top":
        manifest[data.draw(st.sampled_from(sorted(manifest)))] = data.draw(MANIFEST_VALUES)
    elif where == "query":
        entry = manifest["queries"][data.draw(st.sampled_from(sorted(manifest["queries"])))]
        entry[data.draw(st.sampled_from(sorted(entry)))] = data.draw(MANIFEST_VALUES)
    else:
        manifest["files"][data.draw(st.sampled_from(["../x", "dataset.json", "a//b", "features/x/y.npz"]))] = \
            data.draw(st.text(max_size=64))
    path.write_text(json.dumps(manifest))
    before = snapshot(work)
    run_guarded(["mask", "verify", "variant"])
    run_guarded(["score", "--masked", "/dev/null", "--variant", "variant", "variant/annotations/val.jsonl"])
    assert snapshot(work) == before
    path.write_text(original)


def test_resume_reads_a_hostile_job_file_in_one_line(work: Path) -> None:
    partial = work / "out.partial"
    partial.mkdir()
    (partial / ".mask-job.json").write_text("[" * 5000)
    result = run_guarded([*MASK, "--out", "out", "--resume"])
    assert result.code == 2 and "mask-job.json" in result.err, result.err
    assert os.path.isdir(partial)


@pytest.mark.parametrize("vid", ["../../escaped", "/tmp/escaped", "v\x00", "a/b"])
def test_a_vid_that_is_not_a_name_is_refused_before_writing(work: Path, vid: str) -> None:
    path = work / "ds" / "annotations" / "val.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["vid"] = vid
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = snapshot(work)
    result = run_guarded([*MASK, "--out", "out"])
    assert result.code == 2 and "'vid'" in result.err and "val.jsonl" in result.err, result.err
    assert_confined(before, snapshot(work))
