"""Charades-CD and ActivityNet-CD (Yuan et al. 2021): the published JSON as community records.

Yuan, Lan, Wang, Chen, Zhu, Zhu, "A Closer Look at Temporal Sentence Grounding in Videos:
Dataset and Metric" (2021) re-split all of Charades-STA and ActivityNet-Captions so that the
moment positions of ``test_ood`` differ from training (``yytzsy/grounding_changing_distribution``,
data files of commit 04e8f80). Published splits:

* ``charades_cd``: train, val, test_iid, test_ood (``Charades-CD/charades_<split>.json``).
* ``activitynet_cd``: val, test_iid, test_ood (``ActivityNet-CD/anet_<split>.json``). **Its train
  split was never published** (``anet_train.json`` is absent from every snapshot of the
  repository), so a model cannot be trained on ActivityNet-CD with mrbench; evaluate one trained
  elsewhere.

**qids.** A CD query keeps the qid of its counterpart in the reference release (Charades-STA
train + test for ``charades_cd``; ActivityNet-Captions val_1 for ``activitynet_cd``) so that text
features, video features and masked variants made for that release serve both. The matching rule:
same video id; same sentence after lower-casing, deleting every ``.`` and collapsing white space
(Charades-CD lower-cased the sentences and removed *all* periods, also inner ones:
``"smiling.the person"`` became ``"smilingthe person"``); same window after clipping the CD end
to the reference video's duration (the release clips there) and rounding both to 0.1 s. Each
reference qid is given once, in file order. A query without a counterpart gets
``UNMATCHED_QID_BASE[(family, split)] + its position in the file``, far from any released qid.

**Quirks of the files, handled here.** Charades-CD ``video_duration`` is the 16-fps decode length,
about 0.15 s longer than Charades-STA's duration, and 2,283 kept windows end past it (by up to 1.44 s,
inherited from Charades-STA): ends are clipped to the duration. Three test_ood queries (LEOL6,
AKKWU twice) lie wholly past their video's end and are dropped, as are the four ActivityNet-CD
test_ood windows with start >= end (two reversed, two empty). The numbers stay the published ones
otherwise (``duration`` is the file's; the sentences are kept as written).
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrbench.data.schema import Query, read_annotations
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import MAX_DURATION, finite_number, json_loads, read_text, sha256_file, short_repr


@dataclass(frozen=True)
class CDFile:
    """One published split file: its path under a CD root, sha256 and size."""

    path: str
    sha256: str
    size: int


#: The published files. Charades-CD's checksums agree with the prefixes listed in
#: ``shared/data/charades_cd/NOTE.md`` (and with the copies in IMCCretrieval/MomentDiff);
#: ActivityNet-CD's are recorded from the same snapshot (no independent list exists).
CD_FILES: dict[str, dict[str, CDFile]] = {
    "charades_cd": {
        "train": CDFile("Charades-CD/charades_train.json",
                        "e8bd49b87d6e166ba349035136396fa4bb3fbc8f85f9612544215624c7042651", 1611562),
        "val": CDFile("Charades-CD/charades_val.json",
                      "05d451cbf0cc6441405d071440915974c52ea820a2627c8be4a6bbfff88cce3e", 122619),
        "test_iid": CDFile("Charades-CD/charades_test_iid.json",
                           "c75e4393425a21842abc6d5f75deb5ee64c54d38148bcd4adac7417099b82566", 118860),
        "test_ood": CDFile("Charades-CD/charades_test_ood.json",
                           "a73847ada163bfcbbad2f616311098e6139b63ca6f93f537ca41b01b81961166", 500447),
    },
    "activitynet_cd": {
        "val": CDFile("ActivityNet-CD/anet_val.json",
                      "4f772595ac7717f7b269f7b71dac5cbe7308159fbea5f8946e4aadae27fadbef", 363645),
        "test_iid": CDFile("ActivityNet-CD/anet_test_iid.json",
                           "8b281eee04bc61f9282445d4ec343f647c54024e66e50d657a7d440584004c5b", 354327),
        "test_ood": CDFile("ActivityNet-CD/anet_test_ood.json",
                           "a374c9992b1c8940070e00aec0e5d9e12fe3888e03ccc60d2db41c4baec8b5da", 1366568),
    },
}

#: The reference release each family's qids map back to (files in the catalog's layout).
REFERENCE_FILES: dict[str, tuple[str, ...]] = {
    "charades_cd": ("charades_train_release.jsonl", "charades_test_release.jsonl"),
    "activitynet_cd": ("activitynet_val_release.jsonl",),
}

#: Duration key of a video entry in each family's JSON.
_DURATION_KEY = {"charades_cd": "video_duration", "activitynet_cd": "duration"}

#: qid of an unmatched query = base + its position in the published file.
UNMATCHED_QID_BASE: dict[tuple[str, str], int] = {
    ("charades_cd", "train"): 1_000_000,
    ("charades_cd", "val"): 2_000_000,
    ("charades_cd", "test_iid"): 3_000_000,
    ("charades_cd", "test_ood"): 4_000_000,
    ("activitynet_cd", "val"): 5_000_000,
    ("activitynet_cd", "test_iid"): 6_000_000,
    ("activitynet_cd", "test_ood"): 7_000_000,
}

_MISSING_TRAIN = ("ActivityNet-CD has no train split: Yuan et al. never published anet_train.json "
                  "(only val, test_iid and test_ood exist); train elsewhere and evaluate here")


@dataclass(frozen=True)
class CDConversion:
    """A converted split and what the conversion did: ``published`` queries in the file,
    ``matched`` to a reference qid, ``clipped`` window ends, ``dropped`` ``(vid, index, reason)``."""

    family: str
    split: str
    records: list[Query]
    published: int
    matched: int
    clipped: int
    dropped: tuple[tuple[str, int, str], ...]

    def summary(self) -> str:
        """One line: counts of the conversion."""
        return (f"{self.family}/{self.split}: {self.published} published queries, {len(self.records)} kept, "
                f"{self.matched} matched to reference qids, {self.clipped} ends clipped, "
                f"{len(self.dropped)} dropped")


def normalize_sentence(sentence: str) -> str:
    """The sentence key of the matching rule: lower case, no ``.``, single spaces, stripped."""
    return " ".join(sentence.replace(".", "").lower().split())


def cd_splits(family: str) -> list[str]:
    """The published splits of ``family`` (an error names the known families)."""
    if family not in CD_FILES:
        raise MrbenchError(f"unknown CD family {family!r}; known: {', '.join(CD_FILES)}")
    return list(CD_FILES[family])


def _spec(family: str, split: str) -> CDFile:
    splits = cd_splits(family)
    if family == "activitynet_cd" and split == "train":
        raise MrbenchError(_MISSING_TRAIN)
    if split not in splits:
        raise MrbenchError(f"{family} has no split {split!r}; splits: {', '.join(splits)}")
    return CD_FILES[family][split]


def _window_key(start: float, end: float) -> tuple[float, float]:
    return float(np.round(start, 1)), float(np.round(end, 1))


def _reference_index(
    reference: Sequence[Query],
) -> tuple[dict[tuple[str, str, float, float], deque[Query]], dict[str, float]]:
    """(vid, sentence key, rounded window) -> single-window reference records in file order, and
    each reference video's duration."""
    index: dict[tuple[str, str, float, float], deque[Query]] = defaultdict(deque)
    durations: dict[str, float] = {}
    for record in reference:
        durations[record.vid] = float(record.duration)
        if record.windows and len(record.windows) == 1:
            start, end = record.windows[0]
            index[(record.vid, normalize_sentence(record.query), *_window_key(start, end))].append(record)
    return index, durations


