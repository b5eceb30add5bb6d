"""Dataset catalog against the real files (split sizes, checksums, the carved validation split), and
the split resolver on hand-made inputs."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from mrbench.data.catalog import (
    CATALOG,
    DerivedSplit,
    SplitSource,
    carve_videos,
    dataset_splits,
    get_spec,
    load_charades_raw,
    load_split,
    resolve_split,
)
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import sha256_file


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_checksums_match_the_real_files(shared_data: Path, name: str) -> None:
    for remote in get_spec(name).files.values():
        path = shared_data / (get_spec(name).home or name) / remote.path
        assert path.stat().st_size == remote.size
        assert sha256_file(path) == remote.sha256


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("qvhighlights", {"train": 7218, "val": 1550, "test": 1542, "test_answers": 1542}),
        ("charades_sta", {"train": 12404, "test": 3720}),
        ("tacos", {"train": 9790, "val": 4436, "test": 4001}),
        ("activitynet", {"val": 17505}),
    ],
)
def test_split_sizes(shared_data: Path, name: str, sizes: dict[str, int]) -> None:
    for split, size in sizes.items():
        assert len(load_split(name, split, shared_data / name)) == size


def test_charades_validation_split_is_carved_from_train_by_video(shared_data: Path) -> None:
    root = shared_data / "charades_sta"
    val = load_split("charades_sta", "val", root).records
    rest = load_split("charades_sta", "train_minus_val", root).records
    test_vids = {r.vid for r in load_split("charades_sta", "test", root)}
    assert len(val) + len(rest) == 12404
    assert {r.vid for r in val}.isdisjoint({r.vid for r in rest})
    assert {r.vid for r in val}.isdisjoint(test_vids)
    # fixed seed: the same carve every time, about 10% of the 5336 training videos
    assert len({r.vid for r in val}) == round(0.1 * 5336)
    again = load_split("charades_sta", "val", root).records
    assert [r.qid for r in again] == [r.qid for r in val]


def test_carve_is_deterministic_and_sized() -> None:
    from mrbench.data.schema import Query

    records = [Query(qid=i, query="q", vid=f"v{i % 50}", duration=10.0) for i in range(200)]
    assert carve_videos(records, 0.2, 7) == carve_videos(records, 0.2, 7)
    assert len(carve_videos(records, 0.2, 7)) == 10


def test_charades_raw_loader(shared_data: Path) -> None:
    test = load_charades_raw("test", shared_data / "charades_sta")
    assert len(test) == 3720 and test[0].qid == 12404
    assert len(load_charades_raw("train", shared_data / "charades_sta")) == 12408


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MrbenchError, match="unknown dataset 'nope'; known: qvhighlights"):
        get_spec("nope")
    with pytest.raises(MrbenchError, match="has no split 'dev'"):
        load_split("qvhighlights", "dev", tmp_path)
    with pytest.raises(MrbenchError, match="run `mrbench data download tacos`"):
        load_split("tacos", "val", tmp_path)


# --- resolve_split: one descriptor from a name, a folder or a file (hand-checked) --------------
def _line(qid: int, vid: str, windows: list[list[float]] | None = None) -> str:
    record = {"qid": qid, "query": "a person walks", "duration": 30, "vid": vid}
    if windows is not None:
        record["relevant_windows"] = windows
    return json.dumps(record) + "\n"


def _catalog_root(root: Path) -> Path:
    """A download folder with small files under the catalog's names (QVHighlights, Charades-STA)."""
    root.mkdir()
    (root / "highlight_val_release.jsonl").write_text(_line(1, "a", [[0, 4]]) + _line(2, "b", [[2, 6]]))
    (root / "highlight_test_release.jsonl").write_text(_line(3, "c"))  # released without windows
    lines = "".join(_line(i, f"v{i % 20}", [[0, 2]]) for i in range(60))
    (root / "charades_train_release.jsonl").write_text(lines)
    return root


def test_resolve_a_catalog_name(tmp_path: Path) -> None:
    root = _catalog_root(tmp_path / "dl")
    source = resolve_split("qvhighlights", "val", root=root, features=tmp_path / "feats")
    assert source == SplitSource(dataset="qvhighlights", split="val", annotations=root / "highlight_val_release.jsonl",
                                 clip_len=2.0, provenance="catalog", features=tmp_path / "feats", max_clips=75,
                                 root=root)
    assert source.require_windows and [r.qid for r in source.load()] == [1, 2]
    test = resolve_split("qvhighlights", "test", root=root)
    assert test.answers == "test_answers" and not test.require_windows and len(test.load()) == 1
    assert resolve_split("qvhighlights", "val", root=root, clip_len=1.5).clip_len == 1.5  # an override


