"""The Variant type: masked variants found in natural seed order, and manifest.json validated in
one place (errors name the file and the field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrbench.errors import MrbenchError, ValidationError
from mrbench.masking.variant import MANIFEST, Variant, natural_key, read_manifest, seed_dirs

QUERY = {"qid": 1, "vid": "v__mask_q1", "source_vid": "v", "n_clips": 10, "masked_clips": [[2, 5]],
         "masked_windows": [[4.0, 10.0]]}
MANIFEST_DATA = {"mrbench_version": "0", "source": {"features": "/f"}, "split": "val", "strategy": "noise",
                 "margin": 3.0, "seed": 0, "clip_len": 2.0, "types": ["clip_features"],
                 "queries": {"1": QUERY}, "files": {}}


def write(folder: Path, manifest: object = MANIFEST_DATA) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return folder


def test_seed_folders_in_natural_order(tmp_path: Path) -> None:
    """seed2 before seed10 (a plain sort puts seed10 first); folders without a manifest are skipped."""
    for seed in (10, 2, 1, 0):
        write(tmp_path / "out" / f"seed{seed}")
    (tmp_path / "out" / "seed3").mkdir()
    found = Variant.find(tmp_path / "out")
    assert [v.path.name for v in found] == ["seed0", "seed1", "seed2", "seed10"]
    assert sorted(["seed10", "seed2"], key=natural_key) == ["seed2", "seed10"]
    assert seed_dirs(tmp_path / "out", [2, 10]) == [tmp_path / "out" / "seed2", tmp_path / "out" / "seed10"]
    assert seed_dirs(tmp_path / "out", [7]) == [tmp_path / "out"]


def test_a_folder_with_a_manifest_is_one_variant(tmp_path: Path) -> None:
    write(tmp_path / "v")
    write(tmp_path / "v" / "seed1")  # ignored: the folder itself is the variant
    assert Variant.find(tmp_path / "v") == [Variant(tmp_path / "v")]
    write(tmp_path / "w" / "seed10")
    write(tmp_path / "w" / "seed9")
    assert [v.path.name for v in Variant.find_all([tmp_path / "w", tmp_path / "v"])] == ["seed9", "seed10", "v"]


def test_no_variant_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MrbenchError, match=r"is not a masked variant \(no manifest.json, no seed\*/manifest.json\)"):
        Variant.find(tmp_path)


def test_variant_reads_split_annotations_and_masked_windows(tmp_path: Path) -> None:
    variant = Variant(write(tmp_path / "v"))
    assert variant.split == "val" and variant.manifest["seed"] == 0
    with pytest.raises(MrbenchError, match="has no annotation file"):
        _ = variant.annotations
    (tmp_path / "v" / "annotations").mkdir()
    (tmp_path / "v" / "annotations" / "val.jsonl").write_text("")
    assert variant.annotations == tmp_path / "v" / "annotations" / "val.jsonl"
    assert variant.masked_windows(1) == [[4.0, 10.0]]
    with pytest.raises(ValidationError) as missing:
        variant.masked_windows(2)
    assert missing.value.file == str(variant.manifest_path) and missing.value.qid == 2
    assert missing.value.field == "queries"


MUTATIONS = [
    ("not JSON", "{", None, "invalid JSON"),
    ("a list", [1], None, "expected a JSON object"),
    ("split escapes", {"split": "../../x"}, "split", "plain name"),
    ("strategy unknown", {"strategy": "blur"}, "strategy", "must be one of"),
    ("margin negative", {"margin": -1}, "margin", ">= 0"),
    ("clip_len zero", {"clip_len": 0}, "clip_len", "seconds in"),
    ("seed a boolean", {"seed": True}, "seed", "non-negative integer"),
    ("types escape", {"types": ["../x"]}, "types", "plain name"),
    ("file escapes", {"files": {"../../victim.txt": "0" * 64}}, "files", "not '.' or '..'"),
    ("queries a list", {"queries": [1]}, "queries", "must be an object of queries"),
    ("vid escapes", {"queries": {"1": {**QUERY, "vid": "../v"}}}, "queries", "vid must be a plain name"),
    ("n_clips huge", {"queries": {"1": {**QUERY, "n_clips": 10**12}}}, "queries", "n_clips must be an integer"),
    ("range outside", {"queries": {"1": {**QUERY, "masked_clips": [[0, 11]]}}}, "queries", "clip ranges within"),
    ("windows not pairs", {"queries": {"1": {**QUERY, "masked_windows": [[1.0]]}}}, "queries", "[start, end]"),
]


@pytest.mark.parametrize(("case", "change", "field", "words"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_manifest_errors_name_the_file_and_the_field(tmp_path: Path, case: str, change: object,
                                                     field: str | None, words: str) -> None:
    manifest = change if not isinstance(change, dict) else {**MANIFEST_DATA, **change}
    folder = write(tmp_path / "v", manifest)
    with pytest.raises(ValidationError) as error:
        read_manifest(folder)
    assert error.value.file == str(folder / MANIFEST) and error.value.field == field
    assert words in str(error.value)


def test_a_complete_manifest_needs_every_field_a_scoring_one_only_queries(tmp_path: Path) -> None:
    """`mask verify` and `mask --resume` read complete manifests; scoring reads the queries' masked
    windows (a hand-made manifest with only those is enough), each field present still checked."""
    folder = write(tmp_path / "v", {"split": "val", "queries": {"1": {"masked_windows": [[0.0, 2.0]]}}})
    with pytest.raises(ValidationError, match="missing keys source, strategy") as error:
        read_manifest(folder)
    assert error.value.field == "source"
    assert read_manifest(folder, complete=False)["split"] == "val"
    assert Variant(folder).masked_windows(1) == [[0.0, 2.0]]
    write(folder, {"split": "../x", "queries": {}})
    with pytest.raises(ValidationError, match="split"):
        read_manifest(folder, complete=False)
    write(folder, {"split": "val"})
    with pytest.raises(ValidationError, match="missing field") as error:
        read_manifest(folder, complete=False)
    assert error.value.field == "queries"
