"""The feature store: the per-video layout existing model code reads, and a packed layout.

Per-file layout (Moment-DETR, QD-DETR, CG-DETR, lighthouse, ...)::

    <root>/<video_type>/<vid>.npz            key "features", float [n_clips, dim]
    <root>/clip_text_features/qid<qid>.npz   keys "last_hidden_state" [n_tokens, dim], "pooler_output" [dim]

``.npy`` files (the bare array) are accepted wherever ``.npz`` is. The packed layout
(:func:`pack_features`) stores one ``<type>.npy`` array per feature type, read memory-mapped,
plus ``index.parquet`` mapping each vid (or qid) to its row offset and length.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from mrbench.errors import MissingFeaturesError, MrbenchError, ValidationError
from mrbench.io import (
    MAX_CLIPS,
    MAX_FEATURE_DIM,
    atomic_write_bytes,
    check_output_dir,
    folder_lock,
    safe_name,
    save_npz,
)

TEXT_TYPE = "clip_text_features"
TEXT_KEYS = ("last_hidden_state", "pooler_output")
PACKED_INDEX = "index.parquet"


def text_name(qid: object) -> str:
    """File stem of a query's text features (``qid<qid>``), a plain name."""
    return safe_name(f"qid{qid}", "qid")


class Store(Protocol):
    """What every feature layout offers to masking, synthesis and the models."""

    root: Path

    def video_types(self) -> list[str]: ...

    def load_video(self, vid: str, types: Sequence[str] | None = None) -> dict[str, np.ndarray]: ...

    def load_text(self, qid: object) -> dict[str, np.ndarray]: ...