def test_resolve_a_carved_catalog_split(tmp_path: Path) -> None:
    """Charades-STA val: 10 % of train's 20 videos (2 videos, 6 queries) by the fixed carve."""
    root = _catalog_root(tmp_path / "dl")
    val = resolve_split("charades_sta", "val", root=root)
    rest = resolve_split("charades_sta", "train_minus_val", root=root)
    assert val.annotations == rest.annotations == root / "charades_train_release.jsonl"
    assert val.clip_len == 1.0 and val.max_clips is None and val.features is None
    assert val.carve == DerivedSplit("train", 0.1, 2024, take=True) and not rest.carve.take
    val_vids, rest_vids = {r.vid for r in val.load()}, {r.vid for r in rest.load()}
    assert len(val_vids) == 2 and len(val.load()) == 6 and len(rest.load()) == 54
    assert val_vids.isdisjoint(rest_vids)


def test_resolve_a_dataset_folder(tmp_path: Path) -> None:
    from mrbench.data.dataset import DatasetDir, DatasetInfo

    directory = DatasetDir(tmp_path / "ds")
    (directory.root / "annotations").mkdir(parents=True)
    directory.write_info(DatasetInfo(name="tiny", clip_len=1.5, video_features={"clip_features": 4,
                                     "slowfast_features": 8}, splits=["val"], max_clips=20))
    directory.annotation_path("val").write_text(_line(7, "v", [[0, 3]]))
    source = resolve_split(directory.root, "val")
    assert source == SplitSource(dataset="tiny", split="val", annotations=directory.root / "annotations" / "val.jsonl",
                                 clip_len=1.5, provenance="folder", features=directory.root / "features",
                                 max_clips=20, video_types=("clip_features", "slowfast_features"),
                                 data_dir=directory.root)
    assert resolve_split(directory.root, "val", features=tmp_path / "f").features == tmp_path / "f"
    assert [s.split for s in dataset_splits(directory.root)] == ["val"]
    with pytest.raises(MrbenchError, match="has no split 'test'"):
        resolve_split(directory.root, "test")
    with pytest.raises(ValidationError, match="split"):
        resolve_split(directory.root, "../val")


def test_resolve_an_annotation_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(_line(1, "v", [[0, 3]]))
    source = resolve_split(path, clip_len=0.5, features=tmp_path)
    assert source == SplitSource(dataset="mine", split="mine", annotations=path, clip_len=0.5, provenance="file",
                                 features=tmp_path)
    assert resolve_split(path, "val", clip_len=0.5).split == "val"
    with pytest.raises(MrbenchError, match="needs a clip length"):
        resolve_split(path)


@pytest.mark.parametrize(("source", "kind", "words"), [
    ("nothing_here", None, "neither a dataset directory"),
    ("qvhighlights", "folder", "not an mrbench dataset directory"),
    ("nowhere.jsonl", "file", "no such file"),
    ("imagenet", "catalog", "unknown dataset"),
])
def test_resolve_refuses_in_one_line(tmp_path: Path, source: str, kind: str | None, words: str) -> None:
    with pytest.raises(MrbenchError, match=words):
        resolve_split(tmp_path / source if kind == "file" else source, "val", kind=kind, clip_len=1.0)


def test_resolve_a_catalog_split_whose_files_are_missing(tmp_path: Path) -> None:
    with pytest.raises(MrbenchError, match="mrbench data download tacos"):
        resolve_split("tacos", "val", root=tmp_path)
    with pytest.raises(MrbenchError, match="has no split 'val_2'"):
        resolve_split("activitynet", "val_2", root=tmp_path)


def test_a_dataset_is_one_declaration() -> None:
    """Every catalog entry is found by its name; a declared loader reads files that are not
    community JSONL (it gets the resolved split and whether windows are required)."""
    from mrbench.data.schema import Annotations, Query

    assert all(CATALOG[name].name == name for name in CATALOG)
    assert "loader" in {f.name for f in fields(CATALOG["qvhighlights"])}

    def loader(source: SplitSource, require: bool) -> Annotations:
        return Annotations([Query(qid=source.split, query="q", vid="v", duration=10.0)])

    source = SplitSource("x", "val", Path("x.json"), 2.0, "catalog", loader=loader)
    assert [r.qid for r in source.load()] == ["val"]
