"""Charades-CD / ActivityNet-CD conversion: the real files in ../shared, and the quirks on small files."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from mrbench.data.cd import (
    CD_FILES,
    UNMATCHED_QID_BASE,
    CDConversion,
    cd_splits,
    convert_cd_file,
    convert_cd_split,
    load_cd_split,
    normalize_sentence,
    verify_cd_file,
)
from mrbench.data.schema import Query, read_annotations
from mrbench.errors import MrbenchError, ValidationError
from tests.conftest import require_shared

#: (published, kept, matched to a reference qid) per split, counted by hand on the files.
EXPECTED = {
    ("charades_cd", "train"): (11071, 11071, 11070),
    ("charades_cd", "val"): (859, 859, 859),
    ("charades_cd", "test_iid"): (823, 823, 823),
    ("charades_cd", "test_ood"): (3375, 3372, 3372),
    ("activitynet_cd", "val"): (3521, 3521, 962),
    ("activitynet_cd", "test_iid"): (3443, 3443, 901),
    ("activitynet_cd", "test_ood"): (13578, 13574, 1754),
}
#: Mean normalised start of each split as NOTE.md publishes it (3 dp); ends are clipped here.
NOTE_MEAN_START = {
    ("charades_cd", "train"): 0.315, ("charades_cd", "val"): 0.341, ("charades_cd", "test_iid"): 0.334,
    ("charades_cd", "test_ood"): 0.373, ("activitynet_cd", "val"): 0.299,
    ("activitynet_cd", "test_iid"): 0.300, ("activitynet_cd", "test_ood"): 0.384,
}
REFERENCE = {"charades_cd": "charades_sta", "activitynet_cd": "activitynet"}


@cache
def _convert(family: str, split: str) -> CDConversion:
    root = require_shared("data", "charades_cd")
    return convert_cd_split(root, family, split, require_shared("data", REFERENCE[family]))


@pytest.mark.parametrize(("family", "split"), list(EXPECTED))
def test_real_split_counts_and_mean_start(family: str, split: str) -> None:
    conversion = _convert(family, split)
    published, kept, matched = EXPECTED[(family, split)]
    assert (conversion.published, len(conversion.records), conversion.matched) == (published, kept, matched)
    assert len(conversion.dropped) == published - kept
    records = conversion.records
    assert len({r.qid for r in records}) == len(records)
    start = np.mean([r.windows[0][0] / r.duration for r in records])
    assert start == pytest.approx(NOTE_MEAN_START[(family, split)], abs=6e-4)
    assert all(r.windows[0][1] <= r.duration for r in records)


def test_every_charades_sta_qid_maps_to_exactly_one_cd_query() -> None:
    """The four Charades-CD splits re-organise all of Charades-STA: each of the 16,124 released
    qids is given once; the splits share no video; matched records keep the STA video."""
    sta_root = require_shared("data", "charades_sta")
    sta = {r.qid: r for name in ("train", "test")
           for r in read_annotations(sta_root / f"charades_{name}_release.jsonl").records}
    splits = {split: _convert("charades_cd", split).records for split in cd_splits("charades_cd")}
    used = Counter(r.qid for records in splits.values() for r in records if r.qid in sta)
    assert set(used) == set(sta) and set(used.values()) == {1}
    for records in splits.values():
        for record in records:
            if record.qid in sta:
                assert record.vid == sta[record.qid].vid
                assert normalize_sentence(record.query) == normalize_sentence(sta[record.qid].query)
    vids = [{r.vid for r in records} for records in splits.values()]
    assert sum(map(len, vids)) == len(set().union(*vids))
    # the one unmatched train query (IOL8Q, dropped from the STA release) gets a far qid
    unmatched = [r for r in splits["train"] if r.qid not in sta]
    assert [(r.vid, r.qid >= UNMATCHED_QID_BASE[("charades_cd", "train")]) for r in unmatched] == [("IOL8Q", True)]


def test_checksums_agree_with_the_published_prefixes() -> None:
    """NOTE.md lists the first 8 hex digits of the four Charades-CD files; the full digests agree,
    and the files in ../shared pass verification."""
    note = require_shared("data", "charades_cd", "NOTE.md").read_text()
    listed = dict(re.findall(r"(train|val|test_iid|test_ood) `([0-9a-f]{8})…`", note))
    assert {split: spec.sha256[:8] for split, spec in CD_FILES["charades_cd"].items()} == listed
    root = require_shared("data", "charades_cd")
    for family, files in CD_FILES.items():
        for split, spec in files.items():
            assert (root / spec.path).stat().st_size == spec.size
            verify_cd_file(root / spec.path, family, split)


def test_load_cd_split_returns_the_records() -> None:
    root, ref = require_shared("data", "charades_cd"), require_shared("data", "charades_sta")
    records = load_cd_split(root, "charades_cd", "test_iid", ref)
    assert len(records) == 823 and all(isinstance(r, Query) for r in records)
    assert records[0].to_dict() == {"qid": 15642, "query": "person sits on the floor", "duration": 35.4375,
                                    "vid": "WXXYY", "relevant_windows": [[28.0, 35.4375]]}


# ---- small files: the rule and the quirks ---------------------------------------------------


def _charades(path: Path, videos: dict) -> Path:
    path.write_text(json.dumps({vid: {"timestamps": t, "sentences": s, "video_duration": d, "decode_fps": 16.0}
                                for vid, (t, s, d) in videos.items()}))
    return path


def _ref(qid: int, vid: str, query: str, window: list[float], duration: float) -> Query:
    return Query(qid=qid, query=query, vid=vid, duration=duration, windows=[window])


def test_matching_rule_periods_rounding_clipping_and_order(tmp_path: Path) -> None:
    """Inner periods removed and case ignored; the CD end is clipped to the reference duration and
    rounded to 0.1 s; duplicates take the reference qids in order, then a far qid."""
    reference = [
        _ref(7, "AAAAA", "Smiling.the person lays the mirror down.", [0.0, 11.5], 33.29),
        _ref(8, "AAAAA", "person opens the door.", [20.0, 33.29], 33.29),
        _ref(9, "BBBBB", "person sits.", [1.0, 2.0], 10.0),
    ]
    path = _charades(tmp_path / "c.json", {
        "AAAAA": ([[0.0, 11.5], [20.04, 33.6], [20.0, 33.6]],
                  ["smilingthe person lays the mirror down", "person opens the door", "person opens the door"],
                  33.4375),
        "BBBBB": ([[1.0, 2.0], [1.0, 2.0], [1.0, 2.3]], ["person sits", "person sits", "person sits"], 10.1),
    })
    conversion = convert_cd_file(path, "charades_cd", "val", reference)
    base = UNMATCHED_QID_BASE[("charades_cd", "val")]
    assert [r.qid for r in conversion.records] == [7, 8, base + 2, 9, base + 4, base + 5]
    assert conversion.matched == 3 and conversion.clipped == 2
    assert conversion.records[1].windows == [[20.04, 33.4375]]


def test_windows_past_the_video_or_reversed_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({
        "v_x": {"duration": 10.0, "timestamps": [[5, 4], [3, 3], [11, 12], [2, 10.01]],
                "sentences": [" a", " b", " c", " d"]},
    }))
    conversion = convert_cd_file(path, "activitynet_cd", "test_ood", [])
    assert [reason.split()[0] for _, _, reason in conversion.dropped] == ["start", "start", "window"]
    assert [(r.qid, r.query, r.windows) for r in conversion.records] == [
        (UNMATCHED_QID_BASE[("activitynet_cd", "test_ood")] + 3, " d", [[2, 10.0]])]
    assert conversion.summary() == ("activitynet_cd/test_ood: 4 published queries, 1 kept, "
                                    "0 matched to reference qids, 1 ends clipped, 3 dropped")


@pytest.mark.parametrize(("content", "field", "words"), [
    ("{", None, "not valid JSON"),
    ("[]", None, "keyed by video id"),
    ('{"v": 3}', "video_duration", "expected an object"),
    ('{"v": {"timestamps": [], "sentences": []}}', "video_duration", "missing field"),
    ('{"v": {"video_duration": -1, "timestamps": [], "sentences": []}}', "video_duration", "positive"),
    ('{"v": {"video_duration": 9, "timestamps": [[1, 2]], "sentences": []}}', "sentences", "1 timestamps but 0"),
    ('{"v": {"video_duration": 9, "timestamps": [[1, NaN]], "sentences": ["a"]}}', "timestamps", "finite"),
    ('{"v": {"video_duration": 9, "timestamps": [[-1, 2]], "sentences": ["a"]}}', "timestamps", "before 0"),
    ('{"v": {"video_duration": 9, "timestamps": [[1, 2]], "sentences": [5]}}', "sentences", "string"),
    ('{"": {"video_duration": 9, "timestamps": [[1, 2]], "sentences": ["a"]}}', "vid", "non-empty"),
])
def test_bad_files_are_one_error_naming_file_and_field(tmp_path: Path, content: str, field: str | None,
                                                       words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValidationError) as caught:
        convert_cd_file(path, "charades_cd", "train", [])
    assert caught.value.file == str(path) and caught.value.field == field and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_activitynet_train_and_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MrbenchError, match="never published anet_train.json"):
        load_cd_split(tmp_path, "activitynet_cd", "train", tmp_path)
    with pytest.raises(MrbenchError, match="unknown CD family 'tacos_cd'"):
        load_cd_split(tmp_path, "tacos_cd", "train", tmp_path)
    with pytest.raises(MrbenchError, match="no split 'test'"):
        load_cd_split(tmp_path, "charades_cd", "test", tmp_path)
    with pytest.raises(MrbenchError, match="not found"):
        load_cd_split(tmp_path, "charades_cd", "val", tmp_path)


def test_a_changed_file_fails_verification_and_a_missing_reference_is_named(tmp_path: Path) -> None:
    target = tmp_path / CD_FILES["charades_cd"]["val"].path
    target.parent.mkdir()
    _charades(target, {"AAAAA": ([[1.0, 2.0]], ["x"], 9.0)})
    with pytest.raises(MrbenchError, match="is not the published 05d451cbf0cc6441"):
        load_cd_split(tmp_path, "charades_cd", "val", tmp_path)
    with pytest.raises(MrbenchError, match="charades_train_release.jsonl not found"):
        load_cd_split(tmp_path, "charades_cd", "val", tmp_path, verify=False)
