"""QVHighlights with a position shift: a deterministic re-split by where the moments sit.

QVHighlights train + val are pooled and split **by video** on one number per video, the
normalised centre of its *main* window: the longest ground-truth window over all of the video's
queries (ties: the earliest start, then the first listed), centre divided by the duration.
Videos whose main window is centred before ``threshold`` form the *train region*; the rest,
whose main moment sits late in the video, are ``test_ood``. The train region is carved into
``train``, ``val`` (model selection) and ``test_iid`` (same distribution as train) by ranking its
videos on ``sha256("mrbench-qvh-shift/<version>/<seed>/<vid>")``: the split depends on the version
string and the seed only, never on input order, Python version or machine.

Why the main window: a QVHighlights query can have up to 25 windows (a third have several), so a
per-video number must summarise them. The longest window holds most of the relevant time and is
what a top-1 prediction usually pairs with (R1 takes the best-IoU window); the first window's
start would be dominated by the 22 % of videos with a window starting at 0 s, and the
length-weighted mean centre of windows at both ends lands in the middle, where no moment is.
Secondary windows of a train video may sit past the threshold: docs/datasets.md reports the
share.

qids, vids and saliency labels are kept, so QVHighlights features and masked variants serve the
shifted splits unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mrbench.data.schema import Query
from mrbench.errors import MrbenchError, ValidationError

SPLITS = ("train", "val", "test_iid", "test_ood")
DEFAULT_SEED = 2024


@dataclass(frozen=True)
class ShiftRule:
    """Train region: main-window centre < ``threshold``; shares of its videos in val and test_iid."""

    threshold: float
    val_fraction: float
    iid_fraction: float


#: Released rules; a new rule gets a new version string (a version's split never changes).
SHIFT_VERSIONS: dict[str, ShiftRule] = {"v1": ShiftRule(threshold=0.6, val_fraction=0.1, iid_fraction=0.1)}


def main_window_centres(queries: Sequence[Query]) -> dict[str, float]:
    """Each video's main-window centre (see the module docstring), normalised by its duration.

    Raises :class:`ValidationError` for a query without windows and a video given two durations.
    """
    rows: list[tuple[int, float, float, float, int]] = []  # video index, start, end, duration, order
    index: dict[str, int] = {}
    durations: dict[str, float] = {}
    for query in queries:
        if not query.windows:
            raise ValidationError("ground-truth windows are required for the shift split", qid=query.qid,
                                  field="relevant_windows")
        if durations.setdefault(query.vid, float(query.duration)) != float(query.duration):
            raise ValidationError(f"video {query.vid!r} has two durations ({durations[query.vid]} and "
                                  f"{query.duration})", qid=query.qid, field="duration")
        video = index.setdefault(query.vid, len(index))
        rows.extend((video, float(s), float(e), float(query.duration), len(rows) + i)
                    for i, (s, e) in enumerate(query.windows))
    video, start, end, duration, order = (np.array(column) for column in zip(*rows, strict=True))
    # per video: longest first, then earliest start, then first listed
    ranked = np.lexsort((order, start, -(end - start), video))
    first = ranked[np.r_[True, video[ranked][1:] != video[ranked][:-1]]]
    centres = (start[first] + end[first]) / 2 / duration[first]
    vids = list(index)
    return {vids[int(v)]: float(c) for v, c in zip(video[first], centres, strict=True)}


def _rank_key(version: str, seed: int, vid: str) -> bytes:
    return hashlib.sha256(f"mrbench-qvh-shift/{version}/{seed}/{vid}".encode()).digest()


def position_shift_split(queries: Sequence[Query], *, version: str = "v1",
                         seed: int = DEFAULT_SEED) -> dict[str, list[Query]]:
    """Split ``queries`` (QVHighlights train + val) into train / val / test_iid / test_ood by video.

    Each split keeps the input order of its queries. An unknown ``version``, duplicate qids, a
    query without windows or an empty input is one :class:`MrbenchError`.
    """
    if version not in SHIFT_VERSIONS:
        raise MrbenchError(f"unknown shift version {version!r}; known: {', '.join(SHIFT_VERSIONS)}")
    if not queries:
        raise MrbenchError("no queries to split")
    seen: set[object] = set()
    for query in queries:
        if query.qid in seen:
            raise ValidationError("duplicate qid in the pooled queries", qid=query.qid, field="qid")
        seen.add(query.qid)
    rule = SHIFT_VERSIONS[version]
    centres = main_window_centres(queries)
    region = sorted((vid for vid, centre in centres.items() if centre < rule.threshold),
                    key=lambda vid: _rank_key(version, seed, vid))
    n_val = round(rule.val_fraction * len(region))
    n_iid = round(rule.iid_fraction * len(region))
    assignment = {vid: "test_ood" for vid in centres}
    assignment.update({vid: "val" for vid in region[:n_val]})
    assignment.update({vid: "test_iid" for vid in region[n_val:n_val + n_iid]})
    assignment.update({vid: "train" for vid in region[n_val + n_iid:]})
    splits: dict[str, list[Query]] = {name: [] for name in SPLITS}
    for query in queries:
        splits[assignment[query.vid]].append(query)
    return splits
