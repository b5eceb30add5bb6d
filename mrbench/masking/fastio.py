"""Streaming reads and writes of per-video feature files for the masking job.

:func:`write_features` produces exactly the bytes of :func:`mrbench.io.npz_bytes` (what
``FeatureStore.write_video`` writes), but streams the array straight into the file instead of
building the archive in memory, and renames a temporary file into place without a per-file
fsync. :func:`read_features` reads an uncompressed ``.npz`` member with one ``np.fromfile`` at
its offset. Both fall back to the general readers and writers for anything unusual.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from mrbench.data.features import FeatureStore
from mrbench.io import npz_bytes

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # as mrbench.io writes it
_MEMBER = "features.npy"
_LOCAL_HEADER = 30  # fixed part of a zip local file header


def read_features(store: FeatureStore, feature_type: str, vid: str) -> np.ndarray:
    """``[n_clips, dim]`` of one video (a writable array)."""
    path = store.video_path(feature_type, vid)
    if path is None:
        return store.load_video(vid, [feature_type])[feature_type]
    if path.suffix == ".npz":
        array = _read_stored_member(path)
        if array is not None:
            return array
    return np.array(store.load_video(vid, [feature_type])[feature_type])


def _member_offset(handle: io.BufferedReader) -> int | None:
    """Offset of the uncompressed ``features.npy`` data, or None (then use the general reader).

    The local header at offset 0 is tried first (every file ``np.savez`` or mrbench writes with
    this key starts with it); otherwise the central directory is consulted.
    """
    local = handle.read(_LOCAL_HEADER + len(_MEMBER))
    if (local[:4] == b"PK\x03\x04" and local[8:10] == b"\x00\x00"
            and local[_LOCAL_HEADER:] == _MEMBER.encode()
            and int.from_bytes(local[26:28], "little") == len(_MEMBER)):
        return _LOCAL_HEADER + len(_MEMBER) + int.from_bytes(local[28:30], "little")
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as zf:
            info = zf.getinfo(_MEMBER)
    except (zipfile.BadZipFile, KeyError):
        return None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    handle.seek(info.header_offset)
    local = handle.read(_LOCAL_HEADER)
    if local[:4] != b"PK\x03\x04":
        return None
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    return info.header_offset + _LOCAL_HEADER + name_len + extra_len


def _read_stored_member(path: Path) -> np.ndarray | None:
    with open(path, "rb") as handle:
        offset = _member_offset(handle)
        if offset is None:
            return None
        handle.seek(offset)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        if dtype.hasobject:
            return None
        count = int(np.prod(shape))
        array = np.fromfile(handle, dtype=dtype, count=count)
    if array.size != count:
        return None
    return array.reshape(shape, order="F" if fortran else "C")


def _npy_header(array: np.ndarray) -> bytes | None:
    """The .npy header ``np.save`` writes for ``array`` (format 1.0 only)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
    return buffer.getvalue()


def _sha256(handle: io.BufferedIOBase, chunk: int = 1 << 20) -> str:
    """sha256 of the rest of an open file, read into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    while size := handle.readinto(buffer):
        digest.update(view[:size])
    return digest.hexdigest()


def write_features(path: Path, features: np.ndarray) -> str:
    """Write ``<path>`` = ``npz_bytes({"features": features})``; returns its sha256.

    A temporary file is renamed into place, so an interrupted run leaves only whole files (what
    resuming relies on). There is no per-file fsync: it would cost about half the job's time;
    a file lost to a power cut is caught by ``mrbench mask verify``.
    """
    array = np.ascontiguousarray(features)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            header = _npy_header(array)
        except ValueError:  # header too large for format 1.0
            header = None
        with open(tmp, "w+b") as handle:
            if header is None or array.dtype.hasobject:
                handle.write(npz_bytes({"features": array}))
            else:
                with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                    info = zipfile.ZipInfo(_MEMBER, date_time=_ZIP_EPOCH)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_STORED
                    info.file_size = len(header) + array.nbytes
                    with zf.open(info, "w") as member:
                        member.write(header)
                        member.write(array.reshape(-1).view(np.uint8).data)
            handle.flush()
            handle.seek(0)
            digest = _sha256(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest
