"""Dataset catalog against the real files: split sizes, checksums, the carved validation split."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrbench.data.catalog import CATALOG, carve_videos, get_spec, load_charades_raw, load_split
from mrbench.errors import MrbenchError
from mrbench.io import sha256_file


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_checksums_match_the_real_files(shared_data: Path, name: str) -> None:
    for remote in get_spec(name).files.values():
        path = shared_data / name / remote.path
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
