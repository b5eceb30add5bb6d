"""Streaming reads and writes of per-video feature files for the masking job.

:func:`write_features` produces exactly the bytes of :func:`mrbench.io.npz_bytes` (what
``FeatureStore.write_video`` writes), but writes the zip records around the array's own memory
instead of building the archive in memory, hashes it on the way, and renames a temporary file
into place without a per-file fsync. (It checks once per process that its records equal
:mod:`zipfile`'s, and uses :func:`npz_bytes` otherwise.) :func:`read_features` reads an
uncompressed ``.npz`` member with one ``np.fromfile`` at its offset. Both fall back to the
general readers and writers for anything unusual.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mrbench.data.features import FeatureStore, array_shape
from mrbench.errors import MrbenchError
from mrbench.io import npz_bytes

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # as mrbench.io writes it
_MEMBER = "features.npy"
_LOCAL_HEADER = 30  # fixed part of a zip local file header


def read_features(store: FeatureStore, feature_type: str, vid: str) -> np.ndarray:
    """``[n_clips, dim]`` of one video (a writable array); unreadable files are a MrbenchError."""
    path = os.path.join(store.root, feature_type, f"{vid}.npz")
    try:
        array = _read_stored_member(path)
        if array is not None:
            return array
        return np.array(store.load_video(vid, [feature_type])[feature_type])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        found = store.video_path(feature_type, vid) or path
        raise MrbenchError(f"{found}: cannot read the features ({type(exc).__name__}: {exc})") from None


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


def _open_member(handle: io.BufferedReader) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """Position ``handle`` at the array data; (shape, fortran order, dtype), or None."""
    offset = _member_offset(handle)
    if offset is None:
        return None
    handle.seek(offset)
    start = handle.read(12)  # magic (6), version (2), header length (2 or 4)
    if len(start) < 10 or start[:6] != b"\x93NUMPY" or start[6:8] not in (b"\x01\x00", b"\x02\x00"):
        return None
    size_bytes = 2 if start[6] == 1 else 4
    size = int.from_bytes(start[8 : 8 + size_bytes], "little")
    handle.seek(offset + 8 + size_bytes)
    header = handle.read(size)
    found = _parse_header(start[:8 + size_bytes] + header)
    return None if found is None or found[2].hasobject else found


@functools.lru_cache(maxsize=256)
def _parse_header(raw: bytes) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """Parse a .npy header (cached: all videos of one shape share it)."""
    buffer = io.BytesIO(raw)
    version = np.lib.format.read_magic(buffer)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
    return tuple(shape), fortran, dtype


def _read_stored_member(path: str) -> np.ndarray | None:
    """The array of an uncompressed ``.npz``; None if absent or unusual (general reader then)."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        found = _open_member(handle)
        if found is None:
            return None
        shape, fortran, dtype = found
        count = int(np.prod(shape))
        if count * dtype.itemsize > os.fstat(handle.fileno()).st_size - handle.tell():
            return None  # a header that claims more than the file holds: the checked general reader
        array = np.fromfile(handle, dtype=dtype, count=count)
    if array.size != count:
        return None
    return array.reshape(shape, order="F" if fortran else "C")


def read_shape(store: FeatureStore, feature_type: str, vid: str) -> tuple[int, ...]:
    """Shape of one video's features, from the file's headers only."""
    path = os.path.join(store.root, feature_type, f"{vid}.npz")
    try:
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                found = _open_member(handle)
            if found is not None:
                return found[0]
        return array_shape(store.video_path(feature_type, vid), "features")[0]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        found_path = store.video_path(feature_type, vid) or path
        raise MrbenchError(f"{found_path}: cannot read the features ({type(exc).__name__}: {exc})") from None


def _npy_header(array: np.ndarray) -> bytes:
    """The .npy header ``np.save`` writes for ``array`` (format 1.0 only; ValueError otherwise)."""
    return _header_for(array.shape, array.dtype, array.flags.f_contiguous and not array.flags.c_contiguous)


@functools.lru_cache(maxsize=256)
def _header_for(shape: tuple[int, ...], dtype: np.dtype, fortran: bool) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"shape": shape, "fortran_order": fortran, "descr": np.lib.format.dtype_to_descr(dtype)})
    return buffer.getvalue()


def _zip_parts(header: bytes, data: memoryview) -> tuple[bytes, bytes]:
    """The bytes before and after the array data of a one-member, uncompressed ``.npz``,
    field for field as :mod:`zipfile` writes them for :func:`mrbench.io.npz_bytes`."""
    name = _MEMBER.encode()
    size = len(header) + data.nbytes
    crc = zlib.crc32(data, zlib.crc32(header))
    date = (_ZIP_EPOCH[0] - 1980) << 9 | _ZIP_EPOCH[1] << 5 | _ZIP_EPOCH[2]
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, date, crc, size, size, len(name), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", _CREATE_VERSION, 20, 0, 0, 0, date, crc, size, size,
                          len(name), 0, 0, 0, 0, 0o644 << 16, 0) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(name) + size, 0)
    return local + name + header, central + end


_CREATE_VERSION = 20 | (0 if os.name == "nt" else 3) << 8  # zipfile: version 2.0, made on unix


@functools.cache
def _parts_match_zipfile() -> bool:
    """Whether :func:`_zip_parts` reproduces this Python's zipfile byte for byte."""
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = array.reshape(-1).view(np.uint8).data
    before, after = _zip_parts(_npy_header(array), data)
    return before + bytes(data) + after == npz_bytes({"features": array})


def write_features(path: Path, features: np.ndarray) -> str:
    """Write ``<path>`` = ``npz_bytes({"features": features})``; returns its sha256.

    The archive is written around the array's own memory (no copy in between) and hashed on
    the way. A temporary file is renamed into place, so an interrupted run leaves only whole
    files (what resuming relies on). There is no per-file fsync: it would cost about half the
    job's time; a file lost to a power cut is caught by ``mrbench mask verify``.
    """
    array = np.ascontiguousarray(features)
    try:
        header = _npy_header(array)
    except ValueError:  # a header too large for format 1.0
        header = None
    if header is None or array.dtype.hasobject or array.nbytes > _MAX_PLAIN or not _parts_match_zipfile():
        pieces = [npz_bytes({"features": array})]
    else:
        data = array.reshape(-1).view(np.uint8).data
        before, after = _zip_parts(header, data)
        pieces = [before, data, after]
    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), "wb") as handle:
            for piece in pieces:
                digest.update(piece)
                handle.write(piece)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


_MAX_PLAIN = 1 << 31  # larger arrays need zip64 records: left to zipfile
