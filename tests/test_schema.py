"""Annotation schema: real files round-trip byte for byte; every malformed case names its place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrbench.data.schema import (
    FileStyle,
    Query,
    dumps_annotations,
    read_annotations,
    read_charades_raw,
    write_annotations,
)
from mrbench.errors import ValidationError

REAL_FILES = {
    "qvhighlights/highlight_train_release.jsonl": 7218,
    "qvhighlights/highlight_val_release.jsonl": 1550,
    "qvhighlights/highlight_test_release.jsonl": 1542,
    "qvhighlights/highlight_test_with_gt.jsonl": 1542,
    "charades_sta/charades_train_release.jsonl": 12404,
    "charades_sta/charades_test_release.jsonl": 3720,
    "tacos/tacos_train_release.jsonl": 9790,
    "tacos/tacos_val_release.jsonl": 4436,
    "tacos/tacos_test_release.jsonl": 4001,
    "activitynet/activitynet_val_release.jsonl": 17505,
}


@pytest.mark.parametrize("relative", sorted(REAL_FILES))
def test_real_files_read_and_round_trip_byte_stable(shared_data: Path, tmp_path: Path, relative: str) -> None:
    source = shared_data / relative
    annotations = read_annotations(source)
    assert len(annotations) == REAL_FILES[relative]
    out = tmp_path / "copy.jsonl"
    write_annotations(out, annotations)
    assert out.read_bytes() == source.read_bytes()


def test_qvhighlights_record_fields(shared_data: Path) -> None:
    records = read_annotations(shared_data / "qvhighlights/highlight_val_release.jsonl").records
    first = records[0]
    assert first.qid == 2579 and first.vid == "NUsG9BgSes0_210.0_360.0" and first.duration == 150
    assert first.relevant_clip_ids[:3] == [41, 42, 43]
    assert len(first.saliency_scores) == len(first.relevant_clip_ids)
    assert all(len(row) == 3 for row in first.saliency_scores)


def test_tacos_qids_are_strings(shared_data: Path) -> None:
    records = read_annotations(shared_data / "tacos/tacos_test_release.jsonl").records
    assert all(isinstance(r.qid, str) for r in records)


def test_test_release_has_no_windows_and_require_windows_rejects_it(shared_data: Path) -> None:
    path = shared_data / "qvhighlights/highlight_test_release.jsonl"
    assert all(r.windows is None for r in read_annotations(path))
    with pytest.raises(ValidationError, match=r"highlight_test_release.jsonl:1: .*field 'relevant_windows'"):
        read_annotations(path, require_windows=True)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


GOOD = {"qid": 1, "query": "a man cooks", "duration": 150, "vid": "v1", "relevant_windows": [[26, 36]]}


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"relevant_windows": [[36, 26]]}, r"field 'relevant_windows': window 0 \[36, 26\]: start >= end"),
        ({"relevant_windows": [[26, 26]]}, r"start >= end"),
        ({"relevant_windows": [[-2, 10]]}, r"outside \[0, duration=150\]"),
        ({"relevant_windows": [[140, 152]]}, r"outside \[0, duration=150\]"),
        ({"relevant_windows": [[1, float("nan")]]}, r"finite numbers"),
        ({"relevant_windows": []}, r"non-empty list"),
        ({"duration": -1}, r"field 'duration'"),
        ({"qid": 1.5}, r"field 'qid': must be an int or a string"),
        ({"relevant_clip_ids": [13, 14], "saliency_scores": [[1, 2, 3]]},
         r"field 'saliency_scores': has 1 rows but relevant_clip_ids has 2"),
        ({"saliency_scores": [[1, 2, 3]]}, r"field 'saliency_scores': given without relevant_clip_ids"),
        ({"relevant_clip_ids": [3, 3], "saliency_scores": [[1], [1]]}, r"duplicate clip ids"),
    ],
)
def test_malformed_record_names_file_line_qid_field(tmp_path: Path, change: dict, pattern: str) -> None:
    bad = {**GOOD, "qid": 7, **change}
    path = _write(tmp_path, [json.dumps(GOOD), json.dumps(bad)])
    with pytest.raises(ValidationError, match=pattern) as info:
        read_annotations(path)
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: qid {bad['qid']!r}: field '")


def test_missing_field_bad_json_and_duplicates(tmp_path: Path) -> None:
    missing = {k: v for k, v in GOOD.items() if k != "vid"}
    with pytest.raises(ValidationError, match=r"bad.jsonl:1: qid 1: field 'vid': missing field"):
        read_annotations(_write(tmp_path, [json.dumps(missing)]))
    with pytest.raises(ValidationError, match=r"bad.jsonl:2: invalid JSON"):
        read_annotations(_write(tmp_path, [json.dumps(GOOD), '{"qid": 2, "query": ']))
    with pytest.raises(ValidationError, match=r"bad.jsonl:3: qid 1: field 'qid': duplicate qid \(first seen on line 1\)"):
        read_annotations(_write(tmp_path, [json.dumps(GOOD), json.dumps({**GOOD, "qid": 2}), json.dumps(GOOD)]))
    with pytest.raises(ValidationError, match=r"bad.jsonl:1: expected a JSON object"):
        read_annotations(_write(tmp_path, ["[1, 2]"]))


def test_small_overrun_within_tolerance_is_accepted(tmp_path: Path) -> None:
    # ActivityNet-Captions val has windows ending 0.01 s after the video (rounding).
    record = {**GOOD, "duration": 89.71, "relevant_windows": [[29.61, 89.72]]}
    assert read_annotations(_write(tmp_path, [json.dumps(record)])).records[0].windows == [[29.61, 89.72]]


def test_styles_round_trip(tmp_path: Path) -> None:
    records = [Query.from_dict({**GOOD, "qid": i, "extra_key": [i]}) for i in range(3)]
    for style in (FileStyle(), FileStyle(separators=(",", ":"), newline="\r\n", final_newline=True)):
        path = tmp_path / "out.jsonl"
        write_annotations(path, records, style)
        again = read_annotations(path)
        assert again.style == style
        assert dumps_annotations(again.records, again.style).encode() == path.read_bytes()
        assert again.records[1].extra == {"extra_key": [1]}


def test_charades_raw_matches_community_release(shared_data: Path) -> None:
    base = shared_data / "charades_sta"
    raw = read_charades_raw(base / "raw_vslnet/charades_sta_test.txt", base / "raw_vslnet/charades.json",
                            first_qid=12404)
    release = read_annotations(base / "charades_test_release.jsonl").records
    assert len(raw) == len(release) == 3720
    for ours, theirs in zip(raw, release, strict=True):
        assert (ours.qid, ours.vid, ours.query) == (theirs.qid, theirs.vid, theirs.query)
        assert ours.windows == theirs.windows
        assert ours.duration == theirs.duration


def test_charades_raw_errors(tmp_path: Path) -> None:
    txt = tmp_path / "raw.txt"
    txt.write_text("AAAAA 1.0 2.0##ok\nAAAAA 1.0##broken\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"raw.txt:2: qid 1: expected 'vid start end##sentence'"):
        read_charades_raw(txt, {"AAAAA": 10.0})
    txt.write_text("BBBBB 1.0 2.0##unknown video\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"raw.txt:1: qid 0: field 'vid'"):
        read_charades_raw(txt, {"AAAAA": 10.0})
    txt.write_text("AAAAA 12.0 14.0##starts after the end\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"start >= end"):
        read_charades_raw(txt, {"AAAAA": 10.0})
