"""Atomic file writing, deterministic .npz files, checksums, fast JSON Lines parsing, and the
safety rules every command follows (docs/security.md): names from data stay inside their root,
outputs never overwrite inputs, one writer per folder, folders are staged beside their target and
swapped in when complete (:func:`staged_output`), and reading is bounded.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import ctypes.util
import hashlib
import io
import json
import math
import os
import re
import reprlib
import shlex
import shutil
import socket
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from mrbench.errors import MrbenchError, ValidationError, os_error_text

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


def json_lines(text: str, name: str, limits: ReadLimits | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of JSON Lines ``text`` (lines end
    at LF, CRLF or CR); bad JSON raises :class:`ValidationError` naming ``name``, the line and
    the column. ``limits`` bounds the number of lines and their length."""
    lines = split_lines(text)
    if lines[-1] == "":  # the empty piece after a final line break is not a line
        lines.pop()
    if limits is not None and limits.max_lines is not None and len(lines) > limits.max_lines:
        raise limits.exceeded(f"{len(lines)} lines is more than the bound of {limits.max_lines}", file=name)
    max_chars = None if limits is None else limits.max_line_chars
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if max_chars is not None and len(raw) > max_chars:
            raise limits.exceeded(f"the line has {len(raw)} characters, more than the bound of {max_chars}",  # type: ignore[union-attr]
                                  file=name, line=number)
        try:
            yield number, json_loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"invalid JSON ({exc.msg} at column {exc.colno})", file=name, line=number) from None
        except RecursionError:
            raise ValidationError("invalid JSON (nested too deeply)", file=name, line=number) from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise ValidationError(f"invalid JSON ({exc})"[:200], file=name, line=number) from None