class FeatureStore:
    """Per-file feature directory (the layout above)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # --- paths -----------------------------------------------------------------------------
    def video_types(self) -> list[str]:
        """Feature types present under the root (every subdirectory except the text one)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != TEXT_TYPE and not p.name.startswith("."))

    def _find(self, directory: Path, stem: str) -> Path | None:
        for suffix in (".npz", ".npy"):
            path = directory / f"{stem}{suffix}"
            if path.is_file():
                return path
        return None

    def video_path(self, feature_type: str, vid: str) -> Path | None:
        """The file holding ``vid``'s features of ``feature_type``, or None (both plain names)."""
        return self._find(self.root / safe_name(feature_type, "feature type"), safe_name(vid, "vid"))

    def text_path(self, qid: object) -> Path | None:
        """The file holding the text features of ``qid``, or None."""
        return self._find(self.root / TEXT_TYPE, text_name(qid))

    # --- reading ---------------------------------------------------------------------------
    def load_video(self, vid: str, types: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``{feature_type: [n_clips, dim]}`` for one video."""
        out = {}
        for feature_type in types or self.video_types():
            path = self.video_path(feature_type, vid)
            if path is None:
                raise MissingFeaturesError(self.root, {feature_type: [vid]})
            out[feature_type] = _read_array(path, "features")
        return out

    def load_text(self, qid: object) -> dict[str, np.ndarray]:
        """``{"last_hidden_state": [n_tokens, dim], "pooler_output": [dim]}`` for one query."""
        path = self.text_path(qid)
        if path is None:
            raise MissingFeaturesError(self.root, {TEXT_TYPE: [text_name(qid)]})
        if path.suffix == ".npy":
            tokens = _read_array(path, "last_hidden_state")
            return {"last_hidden_state": tokens, "pooler_output": _pool(tokens)}
        tokens = _read_array(path, "last_hidden_state")
        with _feature_file(path), np.load(path) as data:
            pooled = data["pooler_output"] if "pooler_output" in data else _pool(tokens)
        return {"last_hidden_state": tokens, "pooler_output": pooled}

    def check(
        self, vids: Iterable[str], qids: Iterable[object] = (), types: Sequence[str] | None = None
    ) -> None:
        """Raise :class:`MissingFeaturesError` listing every missing video and text file."""
        missing: dict[str, list[str]] = {}
        vids = list(vids)
        for feature_type in types or self.video_types():
            lost = [vid for vid in vids if self.video_path(feature_type, vid) is None]
            if lost:
                missing[feature_type] = lost
        lost_text = [text_name(q) for q in qids if self.text_path(q) is None]
        if lost_text:
            missing[TEXT_TYPE] = lost_text
        if not (types or self.video_types()) and vids:
            missing["<video features>"] = ["no feature type directories found"]
        if missing:
            raise MissingFeaturesError(self.root, missing)

    # --- writing ---------------------------------------------------------------------------
    def write_video(self, feature_type: str, vid: str, features: np.ndarray) -> Path:
        """Atomically write ``<root>/<feature_type>/<vid>.npz`` (deterministic bytes)."""
        path = self.root / safe_name(feature_type, "feature type") / f"{safe_name(vid, 'vid')}.npz"
        save_npz(path, features=np.asarray(features))
        return path

    def write_text(self, qid: object, last_hidden_state: np.ndarray, pooler_output: np.ndarray | None = None) -> Path:
        """Atomically write ``<root>/clip_text_features/qid<qid>.npz``."""
        tokens = np.asarray(last_hidden_state)
        pooled = _pool(tokens) if pooler_output is None else np.asarray(pooler_output)
        path = self.root / TEXT_TYPE / f"{text_name(qid)}.npz"
        save_npz(path, last_hidden_state=tokens, pooler_output=pooled)
        return path


def _pool(tokens: np.ndarray) -> np.ndarray:
    mean = tokens.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(tokens.dtype)


@contextlib.contextmanager
def _feature_file(path: Path) -> Iterator[None]:
    """Turn what numpy and zipfile raise on a truncated, corrupt or oversized feature file into
    one :class:`ValidationError` naming it."""
    try:
        yield
    except (ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError) as exc:
        raise ValidationError(f"cannot read the features ({type(exc).__name__}: {exc})"[:300], file=path) from None


def _check_shape(path: Path, shape: tuple[int, ...]) -> None:
    """Clips and dims of a feature array within bounds, checked from its header before reading."""
    if not shape or shape[0] > MAX_CLIPS or any(d > MAX_FEATURE_DIM for d in shape[1:]) or len(shape) > 3:
        raise ValidationError(f"feature array of shape {shape} is out of range (at most {MAX_CLIPS} clips of "
                              f"at most {MAX_FEATURE_DIM} values)", file=path)


def _read_array(path: Path, key: str) -> np.ndarray:
    """One array of a feature file, its shape checked from the header before numpy allocates it."""
    with _feature_file(path):
        if path.suffix == ".npy":
            _check_shape(path, array_shape(path, key)[0])
            return np.load(path)
        with np.load(path) as data:
            if key not in data:
                raise MrbenchError(f"{path}: no key '{key}' (keys: {', '.join(data.files)})")
            with data.zip.open(f"{key}.npy") as handle:
                _check_shape(path, _npy_header(handle)[0])
            return data[key]


class PackedStore:
    """Packed layout: ``<type>.npy`` (memory-mapped) + ``index.parquet`` (name, type, offset, length)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        import pyarrow.parquet as pq

        self.root = Path(root)
        index_path = self.root / PACKED_INDEX
        if not index_path.is_file():
            raise MrbenchError(f"{self.root} is not a packed feature store (no {PACKED_INDEX})")
        table = pq.read_table(index_path).to_pydict()
        self._index: dict[str, dict[str, tuple[int, int]]] = {}
        for name, feature_type, offset, length in zip(
            table["name"], table["type"], table["offset"], table["length"], strict=True
        ):
            self._index.setdefault(feature_type, {})[name] = (offset, length)
        self._arrays = {t: np.load(self.root / f"{t}.npy", mmap_mode="r") for t in self._index}
        pooled = self.root / f"{TEXT_TYPE}.pooler.npy"
        self._pooled = np.load(pooled, mmap_mode="r") if pooled.is_file() else None
        self._text_rows = {name: row for row, name in enumerate(self._index.get(TEXT_TYPE, {}))}

    def video_types(self) -> list[str]:
        return sorted(t for t in self._index if t != TEXT_TYPE)

    def names(self, feature_type: str) -> list[str]:
        return list(self._index.get(feature_type, {}))

    def load_video(self, vid: str, types: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        out = {}
        for feature_type in types or self.video_types():
            entry = self._index.get(feature_type, {}).get(vid)
            if entry is None:
                raise MissingFeaturesError(self.root, {feature_type: [vid]})
            offset, length = entry
            out[feature_type] = np.asarray(self._arrays[feature_type][offset : offset + length])
        return out

    def load_text(self, qid: object) -> dict[str, np.ndarray]:
        name = text_name(qid)
        entry = self._index.get(TEXT_TYPE, {}).get(name)
        if entry is None:
            raise MissingFeaturesError(self.root, {TEXT_TYPE: [name]})
        offset, length = entry
        tokens = np.asarray(self._arrays[TEXT_TYPE][offset : offset + length])
        if self._pooled is None:
            return {"last_hidden_state": tokens, "pooler_output": _pool(tokens)}
        return {"last_hidden_state": tokens, "pooler_output": np.asarray(self._pooled[self._text_rows[name]])}


def open_store(root: str | os.PathLike[str]) -> FeatureStore | PackedStore:
    """A :class:`PackedStore` if ``root`` holds ``index.parquet``, else a :class:`FeatureStore`."""
    return PackedStore(root) if (Path(root) / PACKED_INDEX).is_file() else FeatureStore(root)


def pack_features(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    vids: Sequence[str],
    qids: Sequence[object] = (),
    types: Sequence[str] | None = None,
    dtype: str | None = None,
    progress: bool = False,
) -> Path:
    """Pack per-file features of ``vids`` (and text of ``qids``) into a :class:`PackedStore`.

    Each type is written in a single streaming pass into a preallocated ``.npy`` (the first pass
    only reads array headers), so memory stays at one video at a time.
    """
    store = FeatureStore(source)
    types = list(types or store.video_types())
    store.check(vids, qids, types)
    out = check_output_dir(out, "--out")
    with folder_lock(out):
        return _pack(store, out, vids, qids, types, dtype, progress)


def _pack(store: FeatureStore, out: Path, vids: Sequence[str], qids: Sequence[object], types: list[str],
          dtype: str | None, progress: bool) -> Path:
    """:func:`pack_features` while holding the lock of ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    kinds: list[str] = []
    offsets: list[int] = []
    lengths: list[int] = []

    def pack_one(feature_type: str, items: list[tuple[str, Path]], key: str) -> None:
        shapes = [array_shape(path, key) for _, path in items]
        for (_, path), (shape, _) in zip(items, shapes, strict=True):
            _check_shape(path, shape)
        dims = {shape[1:] for shape, _ in shapes}
        if len(dims) != 1:
            raise MrbenchError(f"{feature_type}: feature dims differ across files: {sorted(dims)}")
        total = sum(shape[0] for shape, _ in shapes)
        out_dtype = np.dtype(dtype) if dtype else shapes[0][1]
        tmp = out / f".{feature_type}.npy.tmp"
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=out_dtype, shape=(total, *dims.pop()))
        offset = 0
        for (name, path), (shape, _) in tqdm(
            list(zip(items, shapes, strict=True)), desc=f"pack {feature_type}", disable=not progress
        ):
            array[offset : offset + shape[0]] = _read_array(path, key)
            names.append(name)
            kinds.append(feature_type)
            offsets.append(offset)
            lengths.append(shape[0])
            offset += shape[0]
        array.flush()
        del array
        os.replace(tmp, out / f"{feature_type}.npy")

    for feature_type in types:
        pack_one(feature_type, [(v, store.video_path(feature_type, v)) for v in vids], "features")
    if qids:
        items = [(text_name(q), store.text_path(q)) for q in qids]
        pack_one(TEXT_TYPE, items, "last_hidden_state")
        pooled = np.stack([store.load_text(q)["pooler_output"] for q in qids])
        buffer = _npy_bytes(pooled)
        atomic_write_bytes(out / f"{TEXT_TYPE}.pooler.npy", buffer)
    table = pa.table(
        {
            "name": pa.array(names, pa.string()),
            "type": pa.array(kinds, pa.string()),
            "offset": pa.array(offsets, pa.int64()),
            "length": pa.array(lengths, pa.int64()),
        }
    )
    tmp_index = out / f".{PACKED_INDEX}.tmp"
    pq.write_table(table, tmp_index)
    os.replace(tmp_index, out / PACKED_INDEX)
    return out


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _npy_header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an open .npy stream's header."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    return tuple(shape), dtype


def array_shape(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the .npy header, without reading the data."""
    with _feature_file(path):
        if path.suffix == ".npy":
            with open(path, "rb") as handle:
                return _npy_header(handle)
        with zipfile.ZipFile(path) as zf:
            if f"{key}.npy" not in zf.namelist():
                keys = ", ".join(name.removesuffix(".npy") for name in zf.namelist())
                raise MrbenchError(f"{path}: no key '{key}' (keys: {keys})")
            with zf.open(f"{key}.npy") as handle:
                return _npy_header(handle)


def video_lengths(store: FeatureStore | PackedStore, vids: Iterable[str], types: Sequence[str]) -> Mapping[str, int]:
    """Number of clips per video: the minimum over feature types (as reference loaders truncate)."""
    return {vid: min(a.shape[0] for a in store.load_video(vid, types).values()) for vid in vids}