def _entries(path: Path, family: str) -> list[tuple[str, float, list[Any], list[Any]]]:
    """``(vid, duration, timestamps, sentences)`` per video, each field checked."""
    text = read_text(path, what=f"{family} split file")
    try:
        data = json_loads(text)
    except ValueError as exc:
        raise ValidationError(f"not valid JSON ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise ValidationError(f"expected a JSON object keyed by video id, got {type(data).__name__}", file=path)
    duration_key = _DURATION_KEY[family]
    entries = []
    for vid, entry in data.items():
        def fail(message: str, key: str, vid: str = vid) -> ValidationError:
            return ValidationError(f"video {short_repr(vid)}: {message}", file=path, field=key)

        if not isinstance(entry, dict):
            raise fail("expected an object", duration_key)
        for key in (duration_key, "timestamps", "sentences"):
            if key not in entry:
                raise fail("missing field", key)
        duration, stamps, sentences = entry[duration_key], entry["timestamps"], entry["sentences"]
        if not finite_number(duration) or not 0 < duration <= MAX_DURATION:
            raise fail(f"must be a positive number of seconds, got {short_repr(duration)}", duration_key)
        if not isinstance(stamps, list) or not isinstance(sentences, list):
            raise fail("timestamps and sentences must be lists", "timestamps")
        if len(stamps) != len(sentences):
            raise fail(f"{len(stamps)} timestamps but {len(sentences)} sentences", "sentences")
        for index, (stamp, sentence) in enumerate(zip(stamps, sentences, strict=True)):
            if not isinstance(stamp, list) or len(stamp) != 2 or not all(finite_number(v) for v in stamp):
                raise fail(f"entry {index} must be [start, end] with finite numbers", "timestamps")
            if stamp[0] < 0:
                raise fail(f"entry {index} {stamp} starts before 0", "timestamps")
            if not isinstance(sentence, str):
                raise fail(f"entry {index} must be a string", "sentences")
        entries.append((vid, float(duration), stamps, sentences))
    return entries


def convert_cd_file(path: str | os.PathLike[str], family: str, split: str,
                    reference: Sequence[Query]) -> CDConversion:
    """Convert one published CD file (no checksum check), qids mapped onto ``reference``."""
    _spec(family, split)
    path = Path(path)
    index, ref_durations = _reference_index(reference)
    base = UNMATCHED_QID_BASE[(family, split)]
    records: list[Query] = []
    dropped: list[tuple[str, int, str]] = []
    position = matched = clipped = 0
    for vid, duration, stamps, sentences in _entries(path, family):
        for entry, ((start, end), sentence) in enumerate(zip(stamps, sentences, strict=True)):
            qid: int | str = base + position
            position += 1
            if start >= end:
                dropped.append((vid, entry, f"start {start} >= end {end}"))
                continue
            if start >= duration:
                dropped.append((vid, entry, f"window [{start}, {end}] starts after the video ({duration} s)"))
                continue
            if vid in ref_durations:
                key = (vid, normalize_sentence(sentence), *_window_key(start, min(end, ref_durations[vid])))
                if index.get(key):
                    qid = index[key].popleft().qid
                    matched += 1
            clipped += end > duration
            record = {"qid": qid, "query": sentence, "duration": duration, "vid": vid,
                      "relevant_windows": [[start, min(end, duration)]]}
            records.append(Query.from_dict(record, file=str(path), require_windows=True))
    return CDConversion(family, split, records, position, matched, int(clipped), tuple(dropped))


def verify_cd_file(path: str | os.PathLike[str], family: str, split: str) -> None:
    """Refuse a split file whose sha256 is not the published one (the message names the file)."""
    spec = _spec(family, split)
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise MrbenchError(f"{path}: sha256 {digest[:16]}... is not the published {spec.sha256[:16]}... of "
                           f"{family}/{split} (Yuan et al. 2021): download the file again")


def convert_cd_split(root: str | os.PathLike[str], family: str, split: str,
                     reference_root: str | os.PathLike[str], *, verify: bool = True) -> CDConversion:
    """Convert split ``split`` of ``family`` under ``root`` (the folder holding ``Charades-CD/`` and
    ``ActivityNet-CD/``), qids mapped onto the reference release under ``reference_root`` (the
    ``charades_sta`` or ``activitynet`` catalog folder); ``verify`` checks the sha256 first."""
    spec = _spec(family, split)
    path = Path(root) / spec.path
    if not path.is_file():
        raise MrbenchError(f"{path} not found: the {family} split files go under {root}")
    if verify:
        verify_cd_file(path, family, split)
    reference: list[Query] = []
    for name in REFERENCE_FILES[family]:
        ref_path = Path(reference_root) / name
        if not ref_path.is_file():
            raise MrbenchError(f"{ref_path} not found: {family} qids map onto that release (download it first)")
        reference.extend(read_annotations(ref_path, require_windows=True).records)
    return convert_cd_file(path, family, split, reference)


def load_cd_split(root: str | os.PathLike[str], family: str, split: str,
                  reference_root: str | os.PathLike[str], *, verify: bool = True) -> list[Query]:
    """The records of one CD split (see :func:`convert_cd_split`; the catalog's loader)."""
    return convert_cd_split(root, family, split, reference_root, verify=verify).records
