"""The dataset catalog: clip length, splits, feature types and dims, official annotation files.

Annotation files are downloaded from the repositories that published them (``mrbench data
download``) and never redistributed with mrbench: QVHighlights annotations are CC BY-NC-SA 4.0;
Charades-STA, TACoS and ActivityNet-Captions keep their original (research, non-commercial) terms.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mrbench.data.cd import CD_FILES, load_cd_split
from mrbench.data.schema import Annotations, Query, read_annotations, read_charades_raw
from mrbench.data.shift import position_shift_split
from mrbench.errors import MrbenchError
from mrbench.io import MAX_CLIP_LEN, MIN_CLIP_LEN, finite_number, require_file, safe_name

_MOMENT_DETR = "https://raw.githubusercontent.com/jayleicn/moment_detr/b7e553a/data"
_LIGHTHOUSE = "https://raw.githubusercontent.com/line/lighthouse/d095eaa/data"
_VSLNET = "https://raw.githubusercontent.com/IsaacChanghau/VSLNet/9256b81/data/dataset/charades"
_CD_REPO = "https://raw.githubusercontent.com/yytzsy/grounding_changing_distribution/04e8f80"

#: Environment variable naming the directory that holds downloaded datasets (one subdir each).
DATA_HOME_ENV = "MRBENCH_DATA"


@dataclass(frozen=True)
class RemoteFile:
    """One annotation file: where it lives in a dataset root, where it comes from, its checksum."""

    path: str
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DerivedSplit:
    """A split carved from another by video, with a fixed seed (e.g. a validation split)."""

    source: str
    fraction: float
    seed: int
    take: bool  # True: the carved share; False: what remains


@dataclass(frozen=True)
class DatasetSpec:
    """Everything mrbench knows about a dataset."""

    name: str
    title: str
    clip_len: float
    max_clips: int | None
    video_features: dict[str, int]
    text_features: dict[str, int]
    files: dict[str, RemoteFile]
    splits: dict[str, str | DerivedSplit]  # split -> file key, or a derived split
    license: str
    has_highlights: bool = False
    extra_files: tuple[str, ...] = field(default_factory=tuple)
    answers: dict[str, str] = field(default_factory=dict)  # split released without windows -> its answers split
    #: reads a split whose files are not community JSONL: ``loader(source, require_windows)``
    loader: Callable[[SplitSource, bool], Annotations] | None = None
    #: the folder under the data home holding the files (default: ``name``)
    home: str | None = None
    #: the release whose qids, features and masked variants the splits share (None: itself)
    reference: str | None = None
    #: split -> why it cannot be had (a split the authors never published)
    unpublished: dict[str, str] = field(default_factory=dict)

    def split_names(self) -> list[str]:
        return list(self.splits)

    def selection_train_split(self, selection: str = "val") -> str:
        """The split to train on when selecting models on ``selection``: when ``selection`` is
        carved from a split, what remains of that split (Charades-STA: ``train_minus_val``),
        else ``train``."""
        carved = self.splits.get(selection)
        if isinstance(carved, DerivedSplit) and carved.take:
            for name, split in self.splits.items():
                if split == DerivedSplit(carved.source, carved.fraction, carved.seed, take=False):
                    return name
        return "train"


_PUBLISHED_VIDEO = {"slowfast_features": 2304, "clip_features": 512}
_PUBLISHED_TEXT = {"clip_text_features": 512}

_DECLARED = (
    DatasetSpec(
        name="qvhighlights",
        title="QVHighlights (Lei et al., NeurIPS 2021)",
        clip_len=2.0,
        max_clips=75,
        video_features=_PUBLISHED_VIDEO,
        text_features=_PUBLISHED_TEXT,
        files={
            "train": RemoteFile("highlight_train_release.jsonl", f"{_MOMENT_DETR}/highlight_train_release.jsonl",
                                "fd28404187468f57cf99242be2963127dc9b4aef26c7de3cb9469569801f2625", 3956580),
            "val": RemoteFile("highlight_val_release.jsonl", f"{_MOMENT_DETR}/highlight_val_release.jsonl",
                              "f668a1eaea156ec5315e14718999cea043a8cf948d3cafbd8e8d655318c3cd02", 821101),
            "test": RemoteFile("highlight_test_release.jsonl", f"{_MOMENT_DETR}/highlight_test_release.jsonl",
                               "0462f0cb582b54913671ba5ebfc325931ffa6d422c60cb72520749fc6d5d05a3", 204566),
            "test_answers": RemoteFile("highlight_test_with_gt.jsonl", f"{_MOMENT_DETR}/highlight_test_with_gt.jsonl",
                                       "bd50ec6bb5dd3f72571126ba5fdc7418efdd9219a9487984e483a02e2ce5d493", 824658),
        },
        splits={"train": "train", "val": "val", "test": "test", "test_answers": "test_answers"},
        license="CC BY-NC-SA 4.0 (annotations)",
        has_highlights=True,
        answers={"test": "test_answers"},
    ),
    DatasetSpec(
        name="charades_sta",
        title="Charades-STA (Gao et al., ICCV 2017)",
        clip_len=1.0,
        max_clips=None,
        video_features=_PUBLISHED_VIDEO,
        text_features=_PUBLISHED_TEXT,
        files={
            "train": RemoteFile("charades_train_release.jsonl", f"{_LIGHTHOUSE}/charades/charades_train_release.jsonl",
                                "bcb0deddbb552354323a26dd39d3d9f2fe6d9b70fd9e51697344317364962442", 1616506),
            "test": RemoteFile("charades_test_release.jsonl", f"{_LIGHTHOUSE}/charades/charades_test_release.jsonl",
                               "13d6e9152794d87bb501a827edcbe69e5c0428f0af60e926e6b87e4f452ad5b2", 488238),
            "raw_train": RemoteFile("raw_vslnet/charades_sta_train.txt", f"{_VSLNET}/charades_sta_train.txt",
                                    "e966fc1970cf6bc4cc73db2dd4fc10e148313810a372eef488defb0dd2ee359f", 622487),
            "raw_test": RemoteFile("raw_vslnet/charades_sta_test.txt", f"{_VSLNET}/charades_sta_test.txt",
                                   "fab341679c20b0917173dcffffde367a71113fe63f3a645558cef2ebfbfefb55", 186686),
            "durations": RemoteFile("raw_vslnet/charades.json", f"{_VSLNET}/charades.json",
                                    "42de4feae0ae2705d847776393637edafce6d8d47cfbf9ed19b8cd182d370155", 1803980),
        },
        # The official release has no validation split: "val" carves 10% of the training videos
        # with a fixed seed, so that model selection never touches the test split; train on
        # "train_minus_val" when selecting on "val".
        splits={
            "train": "train",
            "val": DerivedSplit("train", 0.1, 2024, take=True),
            "train_minus_val": DerivedSplit("train", 0.1, 2024, take=False),
            "test": "test",
        },
        license="Charades (AI2) non-commercial research terms",
    ),
    DatasetSpec(
        name="tacos",
        title="TACoS (Regneri et al., TACL 2013)",
        clip_len=2.0,
        max_clips=None,
        video_features=_PUBLISHED_VIDEO,
        text_features=_PUBLISHED_TEXT,
        files={
            "train": RemoteFile("tacos_train_release.jsonl", f"{_LIGHTHOUSE}/tacos/tacos_train_release.jsonl",
                                "d5c931511093d0e4a4a7f5b6592420ac1c33e2a824eb3024408f538593959e7f", 1864171),
            "val": RemoteFile("tacos_val_release.jsonl", f"{_LIGHTHOUSE}/tacos/tacos_val_release.jsonl",
                              "1f75348f28e3dcf1e4941eb3477cf7c7b6d587ca21c060d38a35b25029090107", 846710),
            "test": RemoteFile("tacos_test_release.jsonl", f"{_LIGHTHOUSE}/tacos/tacos_test_release.jsonl",
                               "07e29508bfc2d512f1ec2f7b70b289ab094dd8ed8f39403fc42be14be62bb675", 761543),
        },
        splits={"train": "train", "val": "val", "test": "test"},
        license="TACoS (MPII) research terms",
    ),
    DatasetSpec(
        name="activitynet",
        title="ActivityNet-Captions (Krishna et al., ICCV 2017), val_1",
        clip_len=2.0,
        max_clips=None,
        video_features=_PUBLISHED_VIDEO,
        text_features=_PUBLISHED_TEXT,
        files={
            "val": RemoteFile("activitynet_val_release.jsonl", f"{_LIGHTHOUSE}/activitynet/activitynet_val_release.jsonl",
                              "1f44d06b842a717bd8658a58e30ede289c00a351713231bc5dd8cc706f7ba945", 2957168),
        },
        splits={"val": "val"},
        license="ActivityNet-Captions research terms",
    ),
)


def _reference_root(source: SplitSource) -> Path:
    """The folder of the release a derived dataset re-splits: beside ``source.root`` (the
    data-home layout, one folder per dataset)."""
    spec = get_spec(source.dataset)
    assert source.root is not None and spec.reference is not None
    reference = _BASE[spec.reference]
    return source.root.parent / (reference.home or reference.name)


def _load_cd(source: SplitSource, require_windows: bool) -> Annotations:
    """A Charades-CD / ActivityNet-CD split, converted with the qids of its reference release."""
    records = load_cd_split(source.root or default_root(source.dataset), source.dataset, source.split,
                            _reference_root(source))
    return Annotations(records, path=source.annotations)


def _load_shift(source: SplitSource, require_windows: bool) -> Annotations:
    """A split of the QVHighlights position shift (v1, seed 2024) over QVHighlights train + val."""
    folder = _reference_root(source)
    pooled: list[Query] = []
    for key in ("train", "val"):
        path = folder / _BASE["qvhighlights"].files[key].path
        if not path.is_file():
            raise MrbenchError(f"{path} not found: run `mrbench data download qvhighlights`")
        pooled.extend(read_annotations(path, require_windows=True).records)
    return Annotations(position_shift_split(pooled)[source.split], path=source.annotations)


_BASE = {spec.name: spec for spec in _DECLARED}


def _cd_files(family: str) -> dict[str, RemoteFile]:
    """The published split files of a CD family, fetched from Yuan et al.'s repository."""
    return {split: RemoteFile(f.path, f"{_CD_REPO}/{f.path}", f.sha256, f.size) for split, f in CD_FILES[family].items()}


