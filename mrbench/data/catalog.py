"""The dataset catalog: clip length, splits, feature types and dims, official annotation files.

Annotation files are downloaded from the repositories that published them (``mrbench data
download``) and never redistributed with mrbench: QVHighlights annotations are CC BY-NC-SA 4.0;
Charades-STA, TACoS and ActivityNet-Captions keep their original (research, non-commercial) terms.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from mrbench.data.schema import Annotations, Query, read_annotations, read_charades_raw
from mrbench.errors import MrbenchError

_MOMENT_DETR = "https://raw.githubusercontent.com/jayleicn/moment_detr/b7e553a/data"
_LIGHTHOUSE = "https://raw.githubusercontent.com/line/lighthouse/d095eaa/data"
_VSLNET = "https://raw.githubusercontent.com/IsaacChanghau/VSLNet/9256b81/data/dataset/charades"

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

CATALOG: dict[str, DatasetSpec] = {
    "qvhighlights": DatasetSpec(
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
    ),
    "charades_sta": DatasetSpec(
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
    "tacos": DatasetSpec(
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
    "activitynet": DatasetSpec(
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
}


def get_spec(name: str) -> DatasetSpec:
    """The catalog entry for ``name`` (a clear error lists the known names)."""
    try:
        return CATALOG[name]
    except KeyError:
        raise MrbenchError(f"unknown dataset {name!r}; known: {', '.join(CATALOG)}") from None


def default_root(name: str) -> Path:
    """Where ``mrbench data download NAME`` puts files by default: ``$MRBENCH_DATA/NAME`` or
    ``~/.cache/mrbench/data/NAME``."""
    home = os.environ.get(DATA_HOME_ENV)
    base = Path(home) if home else Path.home() / ".cache" / "mrbench" / "data"
    return base / name


def split_path(name: str, split: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Path of the file behind a (non-derived) split."""
    spec = get_spec(name)
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
    """Read (and validate) one split; derived splits are carved by video from their source."""
    spec = get_spec(name)
    path = split_path(name, split, root)
    entry = spec.splits[split]
    require = split not in ("test",) or not spec.has_highlights
    annotations = read_annotations(path, require_windows=require)
    if isinstance(entry, DerivedSplit):
        carved = carve_videos(annotations.records, entry.fraction, entry.seed)
        annotations = Annotations(
            [r for r in annotations.records if (r.vid in carved) == entry.take], annotations.style, path
        )
    return annotations


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
