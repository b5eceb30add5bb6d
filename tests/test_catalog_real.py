"""The distribution-shift catalog entries (charades_cd, activitynet_cd, qvhighlights_shift) on
the real files in ../shared, with counts checked by hand against the converters' own counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrbench.data.catalog import CATALOG, default_root, get_spec, load_split, resolve_split
from mrbench.errors import MrbenchError
from tests.conftest import run_guarded

#: queries kept per split (Charades-CD test_ood: 3375 published, 3 past their video's end;
#: ActivityNet-CD test_ood: 13578 published, 4 with start >= end; shift: 4336+540+541+3351 =
#: 8768 = QVHighlights train 7218 + val 1550)
COUNTS = {
    ("charades_cd", "train"): 11071, ("charades_cd", "val"): 859,
    ("charades_cd", "test_iid"): 823, ("charades_cd", "test_ood"): 3372,
    ("activitynet_cd", "val"): 3521, ("activitynet_cd", "test_iid"): 3443, ("activitynet_cd", "test_ood"): 13574,
    ("qvhighlights_shift", "train"): 4336, ("qvhighlights_shift", "val"): 540,
    ("qvhighlights_shift", "test_iid"): 541, ("qvhighlights_shift", "test_ood"): 3351,
}


@pytest.mark.parametrize(("name", "split"), sorted(COUNTS))
def test_split_sizes(shared_data: Path, name: str, split: str) -> None:
    root = shared_data / (get_spec(name).home or name)
    records = load_split(name, split, root=root).records
    assert len(records) == COUNTS[(name, split)]
    assert len({r.qid for r in records}) == len(records)


def test_settings_are_those_of_the_release_they_resplit() -> None:
    for name, reference in (("charades_cd", "charades_sta"), ("activitynet_cd", "activitynet"),
                            ("qvhighlights_shift", "qvhighlights")):
        spec, ref = get_spec(name), get_spec(reference)
        assert spec.reference == reference
        assert (spec.clip_len, spec.max_clips, spec.video_features, spec.text_features, spec.has_highlights) == (
            ref.clip_len, ref.max_clips, ref.video_features, ref.text_features, ref.has_highlights)
    assert list(CATALOG["charades_cd"].splits) == ["train", "val", "test_iid", "test_ood"]
    assert list(CATALOG["activitynet_cd"].splits) == ["val", "test_iid", "test_ood"]


def test_data_home_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Both CD families live in Yuan et al.'s one folder; the shift split in QVHighlights'."""
    monkeypatch.setenv("MRBENCH_DATA", str(tmp_path))
    assert default_root("charades_cd") == tmp_path / "charades_cd"
    assert default_root("activitynet_cd") == tmp_path / "charades_cd"
    assert default_root("qvhighlights_shift") == tmp_path / "qvhighlights"
    assert default_root("tacos") == tmp_path / "tacos"


def test_unpublished_train_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MrbenchError, match="never published anet_train.json"):
        resolve_split("activitynet_cd", "train", root=tmp_path)


def test_cd_qids_map_back_to_charades_sta(shared_data: Path) -> None:
    test_iid = load_split("charades_cd", "test_iid", root=shared_data / "charades_cd").records
    sta = {r.qid: r for r in load_split("charades_sta", "test", root=shared_data / "charades_sta").records}
    sta.update({r.qid: r for r in load_split("charades_sta", "train", root=shared_data / "charades_sta").records})
    matched = [r for r in test_iid if r.qid in sta]
    assert len(matched) == 823  # the converter's rule matches all 823 (NOTE.md's stricter one: 822)
    assert all(sta[r.qid].vid == r.vid for r in matched)


def test_shift_is_by_video_and_its_ood_moments_sit_late(shared_data: Path) -> None:
    root = shared_data / "qvhighlights"
    splits = {s: load_split("qvhighlights_shift", s, root=root).records for s in ("train", "test_iid", "test_ood")}
    vids = {s: {r.vid for r in records} for s, records in splits.items()}
    assert not vids["train"] & vids["test_ood"] and not vids["train"] & vids["test_iid"]
    assert not vids["test_iid"] & vids["test_ood"]


def test_missing_reference_names_the_download(shared_data: Path, tmp_path: Path) -> None:
    """A CD folder without the release beside it: one line saying what to download."""
    cd = tmp_path / "charades_cd"
    cd.mkdir()
    (cd / "Charades-CD").symlink_to(shared_data / "charades_cd" / "Charades-CD")
    with pytest.raises(MrbenchError, match="charades_train_release.jsonl not found"):
        load_split("charades_cd", "val", root=cd)


@pytest.mark.parametrize("name", ["charades_cd", "activitynet_cd", "qvhighlights_shift"])
def test_data_info_plots(shared_data: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "density.png"
    outcome = run_guarded(["data", "info", name, "--root", shared_data / (get_spec(name).home or name),
                           "--plot", out])
    assert outcome.code == 0, outcome.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_info_unpublished_split_cli(tmp_path: Path) -> None:
    outcome = run_guarded(["score", tmp_path / "p.jsonl", "--dataset", "activitynet_cd", "--split", "train",
                           "--root", tmp_path])
    assert outcome.code == 2
