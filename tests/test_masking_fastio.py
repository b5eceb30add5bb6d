"""The masking job's streaming feature writer gives exactly FeatureStore.write_video's bytes, and
its reader reads what numpy and mrbench write."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mrbench.data.features import FeatureStore
from mrbench.io import npz_bytes
from mrbench.masking.fastio import _parts_match_zipfile, read_features, read_shape, write_features

arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float16, np.float64, np.dtype(">f4"), np.int64, np.bool_]),
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
)


@settings(max_examples=40, deadline=None)
@given(array=arrays, fortran=st.booleans())
def test_same_bytes_as_write_video(tmp_path_factory: pytest.TempPathFactory, array: np.ndarray,
                                   fortran: bool) -> None:
    root = tmp_path_factory.mktemp("fio")
    array = np.asfortranarray(array) if fortran else array
    store = FeatureStore(root)
    (root / "t").mkdir()
    digest = write_features(root / "t" / "v.npz", array)
    data = (root / "t" / "v.npz").read_bytes()
    assert data == npz_bytes({"features": array})  # what write_video writes
    assert digest == hashlib.sha256(data).hexdigest()
    back = read_features(store, "t", "v")
    assert back.dtype == array.dtype and back.flags.writeable
    np.testing.assert_array_equal(back, array)
    assert not list((root / "t").glob(".*.tmp"))


def test_write_video_bytes(tmp_path: Path) -> None:
    array = np.random.default_rng(1).standard_normal((75, 16)).astype(np.float32)
    reference = FeatureStore(tmp_path).write_video("t", "ref", array).read_bytes()
    write_features(tmp_path / "t" / "v.npz", array)
    assert (tmp_path / "t" / "v.npz").read_bytes() == reference


def test_reads_other_writers(tmp_path: Path) -> None:
    array = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    (tmp_path / "t").mkdir()
    np.savez(tmp_path / "t" / "a.npz", other=np.ones(3), features=array)  # not the first member
    np.savez_compressed(tmp_path / "t" / "b.npz", features=array)  # compressed: general reader
    np.save(tmp_path / "t" / "c.npy", array)
    store = FeatureStore(tmp_path)
    for vid in "abc":
        np.testing.assert_array_equal(read_features(store, "t", vid), array)
        assert read_shape(store, "t", vid) == (7, 5)


def test_records_match_this_pythons_zipfile() -> None:
    # otherwise write_features falls back to npz_bytes (still the same bytes, only slower)
    assert _parts_match_zipfile()