#: Distribution-shift splits: clip length, clip cap, features and highlights of the release they
#: re-split, so that features and masked variants made for that release serve them unchanged.
_DERIVED = (
    replace(
        _BASE["charades_sta"], name="charades_cd", title="Charades-CD (Yuan et al. 2021), Charades-STA re-split",
        files=_cd_files("charades_cd"), splits={s: s for s in ("train", "val", "test_iid", "test_ood")},
        loader=_load_cd, reference="charades_sta",
        license="Charades (AI2) non-commercial research terms (split files: Yuan et al. 2021)",
    ),
    replace(
        _BASE["activitynet"], name="activitynet_cd",
        title="ActivityNet-CD (Yuan et al. 2021), ActivityNet-Captions re-split",
        files=_cd_files("activitynet_cd"), splits={s: s for s in ("val", "test_iid", "test_ood")},
        loader=_load_cd, reference="activitynet", home="charades_cd",
        unpublished={"train": "ActivityNet-CD has no train split: Yuan et al. never published anet_train.json "
                              "(only val, test_iid and test_ood exist); fit on val or train elsewhere"},
        license="ActivityNet-Captions research terms (split files: Yuan et al. 2021)",
    ),
    replace(
        _BASE["qvhighlights"], name="qvhighlights_shift",
        title="QVHighlights position shift v1 (mrbench), QVHighlights train + val re-split",
        files={k: _BASE["qvhighlights"].files[k] for k in ("train", "val")},
        splits={s: "train" for s in ("train", "val", "test_iid", "test_ood")}, answers={},
        loader=_load_shift, reference="qvhighlights", home="qvhighlights",
    ),
)

