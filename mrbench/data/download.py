"""Fetch a dataset's annotation files, verify their checksums, write them atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mrbench.data.catalog import RemoteFile, default_root, get_spec
from mrbench.errors import MrbenchError
from mrbench.io import check_output_dir, folder_lock, refuse_overwrite, sha256_file

_CHUNK = 1 << 16


@dataclass(frozen=True)
class DownloadResult:
    """What happened to one file."""

    path: Path
    status: str  # "downloaded" or "up to date"


def _source_for(remote: RemoteFile, base: str | None) -> str:
    if base is None:
        return remote.url
    if "://" in base:
        return base.rstrip("/") + "/" + urllib.parse.quote(remote.path)
    return str(Path(base) / remote.path)


def _open_source(source: str, timeout: float):  # noqa: ANN202 - a binary file-like object
    if "://" not in source:
        try:
            return open(source, "rb")
        except OSError as exc:
            raise MrbenchError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return urllib.request.urlopen(source, timeout=timeout)  # noqa: S310 - URLs come from the catalog or the user
    except urllib.error.HTTPError as exc:
        raise MrbenchError(f"cannot fetch {source}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MrbenchError(f"cannot reach {source}: {reason}") from None


def fetch_file(remote: RemoteFile, dest: Path, base: str | None = None, *, timeout: float = 30.0,
               progress: bool = False) -> DownloadResult:
    """Fetch one file into ``dest/remote.path`` unless a file with the right checksum is there.

    The bytes stream into a temporary file beside the target while their sha256 is computed; the
    file is renamed into place only if size and checksum match, so an interrupted or corrupted
    download never leaves a file that looks complete.
    """
    from tqdm import tqdm

    target = dest / remote.path
    if target.is_file() and target.stat().st_size == remote.size and sha256_file(target) == remote.sha256:
        return DownloadResult(target, "up to date")
    source = _source_for(remote, base)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, _open_source(source, timeout) as src, tqdm(
            total=remote.size, unit="B", unit_scale=True, desc=remote.path, disable=not progress, leave=False
        ) as bar:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except OSError as exc:
                    raise MrbenchError(f"transfer of {source} failed: {exc}") from None
                if not chunk:
                    break
                size += len(chunk)
                if size > remote.size:
                    raise MrbenchError(f"{source} sends more than the {remote.size} bytes of {remote.path}; "
                                       "nothing was written")
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != remote.sha256:
            raise MrbenchError(
                f"checksum mismatch for {remote.path} from {source}: expected sha256 {remote.sha256}, "
                f"got {digest.hexdigest()} ({size} bytes, expected {remote.size}); nothing was written"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return DownloadResult(target, "downloaded")


def download(name: str, dest: str | os.PathLike[str] | None = None, source: str | None = None, *,
             timeout: float = 30.0, progress: bool = False) -> list[DownloadResult]:
    """Fetch every annotation file of dataset ``name`` into ``dest`` (default: the data home).

    ``source`` replaces the official URLs by a base URL or a local directory holding the same
    relative paths (a mirror). Idempotent: files already present with the right checksum are kept.
    """
    spec = get_spec(name)
    dest_path = check_output_dir(Path(dest) if dest else default_root(name), "--dest")
    if source is not None and "://" not in source:
        if not Path(source).is_dir():
            raise MrbenchError(f"--from {source}: not a URL and not a directory")
        refuse_overwrite(dest_path, [source], "--dest")
    with folder_lock(dest_path):
        return [fetch_file(remote, dest_path, source, timeout=timeout, progress=progress)
                for remote in spec.files.values()]

