"""QVHighlights position-shift split: the rule by hand, determinism, refusals, the real split pinned."""

from __future__ import annotations

import hashlib
import random

import pytest

from mrbench.data.schema import Query, read_annotations
from mrbench.data.shift import SHIFT_VERSIONS, SPLITS, main_window_centres, position_shift_split
from mrbench.errors import MrbenchError, ValidationError
from tests.conftest import require_shared


def _q(qid: int, vid: str, windows: list[list[float]], duration: float = 100.0) -> Query:
    return Query(qid=qid, query=f"q{qid}", vid=vid, duration=duration, windows=windows)


def test_main_window_is_the_longest_over_all_queries_of_the_video() -> None:
    """a: longest [70, 90] beats the earlier [0, 10] -> centre 0.8; b: the second query's window is
    longer -> 0.25; c: equal lengths -> the earliest start; d: equal windows -> the first listed."""
    queries = [
        _q(1, "a", [[0, 10], [70, 90]]),
        _q(2, "b", [[80, 90]], 200.0), _q(3, "b", [[20, 80]], 200.0),
        _q(4, "c", [[60, 70], [10, 20]]),
        _q(5, "d", [[30, 40]]), _q(6, "d", [[30, 40]]),
    ]
    assert main_window_centres(queries) == {"a": 0.8, "b": 0.25, "c": 0.15, "d": 0.35}


def _pool(n_videos: int) -> list[Query]:
    rng = random.Random(0)
    queries = []
    for v in range(n_videos):
        start = rng.randrange(0, 140, 2)
        queries.append(_q(v, f"vid{v}", [[start, start + 10]], 150.0))
        if v % 7 == 0:  # a second query on some videos
            queries.append(_q(10_000 + v, f"vid{v}", [[0, 4]], 150.0))
    return queries


def test_split_is_by_video_complete_and_shaped_by_the_rule() -> None:
    queries = _pool(400)
    splits = position_shift_split(queries)
    assert tuple(splits) == SPLITS
    assert sorted(q.qid for s in splits.values() for q in s) == sorted(q.qid for q in queries)
    vids = {name: {q.vid for q in s} for name, s in splits.items()}
    assert sum(len(v) for v in vids.values()) == len({q.vid for q in queries})
    rule, centres = SHIFT_VERSIONS["v1"], main_window_centres(queries)
    assert all(centres[v] >= rule.threshold for v in vids["test_ood"])
    region = [v for v in centres if centres[v] < rule.threshold]
    assert len(vids["val"]) == round(0.1 * len(region)) == len(vids["test_iid"])
    assert len(vids["train"]) == len(region) - 2 * round(0.1 * len(region))


def test_centre_on_the_threshold_is_out_of_distribution() -> None:
    splits = position_shift_split([_q(1, "on", [[50, 70]]), _q(2, "below", [[49, 69]])])
    assert [q.vid for q in splits["test_ood"]] == ["on"]


def test_split_depends_on_seed_and_version_only() -> None:
    queries = _pool(300)
    shuffled = random.Random(1).sample(queries, len(queries))
    first, again = position_shift_split(queries), position_shift_split(shuffled, seed=2024, version="v1")
    assert {k: sorted(q.qid for q in v) for k, v in first.items()} == {
        k: sorted(q.qid for q in v) for k, v in again.items()}
    other = position_shift_split(queries, seed=7)
    assert {q.qid for q in other["test_ood"]} == {q.qid for q in first["test_ood"]}
    assert {q.qid for q in other["val"]} != {q.qid for q in first["val"]}


@pytest.mark.parametrize(("queries", "kwargs", "words"), [
    ([_q(1, "a", [[0, 10]])], {"version": "v0"}, "unknown shift version 'v0'; known: v1"),
    ([], {}, "no queries"),
    ([_q(1, "a", [[0, 10]]), _q(1, "b", [[0, 10]])], {}, "qid 1: field 'qid': duplicate qid"),
    ([Query(qid=3, query="x", vid="a", duration=10.0)], {}, "qid 3: field 'relevant_windows'"),
    ([_q(1, "a", [[0, 10]]), _q(2, "a", [[0, 10]], 50.0)], {}, "qid 2: field 'duration': video 'a' has two"),
])
def test_bad_input_is_one_error(queries: list[Query], kwargs: dict, words: str) -> None:
    with pytest.raises(MrbenchError) as caught:
        position_shift_split(queries, **kwargs)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValidationError) or "qid" not in words


#: QVHighlights train + val, version v1, seed 2024: (queries, videos) per split, and the first 16
#: hex digits of the sha256 of the sorted qids per split (the split itself, on any machine).
PINNED = {
    "train": (4336, 4248), "val": (540, 531), "test_iid": (541, 531), "test_ood": (3351, 3309),
}
DIGEST = "4cd92d891906f944"


def test_real_qvhighlights_split_is_pinned() -> None:
    root = require_shared("data", "qvhighlights")
    queries = [q for name in ("train", "val")
               for q in read_annotations(root / f"highlight_{name}_release.jsonl").records]
    splits = position_shift_split(queries)
    assert {k: (len(v), len({q.vid for q in v})) for k, v in splits.items()} == PINNED
    digest = hashlib.sha256(repr({k: sorted(q.qid for q in v) for k, v in splits.items()}).encode()).hexdigest()
    assert digest[:16] == DIGEST

