"""Blind baselines: hand-computed position prior, whole video, seeded uniform random."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrbench.baselines import BASELINES, PositionPrior, n_clips, predict_baseline
from mrbench.data.schema import Query
from mrbench.errors import MrbenchError


def q(qid: int, duration: float, windows: list[list[float]] | None, vid: str = "v") -> Query:
    return Query(qid=qid, query=f"query {qid}", vid=f"{vid}{qid}", duration=duration, windows=windows)


TRAIN = [
    q(1, 100.0, [[0.0, 10.0]]),
    q(2, 100.0, [[0.0, 10.0]]),
    q(3, 50.0, [[0.0, 5.0]]),
    q(4, 100.0, [[50.0, 60.0]]),
    q(5, 100.0, [[50.0, 60.0]]),
    q(6, 100.0, [[20.0, 40.0]]),
]


def test_position_prior_hand_computed() -> None:
    # normalized windows on a 20-cell grid: (0, 2) x3, (10, 12) x2, (4, 8) x1 of 6 windows
    prior = PositionPrior.fit(TRAIN, bins=20)
    assert prior.cells == ((0, 2, 0.5), (10, 12, 2 / 6), (4, 8, 1 / 6))
    pred = prior.predict(q(9, 50.0, None), clip_len=2.0)
    assert pred["pred_relevant_windows"] == [[0.0, 5.0, 0.5], [25.0, 30.0, 0.3333], [10.0, 20.0, 0.1667]]
    # saliency: share of training queries covering each clip center (clip 0 center = 1 s = 0.02)
    saliency = pred["pred_saliency_scores"]
    assert len(saliency) == 25
    assert saliency[0] == 0.5  # covered by queries 1, 2, 3
    assert saliency[12] == 0.333  # center 25 s = 0.5: queries 4, 5
    assert saliency[5] == 0.167  # center 11 s = 0.22: query 6 (0.2..0.4)
    assert saliency[20] == 0.0  # center 41 s = 0.82: nobody


def test_position_prior_ties_break_by_position() -> None:
    prior = PositionPrior.fit([q(1, 10.0, [[5.0, 10.0]]), q(2, 10.0, [[0.0, 5.0]])], bins=2)
    assert prior.cells == ((0, 1, 0.5), (1, 2, 0.5))


def test_position_prior_needs_training_windows() -> None:
    with pytest.raises(MrbenchError, match="no windows"):
        PositionPrior.fit([q(1, 10.0, None)])
    with pytest.raises(MrbenchError, match="needs the training split"):
        predict_baseline("position_prior", [q(1, 10.0, None)], clip_len=2.0)


def test_whole_video() -> None:
    (pred,) = predict_baseline("whole_video", [q(7, 31.0, None)], clip_len=2.0)
    assert pred["pred_relevant_windows"] == [[0.0, 31.0, 1.0]]
    assert pred["pred_saliency_scores"] == [1.0] * 16
    assert pred["qid"] == 7 and pred["vid"] == "v7"


def test_uniform_random_is_seeded_per_query() -> None:
    queries = [q(i, 150.0, None) for i in range(5)]
    a = predict_baseline("uniform_random", queries, clip_len=2.0, seed=0)
    b = predict_baseline("uniform_random", list(reversed(queries)), clip_len=2.0, seed=0)
    c = predict_baseline("uniform_random", queries, clip_len=2.0, seed=1)
    by_qid = {p["qid"]: p for p in b}
    for p in a:
        assert p["pred_relevant_windows"] == by_qid[p["qid"]]["pred_relevant_windows"]
    assert a[0]["pred_relevant_windows"] != c[0]["pred_relevant_windows"]
    # a masked copy (same qid, another vid) gets the same windows: the baseline is blind
    masked = predict_baseline("uniform_random", [q(0, 150.0, None, vid="masked")], clip_len=2.0, seed=0)
    assert masked[0]["pred_relevant_windows"] == a[0]["pred_relevant_windows"]
    assert masked[0]["vid"] != a[0]["vid"]


def test_unknown_baseline() -> None:
    with pytest.raises(MrbenchError, match="unknown baseline"):
        predict_baseline("oracle", [], clip_len=2.0)


def test_n_clips() -> None:
    assert n_clips(150.0, 2.0) == 75
    assert n_clips(31.0, 2.0) == 16
    assert n_clips(0.5, 2.0) == 1


windows_st = st.tuples(st.floats(0.0, 0.98), st.floats(0.01, 1.0)).map(lambda t: sorted(t)).filter(lambda t: t[1] - t[0] > 0.005)


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(st.tuples(st.floats(5.0, 300.0), windows_st), min_size=1, max_size=20),
    durations=st.lists(st.floats(1.0, 300.0), min_size=1, max_size=5),
    seed=st.integers(0, 2**31),
    name=st.sampled_from(BASELINES),
)
def test_every_baseline_gives_valid_windows(train, durations, seed, name) -> None:  # noqa: ANN001
    train_q = [q(i, d, [[s * d, e * d]]) for i, (d, (s, e)) in enumerate(train)]
    queries = [q(100 + i, d, None) for i, d in enumerate(durations)]
    preds = predict_baseline(name, queries, clip_len=2.0, train=train_q, seed=seed)
    assert [p["qid"] for p in preds] == [x.qid for x in queries]
    for pred, query in zip(preds, queries, strict=True):
        windows = pred["pred_relevant_windows"]
        assert 1 <= len(windows) <= 10
        for start, end, score in windows:
            assert 0.0 <= start < end <= query.duration + 1e-6
            assert score >= 0.0
        scores = [w[2] for w in windows]
        assert scores == sorted(scores, reverse=True)
        assert len(pred["pred_saliency_scores"]) == n_clips(query.duration, 2.0)
