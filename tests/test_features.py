"""Feature store: the per-file layout, deterministic writing, clear errors, the packed store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrbench.data.features import FeatureStore, PackedStore, open_store, pack_features
from mrbench.errors import MissingFeaturesError, MrbenchError
from mrbench.io import npz_bytes


def _tree(root: Path, n_videos: int = 6, seed: int = 0) -> tuple[FeatureStore, dict[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    store = FeatureStore(root)
    arrays: dict[str, dict[str, np.ndarray]] = {"slowfast_features": {}, "clip_features": {}}
    for i in range(n_videos):
        n_clips = 5 + i
        for feature_type, dim in (("slowfast_features", 8), ("clip_features", 4)):
            array = rng.standard_normal((n_clips, dim)).astype(np.float32)
            arrays[feature_type][f"vid{i}"] = array
            store.write_video(feature_type, f"vid{i}", array)
        store.write_text(i, rng.standard_normal((3 + i, 4)).astype(np.float32))
    return store, arrays


def test_layout_is_what_model_code_reads(tmp_path: Path) -> None:
    store, arrays = _tree(tmp_path)
    # exactly the paths and keys Moment-DETR/QD-DETR's loaders open
    with np.load(tmp_path / "slowfast_features" / "vid2.npz") as data:
        np.testing.assert_array_equal(data["features"], arrays["slowfast_features"]["vid2"])
    with np.load(tmp_path / "clip_text_features" / "qid3.npz") as data:
        assert data["last_hidden_state"].shape == (6, 4)
        pooled = data["pooler_output"]
        assert pooled.shape == (4,) and np.isclose(np.linalg.norm(pooled), 1.0)
    assert store.video_types() == ["clip_features", "slowfast_features"]
    loaded = store.load_video("vid4")
    np.testing.assert_array_equal(loaded["clip_features"], arrays["clip_features"]["vid4"])


def test_npy_files_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "clip_features").mkdir()
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "clip_features" / "v.npy", array)
    (tmp_path / "clip_text_features").mkdir()
    np.save(tmp_path / "clip_text_features" / "qid5.npy", array)
    store = FeatureStore(tmp_path)
    np.testing.assert_array_equal(store.load_video("v")["clip_features"], array)
    assert store.load_text(5)["pooler_output"].shape == (4,)


def test_writing_is_byte_deterministic(tmp_path: Path) -> None:
    array = np.ones((3, 2), dtype=np.float32)
    assert npz_bytes({"features": array}) == npz_bytes({"features": array.copy()})
    FeatureStore(tmp_path / "a").write_video("t", "v", array)
    FeatureStore(tmp_path / "b").write_video("t", "v", array)
    assert (tmp_path / "a/t/v.npz").read_bytes() == (tmp_path / "b/t/v.npz").read_bytes()


def test_missing_files_are_listed(tmp_path: Path) -> None:
    store, _ = _tree(tmp_path, n_videos=2)
    with pytest.raises(MissingFeaturesError) as info:
        store.check(["vid0", "vid9", "vid8"], qids=[0, 42])
    message = str(info.value)
    assert "vid9" in message and "vid8" in message and "qid42" in message and "vid0" not in message
    assert info.value.missing["slowfast_features"] == ["vid9", "vid8"]
    with pytest.raises(MissingFeaturesError, match="vid7"):
        store.load_video("vid7")


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "clip_features").mkdir()
    np.savez(tmp_path / "clip_features" / "v.npz", feats=np.zeros((2, 2)))
    with pytest.raises(MrbenchError, match="no key 'features' \\(keys: feats\\)"):
        FeatureStore(tmp_path).load_video("v")


@pytest.mark.parametrize("dtype", [None, "float16"])
def test_packed_store_reads_the_same_arrays(tmp_path: Path, dtype: str | None) -> None:
    store, arrays = _tree(tmp_path / "src")
    vids = [f"vid{i}" for i in range(6)]
    pack_features(tmp_path / "src", tmp_path / "packed", vids, qids=list(range(6)), dtype=dtype)
    packed = open_store(tmp_path / "packed")
    assert isinstance(packed, PackedStore)
    assert packed.video_types() == ["clip_features", "slowfast_features"]
    for vid in vids:
        for feature_type, by_vid in arrays.items():
            got = packed.load_video(vid)[feature_type]
            expected = by_vid[vid].astype(dtype) if dtype else by_vid[vid]
            np.testing.assert_array_equal(got, expected)
    for qid in range(6):
        for key, value in store.load_text(qid).items():
            np.testing.assert_allclose(packed.load_text(qid)[key], value, rtol=1e-3 if dtype else 0)
    with pytest.raises(MissingFeaturesError):
        packed.load_video("vid99")


def test_pack_refuses_missing_and_mismatched_inputs(tmp_path: Path) -> None:
    _tree(tmp_path / "src", n_videos=2)
    with pytest.raises(MissingFeaturesError, match="vid5"):
        pack_features(tmp_path / "src", tmp_path / "packed", ["vid0", "vid5"])
    FeatureStore(tmp_path / "src").write_video("clip_features", "vid1", np.zeros((3, 9), np.float32))
    with pytest.raises(MrbenchError, match="feature dims differ"):
        pack_features(tmp_path / "src", tmp_path / "packed", ["vid0", "vid1"])
    assert not (tmp_path / "packed" / "index.parquet").exists()