#: Every catalog dataset by name. Adding a dataset is one more ``DatasetSpec`` in ``_DECLARED``
#: (or a re-split of one in ``_DERIVED``):
#: download, ``data info``, ``mask --dataset``, ``score --dataset`` and :func:`resolve_split` read it.
CATALOG: dict[str, DatasetSpec] = {spec.name: spec for spec in (*_DECLARED, *_DERIVED)}


def get_spec(name: str) -> DatasetSpec:
    """The catalog entry for ``name`` (a clear error lists the known names)."""
    try:
        return CATALOG[name]
    except KeyError:
        raise MrbenchError(f"unknown dataset {name!r}; known: {', '.join(CATALOG)}") from None


def data_home() -> Path:
    """The folder holding one folder per dataset: ``$MRBENCH_DATA`` or ``~/.cache/mrbench/data``."""
    home = os.environ.get(DATA_HOME_ENV)
    return Path(home) if home else Path.home() / ".cache" / "mrbench" / "data"


def default_root(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    """Where ``mrbench data download NAME`` puts files by default: ``HOME/FOLDER``, HOME being
    :func:`data_home` unless given and FOLDER the dataset's ``home`` (default: its name)."""
    spec = CATALOG.get(name)
    return Path(home or data_home()) / ((spec.home if spec else None) or name)


def split_path(name: str, split: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Path of the file behind a (non-derived) split."""
    spec = get_spec(name)
    if split in spec.unpublished:
        raise MrbenchError(spec.unpublished[split])
    if split not in spec.splits:
        raise MrbenchError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    entry = spec.splits[split]
    key = entry.source if isinstance(entry, DerivedSplit) else entry
    path = Path(root or default_root(name)) / spec.files[key].path
    if not path.is_file():
        raise MrbenchError(
            f"{path} not found: run `mrbench data download {name}` (or pass --root DIR)"
        )
    return path


def carve_videos(records: list[Query], fraction: float, seed: int) -> set[str]:
    """The videos of a carved split: ``round(fraction * n_videos)`` drawn by a seeded shuffle of
    the sorted video ids (so the carve is the same on every machine and Python version)."""
    vids = sorted({record.vid for record in records})
    random.Random(seed).shuffle(vids)
    return set(vids[: round(fraction * len(vids))])


def load_split(name: str, split: str, root: str | os.PathLike[str] | None = None) -> Annotations:
    """Read (and validate) one split of a catalog dataset (see :func:`resolve_split`)."""
    return resolve_split(name, split, root=root).load()


def load_charades_raw(split: str, root: str | os.PathLike[str] | None = None) -> list[Query]:
    """Charades-STA from the original ``vid st ed##sentence`` files plus VSLNet durations.

    qids follow the community release: train from 0, test from 12404 (after the train file's
    12,404 kept lines; the raw train file has 4 more, so raw train qids are not comparable).
    """
    spec = get_spec("charades_sta")
    base = Path(root or default_root("charades_sta"))
    txt = base / spec.files[f"raw_{split}"].path
    durations = base / spec.files["durations"].path
    for path in (txt, durations):
        if not path.is_file():
            raise MrbenchError(f"{path} not found: run `mrbench data download charades_sta`")
    return read_charades_raw(txt, durations, first_qid=0 if split == "train" else 12404)


# --- one answer to "which split is this" -----------------------------------------------------
@dataclass(frozen=True)
class SplitSource:
    """One split of a dataset, wherever it comes from: everything a command needs to read it.

    ``annotations``: the file its records come from (for a carved split, the file it is carved
    from; ``carve`` says how). ``features``: the per-file feature root (None: not given).
    ``clip_len``: seconds per clip; ``max_clips``: the dataset's cap on clips per video (None: no
    cap). ``video_types``: the video feature types the dataset declares (None: every folder
    found). ``provenance``: ``"catalog"``, ``"folder"`` (an mrbench dataset directory,
    ``data_dir``) or ``"file"`` (a bare annotation file). ``answers``: the split holding this
    split's windows when it is released without them (QVHighlights ``test``). ``root``: a catalog
    dataset's download folder; ``loader``: the catalog's reader for files that are not community
    JSONL.
    """

    dataset: str
    split: str
    annotations: Path
    clip_len: float
    provenance: str
    features: Path | None = None
    max_clips: int | None = None
    video_types: tuple[str, ...] | None = None
    data_dir: Path | None = None
    carve: DerivedSplit | None = None
    answers: str | None = None
    root: Path | None = None
    loader: Callable[[SplitSource, bool], Annotations] | None = None

    @property
    def require_windows(self) -> bool:
        """Whether every record must have windows (not where the answers are released apart)."""
        return self.answers is None

    def load(self, require_windows: bool | None = None) -> Annotations:
        """Read and validate the split's records (a carved split: its share of the source file's
        videos). ``require_windows`` overrides :attr:`require_windows`."""
        require = self.require_windows if require_windows is None else require_windows
        if self.loader is not None:
            annotations = self.loader(self, require)
        else:
            annotations = read_annotations(self.annotations, require_windows=require)
        if self.carve is None:
            return annotations
        carved = carve_videos(annotations.records, self.carve.fraction, self.carve.seed)
        return Annotations([r for r in annotations.records if (r.vid in carved) == self.carve.take],
                           annotations.style, annotations.path)


def resolve_split(source: str | os.PathLike[str], split: str | None = None, *,
                  root: str | os.PathLike[str] | None = None, features: str | os.PathLike[str] | None = None,
                  clip_len: float | None = None, kind: str | None = None) -> SplitSource:
    """The :class:`SplitSource` of ``split`` of ``source``: an mrbench dataset directory, a catalog
    dataset name (annotation files under ``root``, default :func:`default_root`) or an annotation
    file (``clip_len`` required; ``split`` defaults to the file's stem), tried in that order
    unless ``kind`` (``"folder"``, ``"catalog"`` or ``"file"``) says which.

    ``features`` sets the feature root (a dataset directory's default: ``DIR/features``);
    ``clip_len`` overrides the dataset's clip length. Errors are one line naming what is wrong.
    """
    from mrbench.data.dataset import DatasetDir, is_dataset_dir

    if kind == "folder" and not is_dataset_dir(source):
        raise MrbenchError(f"{source} is not an mrbench dataset directory (no dataset.json)")
    if kind == "catalog":
        get_spec(str(source))
    if clip_len is not None and (not finite_number(clip_len) or not MIN_CLIP_LEN <= clip_len <= MAX_CLIP_LEN):
        raise MrbenchError(f"--clip-len must be a positive number of seconds in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}], "
                           f"got {clip_len}")
    feature_root = None if features is None else Path(features)
    if kind in (None, "folder") and is_dataset_dir(source):
        if not split:
            raise MrbenchError(f"{source}: name a split")
        directory = DatasetDir(source)
        info = directory.info()
        path = directory.annotation_path(split)
        if not path.is_file():
            raise MrbenchError(f"{source} has no split {split!r} (splits: {', '.join(directory.splits()) or 'none'})")
        return SplitSource(info.name, split, path, float(clip_len or info.clip_len), "folder",
                           feature_root or directory.features_root, info.max_clips,
                           tuple(sorted(info.video_features)) or None, Path(source))
    if kind in (None, "catalog") and str(source) in CATALOG:
        source = str(source)
        spec = CATALOG[source]
        if not split:
            raise MrbenchError(f"dataset {source!r}: name a split ({', '.join(spec.splits)})")
        entry = spec.splits.get(split)
        path = split_path(source, split, root)
        return SplitSource(source, split, path, float(clip_len or spec.clip_len), "catalog", feature_root,
                           spec.max_clips, carve=entry if isinstance(entry, DerivedSplit) else None,
                           answers=spec.answers.get(split), root=Path(root or default_root(source)),
                           loader=spec.loader)
    path = Path(source)
    if kind == "file" or (kind is None and path.is_file()):
        require_file(path, "annotation file")
        if clip_len is None:
            raise MrbenchError(f"{path}: an annotation file needs a clip length (--clip-len)")
        return SplitSource(path.stem, safe_name(split or path.stem, "split"), path, float(clip_len), "file",
                           feature_root)
    raise MrbenchError(f"{source!r} is neither a dataset directory, an annotation file nor one of "
                       f"{', '.join(CATALOG)}")


def dataset_splits(source: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[SplitSource]:
    """Every split of a catalog dataset or a dataset directory, resolved (:func:`resolve_split`)."""
    from mrbench.data.dataset import DatasetDir, is_dataset_dir

    names = DatasetDir(source).splits() if is_dataset_dir(source) else list(get_spec(str(source)).splits)
    return [resolve_split(source, split, root=root) for split in names]
