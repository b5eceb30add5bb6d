"""The masking job on small feature trees in the real layout, for the first 200 queries of real
annotation files (QVHighlights val at 2 s, Charades-STA test at 1 s, TACoS test at 2 s) and on a
dataset directory like ``mrbench synth`` writes."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.features import FeatureStore
from mrbench.data.schema import Query, read_annotations, write_annotations
from mrbench.errors import MissingFeaturesError, MrbenchError, ValidationError
from mrbench.io import staging_paths
from mrbench.masking import build, build_variant, source_from_dir, source_from_file, verify
from mrbench.masking.build import masked_vid, qid_hash
from mrbench.masking.ranges import masked_ranges
from mrbench.masking.variant import MANIFEST
from tests.conftest import require_shared

TYPES = {"slowfast_features": 6, "clip_features": 4}
REAL = {
    "qvhighlights": ("qvhighlights/highlight_val_release.jsonl", 2.0),
    "charades_sta": ("charades_sta/charades_test_release.jsonl", 1.0),
    "tacos": ("tacos/tacos_test_release.jsonl", 2.0),
}


def make_tree(root: Path, records: list[Query], clip_len: float, seed: int = 0) -> FeatureStore:
    """Random features for every video (ceil(duration / clip_len) clips) and query, real layout.

    Written with ``np.savez`` (no fsync per file, unlike ``FeatureStore.write_*``: faster tests).
    """
    rng = np.random.default_rng(seed)
    durations = {r.vid: float(r.duration) for r in records}
    for feature_type in (*TYPES, "clip_text_features"):
        (root / feature_type).mkdir(parents=True, exist_ok=True)
    for vid, duration in durations.items():
        n = math.ceil(duration / clip_len - 1e-9)
        for feature_type, dim in TYPES.items():
            features = (rng.standard_normal((n, dim)) * 3 + 1).astype(np.float32)
            np.savez(root / feature_type / f"{vid}.npz", features=features)
    for record in records:
        tokens = rng.standard_normal((3, 4)).astype(np.float32)
        np.savez(root / "clip_text_features" / f"qid{record.qid}.npz", last_hidden_state=tokens,
                 pooler_output=tokens.mean(0))
    return FeatureStore(root)


def real_subset(tmp: Path, dataset: str, n: int = 200) -> tuple[Path, Path, float]:
    """The first ``n`` queries of a real file (written to ``tmp``) and a feature tree for them."""
    relative, clip_len = REAL[dataset]
    annotations = read_annotations(require_shared("data", relative), require_windows=True)
    path = tmp / Path(relative).name
    write_annotations(path, annotations.records[:n], annotations.style)
    make_tree(tmp / "features", annotations.records[:n], clip_len)
    return path, tmp / "features", clip_len


@pytest.fixture(scope="module")
def qvh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """60 QVHighlights val queries (module-wide)."""
    return real_subset(tmp_path_factory.mktemp("qvh"), "qvhighlights", n=60)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (not following the text link), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and "clip_text_features" not in p.parts}


def load(path: Path) -> np.ndarray:
    with np.load(path) as data:
        return data["features"]


# --- real annotation files ---------------------------------------------------------------------
HAND = {  # hand-computed in test_masking_ranges.py
    "qvhighlights": {"5071": [[57, 69]], "3359": [[0, 2], [24, 38], [40, 47]], "1872": [[59, 75]],
                     "8737": [[0, 9]]},
    "charades_sta": {"12404": [[21, 31]]},
    "tacos": {"s30-d52_0": [[0, 7]], "s30-d52_4": [[20, 28]], "s30-d52_5": [[26, 47]]},
}


@pytest.mark.parametrize("dataset", list(REAL))
def test_real_splits(tmp_path: Path, dataset: str) -> None:
    path, features, clip_len = real_subset(tmp_path, dataset)
    source = source_from_file(path, clip_len, features, split="val", name=dataset)
    out = tmp_path / "masked"
    result = build_variant(source, out, seed=3)
    assert result.path == out and result.queries == 200
    assert not (tmp_path / "masked.partial").exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["clip_len"] == clip_len and manifest["margin"] == 3.0 and manifest["seed"] == 3
    assert manifest["strategy"] == "noise" and manifest["split"] == "val"
    for key, ranges in HAND[dataset].items():
        assert manifest["queries"][key]["masked_clips"] == ranges
        assert manifest["queries"][key]["masked_windows"] == [[a * clip_len, b * clip_len] for a, b in ranges]

    store = FeatureStore(features)
    original = read_annotations(path)
    masked = read_annotations(out / "annotations" / "val.jsonl")
    assert [r.qid for r in masked] == [r.qid for r in original]
    for before, after in zip(original, masked, strict=True):
        entry = manifest["queries"][str(before.qid)]
        assert entry["qid"] == before.qid
        assert after.vid == entry["vid"] == f"{before.vid}__mask_q{before.qid}"
        assert after.windows == before.windows and after.duration == before.duration
        source_arrays = store.load_video(before.vid)
        n = entry["n_clips"]
        assert [list(r) for r in masked_ranges(before.windows, clip_len, 3.0, n)] == entry["masked_clips"]
        mask = np.zeros(n, bool)
        for a, b in entry["masked_clips"]:
            mask[a:b] = True
        for feature_type in TYPES:
            got = load(out / "features" / feature_type / f"{after.vid}.npz")
            src = source_arrays[feature_type]
            assert got.shape == src.shape and got.dtype == np.float32
            np.testing.assert_array_equal(got[~mask], src[~mask])
            noise = got[mask]
            assert np.all(noise != src[mask])  # every value redrawn
            assert noise.min() >= src.min() and noise.max() <= src.max()  # the video's own range
    # the text features are linked, not copied
    link = out / "features" / "clip_text_features"
    assert link.is_symlink() and link.resolve() == (features / "clip_text_features").resolve()
    info = DatasetDir(out).info()
    assert info.kind == "masked" and info.clip_len == clip_len and info.splits == ["val"]
    assert info.video_features == TYPES and info.text_features == {"clip_text_features": 4}
    report = verify(out)[0]
    assert report.queries == 200 and report.clips_masked == sum(
        b - a for e in manifest["queries"].values() for a, b in e["masked_clips"])
    assert 0 < report.share_min <= report.share_mean <= report.share_max <= 1


def test_several_queries_on_one_video_get_their_own_copy(tmp_path: Path, qvh: tuple) -> None:
    path, features, clip_len = qvh
    first = read_annotations(path).records[0]
    vid = first.vid
    mine = [first, dataclasses.replace(first, qid=999999, windows=[[0, 10]])]
    FeatureStore(features).write_text(999999, np.ones((2, 4), np.float32))
    write_annotations(tmp_path / "one.jsonl", mine)
    build_variant(source_from_file(tmp_path / "one.jsonl", clip_len, features), tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out/features/clip_features").iterdir())
    assert files == sorted(f"{masked_vid(vid, r.qid)}.npz" for r in mine)


# --- determinism, workers, resume ------------------------------------------------------------
def test_same_seed_same_bytes_any_worker_count(tmp_path: Path, qvh: tuple) -> None:
    source = source_from_file(qvh[0], qvh[2], qvh[1], split="val")
    build_variant(source, tmp_path / "a", seed=0, workers=1)
    build_variant(source, tmp_path / "b", seed=0, workers=2)
    build_variant(source, tmp_path / "c", seed=1, workers=1)
    a, b, c = (tree_bytes(tmp_path / name) for name in "abc")
    assert len(a) == 2 * 60 + 3  # two sources per query + annotations, dataset.json, manifest
    assert a == b
    features = [k for k in a if k.startswith("features/")]
    assert all(a[k] != c[k] for k in features)  # another seed, other noise in every file


def test_noise_streams_are_keyed_by_qid_not_position(tmp_path: Path, qvh: tuple) -> None:
    path, features, clip_len = qvh
    records = read_annotations(path).records[:20]
    write_annotations(tmp_path / "all.jsonl", records)
    write_annotations(tmp_path / "rev.jsonl", records[::-1][:10])
    build_variant(source_from_file(tmp_path / "all.jsonl", clip_len, features), tmp_path / "all")
    build_variant(source_from_file(tmp_path / "rev.jsonl", clip_len, features), tmp_path / "rev")
    rev = tree_bytes(tmp_path / "rev")
    full = tree_bytes(tmp_path / "all")
    shared = [k for k in rev if k.startswith("features/")]
    assert len(shared) == 20 and all(rev[k] == full[k] for k in shared)
    assert qid_hash(5) != qid_hash("5")


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_gives_the_bytes_of_an_uninterrupted_run(tmp_path: Path, qvh: tuple, workers: int) -> None:
    source = source_from_file(qvh[0], qvh[2], qvh[1], split="val")
    build_variant(source, tmp_path / "full", seed=7)
    done = []

    def stop_after_17(key: str) -> None:
        done.append(key)
        if len(done) == 17:
            raise Interrupt

    out = tmp_path / "out"
    with pytest.raises(Interrupt):
        build_variant(source, out, seed=7, workers=workers, on_query=stop_after_17)
    partial, _ = staging_paths(out)  # built beside --out, swapped in when complete
    assert partial.is_dir() and not out.exists()
    written = list(partial.glob("features/clip_features/*.npz"))
    assert 17 <= len(written) < 60
    (partial / "features/clip_features/.x.npz.123.tmp").write_bytes(b"half")  # a killed write
    with pytest.raises(MrbenchError, match="--resume"):
        build_variant(source, out, seed=7)
    with pytest.raises(MrbenchError, match="other settings"):
        build_variant(source, out, seed=8, resume=True)
    result = build_variant(source, out, seed=7, workers=workers, resume=True)
    assert result.resumed >= 17
    assert tree_bytes(out) == tree_bytes(tmp_path / "full")
    verify(out)
    # resuming a finished variant is a no-op; rebuilding over it is refused
    assert build_variant(source, out, seed=7, resume=True).queries == 60
    with pytest.raises(MrbenchError, match="already exists"):
        build_variant(source, out, seed=7)
    # ... but only with the settings it was made with
    with pytest.raises(MrbenchError, match="differing: strategy, margin"):
        build_variant(source, out, seed=7, strategy="zero", margin=1.0, resume=True)
    with pytest.raises(MrbenchError, match="differing: seed"):
        build_variant(source, out, seed=8, resume=True)
    # force builds the other settings beside it and swaps them in
    assert build_variant(source, out, seed=8, force=True).seed == 8
    assert json.loads((out / "manifest.json").read_text())["seed"] == 8 and not partial.exists()


def test_several_seeds(tmp_path: Path, small: tuple) -> None:
    source = source_from_file(small[0], 2.0, small[1], split="val")
    results = build(source, tmp_path / "out", seeds=[0, 1, 2], strategy="zero")
    assert [r.path.name for r in results] == ["seed0", "seed1", "seed2"]
    reports = verify(tmp_path / "out")
    assert [r.seed for r in reports] == [0, 1, 2]
    with pytest.raises(MrbenchError, match="duplicate seeds"):
        build(source, tmp_path / "again", seeds=[1, 1])


# --- bad input -------------------------------------------------------------------------------
def test_missing_feature_files_are_listed(tmp_path: Path, qvh: tuple) -> None:
    path, features, clip_len = qvh
    copy = tmp_path / "features"
    shutil.copytree(features, copy)
    records = read_annotations(path).records
    gone = [records[0].vid, records[5].vid]
    for vid in gone:
        (copy / "slowfast_features" / f"{vid}.npz").unlink()
    with pytest.raises(MissingFeaturesError) as info:
        build_variant(source_from_file(path, clip_len, copy), tmp_path / "out")
    message = str(info.value)
    assert "2 feature file(s) missing" in message and all(v in message for v in gone)
    assert not (tmp_path / "out.partial").exists()


def test_sources_with_different_clip_counts_are_truncated(tmp_path: Path) -> None:
    records = [Query(qid=1, query="q", vid="v1", duration=40.0, windows=[[10.0, 14.0]]),
               Query(qid=2, query="q", vid="v2", duration=40.0, windows=[[28.0, 34.0]])]
    write_annotations(tmp_path / "a.jsonl", records)
    store = make_tree(tmp_path / "f", records, 2.0)
    short = store.load_video("v2")["clip_features"][:17]
    store.write_video("clip_features", "v2", short)
    with pytest.warns(UserWarning, match=r"1 video\(s\) have feature sources with different clip counts.*v2 "
                                         r"\(clip_features 17, slowfast_features 20\)"):
        build_variant(source_from_file(tmp_path / "a.jsonl", 2.0, tmp_path / "f"), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["queries"]["2"]["n_clips"] == 17
    assert manifest["queries"]["2"]["masked_clips"] == [[12, 17]]  # floor(25/2), floor(37/2) -> 17
    for feature_type in TYPES:
        assert load(tmp_path / "out/features" / feature_type / "v2__mask_q2.npz").shape[0] == 17
    verify(tmp_path / "out")


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_feature_file(tmp_path: Path, workers: int) -> None:
    records = [Query(qid=i, query="q", vid=f"v{i}", duration=20.0, windows=[[2.0, 6.0]]) for i in range(3)]
    write_annotations(tmp_path / "a.jsonl", records)
    store = make_tree(tmp_path / "f", records, 2.0)
    path = store.video_path("clip_features", "v1")
    path.write_bytes(path.read_bytes()[:300])  # truncated (the headers survive, the data not)
    with pytest.raises(MrbenchError, match=r"v1.npz: cannot read the features"):
        build_variant(source_from_file(tmp_path / "a.jsonl", 2.0, tmp_path / "f"), tmp_path / "out",
                      workers=workers)
    path.write_bytes(b"PK\x03\x04 not a zip")  # even the headers are gone: fails while planning
    with pytest.raises(MrbenchError, match=r"v1.npz: cannot read the features"):
        build_variant(source_from_file(tmp_path / "a.jsonl", 2.0, tmp_path / "f"), tmp_path / "out2",
                      workers=workers)


def test_windows_beyond_the_video_are_an_error(tmp_path: Path) -> None:
    records = [Query(qid="a", query="q", vid="v1", duration=150.0, windows=[[100.0, 120.0]])]
    write_annotations(tmp_path / "a.jsonl", records)
    store = make_tree(tmp_path / "f", records, 2.0)
    store.write_video("clip_features", "v1", np.ones((40, 4), np.float32))
    store.write_video("slowfast_features", "v1", np.ones((40, 6), np.float32))
    with pytest.raises(ValidationError, match=r"qid 'a'.*window \[100.0, 120.0\] lies beyond video 'v1'"):
        build_variant(source_from_file(tmp_path / "a.jsonl", 2.0, tmp_path / "f"), tmp_path / "out")
    # the same file with the wrong clip length (1 s instead of 2 s) fails the same way
    make_tree(tmp_path / "g", records, 2.0)
    with pytest.raises(ValidationError, match="wrong --clip-len"):
        build_variant(source_from_file(tmp_path / "a.jsonl", 0.5, tmp_path / "g"), tmp_path / "out")


def test_queries_without_ground_truth_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"qid": 1, "query": "q", "duration": 10, "vid": "v"}\n')
    make_tree(tmp_path / "f", [Query(qid=1, query="q", vid="v", duration=10)], 1.0)
    with pytest.raises(ValidationError, match="relevant_windows"):
        build_variant(source_from_file(tmp_path / "a.jsonl", 1.0, tmp_path / "f"), tmp_path / "out")


# --- the other strategies --------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """40 QVHighlights val queries (module-wide)."""
    tmp = tmp_path_factory.mktemp("small")
    path, features, _ = real_subset(tmp, "qvhighlights", n=40)
    return path, features


def _masks(entry: dict) -> np.ndarray:
    mask = np.zeros(entry["n_clips"], bool)
    for a, b in entry["masked_clips"]:
        mask[a:b] = True
    return mask


def test_zero_and_mean(tmp_path: Path, small: tuple) -> None:
    path, features = small
    source = source_from_file(path, 2.0, features, split="val")
    build_variant(source, tmp_path / "zero", strategy="zero")
    build_variant(source, tmp_path / "mean", strategy="mean", workers=2)
    build_variant(source, tmp_path / "mean1", strategy="mean", workers=1)
    assert tree_bytes(tmp_path / "mean") == tree_bytes(tmp_path / "mean1")
    store = FeatureStore(features)
    vids = sorted({r.vid for r in source.load().records})
    means = {t: np.concatenate([store.load_video(v)[t] for v in vids]).astype(np.float64).mean(0) for t in TYPES}
    manifest = json.loads((tmp_path / "mean" / MANIFEST).read_text())
    for entry in list(manifest["queries"].values())[:10]:
        mask = _masks(entry)
        for feature_type in TYPES:
            zero = load(tmp_path / "zero/features" / feature_type / f"{entry['vid']}.npz")
            assert not zero[mask].any()
            mean = load(tmp_path / "mean/features" / feature_type / f"{entry['vid']}.npz")
            np.testing.assert_allclose(mean[mask], np.broadcast_to(means[feature_type], mean[mask].shape), rtol=1e-6)
            np.testing.assert_array_equal(mean[~mask], store.load_video(entry["source_vid"])[feature_type][~mask])
    verify(tmp_path / "zero")
    verify(tmp_path / "mean")


def test_swap(tmp_path: Path, small: tuple) -> None:
    path, features = small
    source = source_from_file(path, 2.0, features, split="val")
    build_variant(source, tmp_path / "a", strategy="swap", seed=4)
    build_variant(source, tmp_path / "b", strategy="swap", seed=4, workers=2)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    store = FeatureStore(features)
    manifest = json.loads((tmp_path / "a" / MANIFEST).read_text())
    donors = set()
    for entry in manifest["queries"].values():
        assert entry["donor_vid"] != entry["source_vid"]
        donors.add(entry["donor_vid"])
        donor = store.load_video(entry["donor_vid"])["slowfast_features"]
        got = load(tmp_path / "a/features/slowfast_features" / f"{entry['vid']}.npz")
        for (a, b), offset in zip(entry["masked_clips"], entry["donor_offsets"], strict=True):
            np.testing.assert_array_equal(got[a:b], donor[(offset + np.arange(b - a)) % len(donor)])
    assert len(donors) > 10  # seeded choice, not one fixed donor
    verify(tmp_path / "a")


def test_recontext_moves_the_moment_and_its_labels(tmp_path: Path, small: tuple) -> None:
    path, features = small
    source = source_from_file(path, 2.0, features, split="val")
    build_variant(source, tmp_path / "out", strategy="recontext", seed=2)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    original = {r.qid: r for r in read_annotations(path)}
    moved = {r.qid: r for r in read_annotations(tmp_path / "out/annotations/val.jsonl")}
    durations = {r.vid: r.duration for r in original.values()}
    store = FeatureStore(features)
    positions = set()
    for qid, before in original.items():
        entry = manifest["queries"][str(qid)]
        after = moved[qid]
        (start, end), = entry["masked_clips"]
        first, last = entry["moment_clips"]
        assert end - start == last - first and entry["context_vid"] != before.vid
        positions.add(start)
        shift = start - first
        assert after.duration == durations[entry["context_vid"]]
        assert type(after.duration) is type(before.duration)  # 150 stays 150, not 150.0
        assert after.windows == [[w0 + 2 * shift, w1 + 2 * shift] for w0, w1 in before.windows]
        assert all(0 <= w0 < w1 <= after.duration for w0, w1 in after.windows)
        assert after.relevant_clip_ids == [c + shift for c in before.relevant_clip_ids]
        assert after.saliency_scores == before.saliency_scores
        context = store.load_video(entry["context_vid"])["clip_features"]
        got = load(tmp_path / "out/features/clip_features" / f"{entry['vid']}.npz")
        expected = context.copy()
        expected[start:end] = store.load_video(before.vid)["clip_features"][first:last]
        np.testing.assert_array_equal(got, expected)
        # QVHighlights windows are integers and stay integers
        assert all(isinstance(v, int) for w in after.windows for v in w)
    assert len(positions) > 10
    verify(tmp_path / "out")


# --- dataset directories (mrbench synth output) ------------------------------------------------
def make_dataset_dir(root: Path, splits: tuple[str, ...] = ("train", "val", "val_ood", "test_ood")) -> DatasetDir:
    """A small dataset directory in the contract layout (1 s clips, 30 s videos)."""
    rng = np.random.default_rng(5)
    directory = DatasetDir(root)
    records_all = []
    for s, split in enumerate(splits):
        records = []
        for i in range(12):
            start = float(rng.integers(0, 24))
            records.append(Query(qid=100 * s + i, query=f"query {i}", vid=f"syn{s}_{i // 2}", duration=30.0,
                                 windows=[[start, start + float(rng.integers(2, 7))]]))
        write_annotations(directory.annotation_path(split), records)
        records_all += records
    make_tree(directory.features_root, records_all, 1.0)
    directory.write_info(DatasetInfo(name="synth", clip_len=1.0, video_features=dict(TYPES),
                                     text_features={"clip_text_features": 4}, splits=list(splits),
                                     max_clips=30, kind="synthetic"))
    return directory


def test_dataset_directory_source(tmp_path: Path) -> None:
    directory = make_dataset_dir(tmp_path / "synth")
    for split in directory.splits():
        source = source_from_dir(directory.root, split)
        assert source.clip_len == 1.0 and source.dataset == "synth" and source.provenance == "folder"
        build_variant(source, tmp_path / split, seed=1)
        report = verify(tmp_path / split)[0]
        assert report.queries == 12
        info = DatasetDir(tmp_path / split).info()
        assert info.kind == "masked" and info.max_clips == 30 and info.splits == [split]
        manifest = json.loads((tmp_path / split / MANIFEST).read_text())
        for record in directory.load(split):
            (w0, w1), = record.windows
            expected = [[max(0, math.floor(w0 - 3)), min(30, math.floor(w1 + 3))]]
            assert manifest["queries"][str(record.qid)]["masked_clips"] == expected


# --- verification catches problems ------------------------------------------------------------
def test_verify_catches_tampering(tmp_path: Path, small: tuple) -> None:
    path, features = small
    out = tmp_path / "out"
    build_variant(source_from_file(path, 2.0, features, split="val"), out)
    manifest = json.loads((out / MANIFEST).read_text())
    entry = next(iter(manifest["queries"].values()))
    target = out / "features/clip_features" / f"{entry['vid']}.npz"

    # 1. bytes changed: checksum mismatch
    original_bytes = target.read_bytes()
    FeatureStore(out / "features").write_video("clip_features", entry["vid"], load(target) + 1)
    with pytest.raises(MrbenchError, match="sha256 differs"):
        verify(out)
    # 2. the source copied back (manifest updated to match): masked clips equal the source
    source = FeatureStore(features).load_video(entry["source_vid"])["clip_features"]
    FeatureStore(out / "features").write_video("clip_features", entry["vid"], source)
    from mrbench.io import sha256_file

    manifest["files"][f"features/clip_features/{entry['vid']}.npz"] = sha256_file(target)
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(MrbenchError, match="masked clips .* equal the source"):
        verify(out)
    # 3. an unmasked clip changed
    broken = load(out / "features/slowfast_features" / f"{entry['vid']}.npz")
    unmasked = int(np.flatnonzero(~_masks(entry))[0])
    broken[unmasked] += 1
    target.write_bytes(original_bytes)
    FeatureStore(out / "features").write_video("slowfast_features", entry["vid"], broken)
    manifest["files"][f"features/clip_features/{entry['vid']}.npz"] = sha256_file(target)
    manifest["files"][f"features/slowfast_features/{entry['vid']}.npz"] = sha256_file(
        out / "features/slowfast_features" / f"{entry['vid']}.npz")
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(MrbenchError, match=rf"unmasked clips \[{unmasked}\] differ"):
        verify(out)
    # 4. a stray file
    (out / "features/clip_features/extra.npz").write_bytes(b"x")
    with pytest.raises(MrbenchError, match="extra.npz is not listed"):
        verify(out)


def test_masking_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, mrbench.masking, mrbench.cli.mask, mrbench.masking.verify; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_no_warning_for_consistent_sources(tmp_path: Path, small: tuple) -> None:
    path, features = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_variant(source_from_file(path, 2.0, features, split="val"), tmp_path / "out")