def finite_number(value: Any) -> bool:
    """True for an int or float (not a bool) that is finite as a float: NaN, infinities and
    integers beyond float range (``10**400`` in a JSON file) are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 80
_SHORT_REPR.maxlong = 40


def short_repr(value: Any) -> str:
    """A bounded ``repr`` for error messages that quote untrusted values (a YAML alias bomb or a
    10**400 integer stays a few dozen characters)."""
    return _SHORT_REPR.repr(value)


# --------------------------------------------------------------------------------------------
# Limits: how much work any input may cause (docs/security.md lists them and how to raise them)

#: Environment variable that multiplies every size bound below (``--size-limit-factor`` too).
LIMIT_FACTOR_ENV = "MRBENCH_SIZE_LIMIT_FACTOR"
#: A video may last at most this long (seconds): about 11.6 days.
MAX_DURATION = 1_000_000.0
#: Clip lengths (seconds) mrbench accepts, from files and options alike.
MIN_CLIP_LEN, MAX_CLIP_LEN = 0.01, 3600.0
#: Clips per video (features, masks, saliency).
MAX_CLIPS = 1_000_000
#: Size of one feature vector.
MAX_FEATURE_DIM = 65_536
#: The largest single array an input may make mrbench allocate (bytes, before the factor).
MAX_ARRAY_BYTES = 2 << 30
#: Annotation and other text files read whole (bytes after decompression, before the factor).
MAX_TEXT_BYTES = 1 << 30
#: Queries (lines) of one annotation file and characters of one line (before the factor).
MAX_ANNOTATION_LINES = 2_000_000
MAX_ANNOTATION_LINE_CHARS = 1 << 20


_FACTOR_OVERRIDE: contextvars.ContextVar[float | None] = contextvars.ContextVar("size_limit_factor", default=None)


def set_limit_factor(factor: float | None) -> None:
    """Make every bound use ``factor`` from now on (a command's ``--size-limit-factor``);
    ``None`` goes back to ``$MRBENCH_SIZE_LIMIT_FACTOR`` or 1."""
    _FACTOR_OVERRIDE.set(None if factor is None else limit_factor(factor))


def limit_factor(factor: float | None = None) -> float:
    """The factor applied to every size bound: ``factor`` if given, else the one set by
    :func:`set_limit_factor`, else ``$MRBENCH_SIZE_LIMIT_FACTOR``, else 1."""
    if factor is None:
        factor = _FACTOR_OVERRIDE.get()
    if factor is None:
        text = os.environ.get(LIMIT_FACTOR_ENV, "").strip()
        if not text:
            return 1.0
        try:
            factor = float(text)
        except ValueError:
            raise MrbenchError(f"{LIMIT_FACTOR_ENV} must be a number, got {text!r}") from None
    if not finite_number(factor) or factor <= 0:
        raise MrbenchError(f"the size limit factor must be a positive finite number, got {factor!r}")
    return float(factor)


OVERRIDE_HINT = f"raise the bound with --size-limit-factor N or {LIMIT_FACTOR_ENV}=N"


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on a text file: bytes after decompression, lines, characters per line, and what
    to tell the user when one is exceeded (``why``: what the bound is relative to)."""

    max_bytes: int
    max_lines: int | None = None
    max_line_chars: int | None = None
    why: str = ""

    def scaled(self, factor: float) -> ReadLimits:
        def times(value: int | None) -> int | None:
            return None if value is None else int(min(value * factor, sys.maxsize))

        return ReadLimits(times(self.max_bytes), times(self.max_lines), times(self.max_line_chars), self.why)  # type: ignore[arg-type]

    def exceeded(self, what: str, *, file: str | os.PathLike[str], line: int | None = None) -> ValidationError:
        why = f" ({self.why})" if self.why else ""
        return ValidationError(f"{what}{why}; {OVERRIDE_HINT}", file=file, line=line)


def check_allocation(shape: Iterable[int], itemsize: int, what: str, *, file: str | os.PathLike[str] | None = None,
                     qid: object = None, field: str | None = None, factor: float | None = None) -> None:
    """Raise :class:`ValidationError` before allocating an array of ``shape`` whose size would
    exceed :data:`MAX_ARRAY_BYTES` (times the limit factor): the input asks for too much."""
    cells = 1
    for size in shape:
        cells *= max(int(size), 0)
    limit = MAX_ARRAY_BYTES * limit_factor(factor)
    if cells * itemsize > limit:
        raise ValidationError(
            f"{what} would need {cells * itemsize / 2**30:.1f} GiB (bound {limit / 2**30:.1f} GiB); {OVERRIDE_HINT}",
            file=file, qid=qid, field=field,
        )


def require_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` if it is a regular file (symlinks followed); otherwise one :class:`ValidationError`
    saying what it is instead (missing, a directory, a device or pipe, unreadable)."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        raise ValidationError("no such file", file=path) from None
    except OSError as exc:
        raise ValidationError(f"cannot read {what} ({exc.strerror})", file=path) from None
    if path.is_dir():
        raise ValidationError(f"is a directory, not a {what}", file=path)
    if not path.is_file():
        raise ValidationError(f"is not a regular file (a {what} is expected)", file=path)
    return path


def read_text(path: str | os.PathLike[str], limits: ReadLimits | None = None, *, what: str = "file") -> str:
    """The UTF-8 text of a regular file, gunzipped when it is gzip data (by name or magic bytes).

    Bounded: the file and its decompressed text may not exceed ``limits.max_bytes`` (default
    :data:`MAX_TEXT_BYTES` times the limit factor); a decompression bomb stops at the bound.
    Missing, unreadable, non-regular, corrupt or non-UTF-8 files raise one
    :class:`ValidationError` naming the file. A leading BOM is dropped.
    """
    limits = limits or ReadLimits(MAX_TEXT_BYTES).scaled(limit_factor())
    path = require_file(path, what)
    info = path.stat()
    if info.st_size > limits.max_bytes:
        raise limits.exceeded(f"{info.st_size} bytes is more than the bound of {limits.max_bytes}", file=path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {what} ({exc.strerror})", file=path) from None
    if path.name.endswith(".gz") or raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, path, limits)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"is not UTF-8 text (byte {exc.start}: {exc.reason})", file=path) from None


def _gunzip(raw: bytes, path: Path, limits: ReadLimits) -> bytes:
    """Decompress gzip members, never holding more than ``limits.max_bytes`` of output."""
    out = bytearray()
    data = raw
    while data:
        stream = zlib.decompressobj(wbits=31)
        try:
            while data:
                out += stream.decompress(data, limits.max_bytes + 1 - len(out))
                if len(out) > limits.max_bytes:
                    raise limits.exceeded(f"decompresses to more than the bound of {limits.max_bytes} bytes", file=path)
                if stream.eof:
                    break
                data = stream.unconsumed_tail
        except zlib.error as exc:
            raise ValidationError(f"corrupt gzip data ({exc})", file=path) from None
        if not stream.eof:
            raise ValidationError("truncated gzip data (the stream ends early)", file=path)
        data = stream.unused_data.lstrip(b"\x00")
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Names from data

#: Characters a name taken from data may not hold: path separators, NUL and control characters.
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_NAME_BYTES = 255


def safe_name(value: Any, field: str, *, file: str | os.PathLike[str] | None = None, line: int | None = None,
              qid: object = None) -> str:
    """``value`` checked as one path component taken from data (a vid, qid, split, dataset,
    variant or file name): a non-empty string of at most 255 bytes, not ``.`` or ``..``, without
    path separators, NUL or control characters. Otherwise :class:`ValidationError` naming
    ``field`` (and file, line, qid when given)."""
    if not isinstance(value, str) or not value:
        reason = "must be a non-empty name"
    elif value in (".", ".."):
        reason = "must be a name, not '.' or '..'"
    elif _UNSAFE_NAME.search(value):
        reason = "must be a plain name (no path separators, NUL or control characters)"
    elif len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        reason = f"must be a name of at most {MAX_NAME_BYTES} bytes"
    else:
        return value
    raise ValidationError(f"{reason}, got {short_repr(value)}", file=file, line=line, qid=qid, field=field)


def path_inside(root: str | os.PathLike[str], *names: str, field: str, file: str | os.PathLike[str] | None = None,
                line: int | None = None, qid: object = None) -> Path:
    """``root / names...`` for names taken from data: each passes :func:`safe_name` and the
    result, symlinks resolved, stays inside the resolved ``root`` (see :func:`ensure_inside`)."""
    for name in names:
        safe_name(name, field, file=file, line=line, qid=qid)
    return ensure_inside(Path(root).joinpath(*names), root, field, file=file, line=line, qid=qid)


def ensure_inside(path: str | os.PathLike[str], root: str | os.PathLike[str], field: str, *,
                  file: str | os.PathLike[str] | None = None, line: int | None = None, qid: object = None) -> Path:
    """``path`` unchanged when, symlinks resolved, it lies inside ``root`` (or is it);
    otherwise :class:`ValidationError` naming ``field``."""
    path = Path(path)
    base, resolved = Path(root).resolve(), path.resolve()
    if resolved != base and base not in resolved.parents:
        raise ValidationError(f"{path} leads outside {root} (to {resolved})", file=file, line=line, qid=qid,
                              field=field)
    return path


# --------------------------------------------------------------------------------------------
# Outputs


def refuse_overwrite(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None], option: str,
                     *, read_whole: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """Raise :class:`MrbenchError` when the output ``option`` would destroy an input: it resolves
    to one of ``inputs`` or contains one, or lies inside a folder of ``read_whole`` (an input read
    as a whole, such as a feature root or a submissions folder, that new files would change)."""
    target = Path(output).resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if target == source or target in source.parents:
            raise MrbenchError(f"{option} {output} would overwrite the input {item}; choose another {option}")
    for item in read_whole:
        if item is None:
            continue
        folder = Path(item).resolve()
        if target == folder or folder in target.parents or target in folder.parents:
            raise MrbenchError(f"{option} {output} lies inside the input folder {item} (it would change it); "
                               f"choose another {option}")


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` if a folder can be written there: not a file, not under a file, not read-only;
    otherwise :class:`MrbenchError` naming ``option``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MrbenchError(f"{option} {path} is a file, not a folder")
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise MrbenchError(f"{option} {path}: {existing} is a dangling symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise MrbenchError(f"{option} {path} lies under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MrbenchError(f"{option} {path}: {existing} is read-only")
    return path


# --------------------------------------------------------------------------------------------
# One writer per folder


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file of a folder: ``.<name>.lock`` beside it (it survives the folder's swap)."""
    target = Path(os.path.abspath(target))
    return target.with_name(f".{target.name}.lock")


def _holder_text(fd: int) -> str:
    """'pid N: command' from a lock file's content ('' when empty or unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        data = json.loads(os.read(fd, 65536).decode("utf-8"))
        return f"pid {int(data['pid'])} on {data.get('host', '?')}: {data.get('command', '?')}"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return ""


@contextlib.contextmanager
def folder_lock(target: str | os.PathLike[str], command: str | None = None) -> Iterator[Path]:
    """Hold the write lock of folder ``target`` while the block runs.

    The lock file (:func:`lock_path`) records the holder's pid, host and command and carries an
    advisory ``flock``, which the system releases when the holder dies. A second writer gets a
    :class:`MrbenchError` naming the holder; a lock file left by a process that is gone is taken
    over with a warning. The lock file is removed on exit.
    """
    import fcntl  # POSIX only; imported here so that mrbench imports everywhere

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:  # never through a link: a planted link would have us truncate its target
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise MrbenchError(f"cannot take the lock {path} ({exc.strerror}; a link or a folder there is "
                               "not a lock file)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(fd) or "another process"
            os.close(fd)
            raise MrbenchError(f"{target} is being written by {holder} (lock {path}); wait until it ends") from None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:  # not a file its previous holder removed between our open and flock
            break
        os.close(fd)
    try:
        stale = _holder_text(fd)
        if stale:
            warnings.warn(f"{target}: taking over a stale lock ({stale}; that process is gone)", UserWarning,
                          stacklevel=3)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "command": command or shlex.join(["mrbench", *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


# --------------------------------------------------------------------------------------------
# --force: build beside, swap when complete

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the system or file system cannot."""
    name = ctypes.util.find_library("c")
    try:
        renameat2 = ctypes.CDLL(name, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0


def staging_paths(target: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(staging, replaced)``: where a new ``target`` is built, and where the old one waits
    during a swap on systems without an atomic exchange."""
    target = Path(os.path.abspath(target))
    return target.with_name(f".{target.name}.staging"), target.with_name(f".{target.name}.replaced")


def recover_swap(target: str | os.PathLike[str], *, keep_staging: bool = False) -> None:
    """Finish or undo a swap that a kill interrupted: restore the old folder if the new one never
    arrived, drop it if the new one did; remove a stale staging folder (unless ``keep_staging``:
    :func:`staged_output` decides whether it holds a run to resume)."""
    target = Path(target)
    staging, replaced = staging_paths(target)
    for path in (staging, replaced):
        if path.is_symlink():  # not ours: never followed, never moved into place
            path.unlink()
    if replaced.exists():
        if target.exists():
            shutil.rmtree(replaced)
        else:
            os.replace(replaced, target)
    if staging.exists() and not keep_staging:
        shutil.rmtree(staging)


def swap_in(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the complete folder ``staging`` at ``target`` and remove the old ``target``. At every
    instant ``target`` is the old or the new folder (or, where no atomic exchange exists, the old
    one waits at the ``replaced`` path, which :func:`recover_swap` restores)."""
    staging, target = Path(staging), Path(target)
    _, replaced = staging_paths(target)
    if target.exists() and _exchange(staging, target):
        shutil.rmtree(staging)  # it now holds the old folder
        return
    if target.exists():
        os.replace(target, replaced)
    os.replace(staging, target)
    if replaced.exists():
        shutil.rmtree(replaced)


# --------------------------------------------------------------------------------------------
# The staged-output protocol: every command that writes a folder (synth, mask, ...)

#: The settings record inside a staging folder (a command may name its own).
RUN_RECORD = ".mrbench-run.json"


@dataclass(frozen=True)
class StagedRun:
    """What :func:`staged_output` found and where the block writes.

    ``folder``: the staging folder to write into (``target`` itself when ``done``).
    ``resumed``: the folder holds an interrupted run made with the same settings; write only
    what it lacks. ``done``: ``target`` is complete and made with the same settings (``resume``);
    nothing to write.
    """

    target: Path
    folder: Path
    resumed: bool = False
    done: bool = False


def read_run_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings an interrupted run recorded (a JSON object); errors name the file."""
    try:
        data = json.loads(read_text(path, what="run record"))
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"invalid JSON ({exc}); delete the interrupted run to start over"[:200], file=path) from None
    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object; delete the interrupted run to start over", file=path)
    return data


def differing_settings(new: Mapping[str, Any], old: Mapping[str, Any], keys: Iterable[str] | None = None) -> list[str]:
    """Names of the settings that differ between ``new`` and ``old`` (``keys``: only these; by
    default every key of either). Nested objects are compared key by key and named by their
    innermost keys (``{"config": {"seed": 1}}`` -> ``seed``)."""
    names: list[str] = []
    for key in keys if keys is not None else list(dict.fromkeys([*new, *old])):
        a, b = new.get(key), old.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            names += differing_settings(a, b)
        elif a != b:
            names.append(key)
    return names


@contextlib.contextmanager
def staged_output(
    target: str | os.PathLike[str],
    settings: Mapping[str, Any],
    *,
    recorded: Callable[[Path], Mapping[str, Any] | None],
    resume: bool = False,
    replace: bool = False,
    record: str = RUN_RECORD,
    resumable: Callable[[Path], bool] = lambda folder: True,
    legacy: Iterable[str | os.PathLike[str]] = (),
    replace_option: str | None = "--force",
    what: str = "result",
    command: str | None = None,
) -> Iterator[StagedRun]:
    """Write the folder ``target`` so that a kill at any moment leaves the old or the new result whole.

    The protocol: take the folder's lock (:func:`folder_lock`); build in the staging folder beside
    ``target`` (:func:`staging_paths`) with ``settings`` recorded in its ``record`` file; when the
    block completes, drop the record and swap the folder in (:func:`swap_in`).

    ``resume``: continue an interrupted run in the staging folder (or adopt one from a ``legacy``
    folder that holds the ``record`` file: where earlier versions wrote in place) when its
    settings equal ``settings``; answer ``done`` when ``target`` is complete and ``recorded``
    (which reads the settings a complete ``target`` was made with, None when it is not such a
    result) agrees on every setting it records. Other settings are refused with one line naming
    them. Without ``resume`` an interrupted run is an error, unless ``replace`` starts over.
    ``replace``: an existing ``target`` that ``recorded`` recognises is replaced (only by the swap).
    A failing block removes the staging folder, unless ``resumable`` says it holds work worth
    resuming (never with ``replace``): the error then says that ``--resume`` finishes it.
    """
    target = Path(target)
    staging, _ = staging_paths(target)
    with folder_lock(target, command):
        recover_swap(target, keep_staging=True)
        run = _prepare_staged(target, staging, settings, recorded, resume, replace, record,
                              [Path(p) for p in legacy], replace_option, what)
        if run.done:
            yield run
            return
        if not run.resumed:
            staging.mkdir(parents=True)
            atomic_write_text(staging / record, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        try:
            yield run
        except BaseException as exc:
            if replace or not resumable(staging):
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if isinstance(exc, (MrbenchError, OSError)):
                reason = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
                raise MrbenchError(f"{reason} (the interrupted run is kept in {staging}: --resume finishes it"
                                   + (f", {replace_option} starts over)" if replace_option else ")")) from None
            raise
        (staging / record).unlink()
        swap_in(staging, target)


def _prepare_staged(target: Path, staging: Path, settings: Mapping[str, Any],
                    recorded: Callable[[Path], Mapping[str, Any] | None], resume: bool, replace: bool,
                    record: str, legacy: list[Path], replace_option: str | None, what: str) -> StagedRun:
    """Decide what :func:`staged_output` does (while holding the lock)."""
    if target.exists() and not target.is_dir():
        raise MrbenchError(f"{target} is a file, not a folder")
    if staging.exists() and not (staging / record).is_file():
        shutil.rmtree(staging)  # killed before its settings were recorded: nothing to resume
    interrupted = [p for p in (staging, *legacy) if (p / record).is_file() and not p.is_symlink()]
    occupied = target.is_dir() and any(target.iterdir())
    previous = recorded(target) if occupied else None
    start_over = f", {replace_option} starts over" if replace_option else ", or delete it"
    if resume:
        if interrupted:
            folder = interrupted[0]
            differing = differing_settings(settings, read_run_record(folder / record))
            if differing:
                raise MrbenchError(f"{folder} holds an interrupted run made with other settings "
                                   f"(differing: {', '.join(differing)}); rerun with those{start_over}")
            if folder != staging:
                os.replace(folder, staging)  # adopt a run an earlier version wrote elsewhere
            return StagedRun(target, staging, resumed=True)
        if previous is not None:
            differing = differing_settings(settings, previous, keys=previous)
            if differing:
                raise MrbenchError(f"{target} is a complete {what} made with other settings "
                                   f"(differing: {', '.join(differing)}); rerun with those"
                                   + (f", {replace_option} to replace it" if replace_option else
                                      ", or remove it or choose another --out"))
            return StagedRun(target, target, done=True)
        if occupied:
            raise MrbenchError(f"--resume works only on a {what}; {target} is not one")
        return StagedRun(target, staging)
    if interrupted and not replace:
        raise MrbenchError(f"{interrupted[0]} holds an interrupted run: pass --resume to finish it (with the same "
                           f"settings){start_over}")
    if occupied and not replace:
        raise MrbenchError(f"{target} already exists and is not empty ("
                           + (f"{replace_option} replaces a {what})" if replace_option else
                              "remove it or choose another --out)"))
    if occupied and previous is None and target not in interrupted:
        raise MrbenchError(f"{replace_option} works only on a {what}; {target} is not one")
    for folder in interrupted:
        if folder != target:
            shutil.rmtree(folder)
    return StagedRun(target, staging)


def jsonl_text(records: Iterable[Any]) -> str:
    """JSON Lines text: one ``json.dumps`` object per line (default separators ``", "`` and
    ``": "``, ASCII escapes), each line ending in a newline."""
    return "".join(json.dumps(record) + "\n" for record in records)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> None:
    """Write ``records`` as JSON Lines (:func:`jsonl_text`) to ``path`` atomically."""
    atomic_write_text(path, jsonl_text(records))
