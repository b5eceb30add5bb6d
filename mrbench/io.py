"""Atomic file writing, deterministic .npz files, checksums, and fast JSON Lines parsing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from mrbench.errors import ValidationError

# A run of 19 digits, the shortest that may hold an integer beyond 64 bits (orjson would return
# it as a float): found by mapping every digit to "0" and everything else to " " (C speed).
_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19
# line breaks of JSON Lines and text files (see split_lines)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A fixed timestamp for zip members so that the same arrays always give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched, so a reader
    never sees a half-written file.
    """
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open supports only 'w' and 'wb'")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize arrays as an uncompressed .npz that ``np.load`` reads, byte-identical per input.

    ``np.savez`` stamps zip members with the current time; this writer uses a fixed timestamp
    and a fixed member order so the same arrays always give the same bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buffer.getvalue()


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Atomically write a deterministic .npz file (see :func:`npz_bytes`)."""
    atomic_write_bytes(path, npz_bytes(arrays))


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def json_loads(text: str) -> Any:
    """``json.loads`` with the same result, about 2.5x faster on prediction lines.

    orjson parses first (floats correctly rounded, as the standard library does). Text it
    refuses goes to ``json.loads``, which still accepts ``NaN``/``Infinity`` (so validation can
    name the field that holds one) and gives the precise error message; so does text with a run
    of 19 or more digits, since orjson turns integers outside 64 bits into floats.
    """
    if _LONG_DIGIT_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def split_lines(text: str) -> list[str]:
    """``text`` split at LF, CRLF and CR only (``str.splitlines`` also splits at U+2028, U+0085,
    form feeds, ..., which may stand inside a JSON string or a sentence)."""
    return _LINE_BREAK.split(text)


def json_lines(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of JSON Lines ``text`` (lines end
    at LF, CRLF or CR); bad JSON raises :class:`ValidationError` naming ``name``, the line and
    the column."""
    for number, raw in enumerate(split_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json_loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"invalid JSON ({exc.msg} at column {exc.colno})", file=name, line=number) from None
