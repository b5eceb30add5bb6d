"""The length prior baseline, by hand."""

from __future__ import annotations

import pytest

from mrbench.baselines import REGISTRY, LengthPrior, predict_baseline
from mrbench.data.schema import Query
from mrbench.errors import MrbenchError


def q(qid: int, duration: float, windows: list[list[float]] | None) -> Query:
    return Query(qid=qid, query=f"query {qid}", vid=f"v{qid}", duration=duration, windows=windows)


# normalized (length cell, centre cell) on 20 cells: (2, 1) x3, (2, 11) x2, (4, 6), (20, 10)
TRAIN = [
    q(1, 100.0, [[0.0, 10.0]]),
    q(2, 100.0, [[0.0, 10.0]]),
    q(3, 50.0, [[0.0, 5.0]]),
    q(4, 100.0, [[50.0, 60.0]]),
    q(5, 100.0, [[50.0, 60.0]]),
    q(6, 100.0, [[20.0, 40.0]]),
    q(7, 100.0, [[0.0, 100.0]]),
]


def test_fit_by_hand() -> None:
    prior = LengthPrior.fit(TRAIN, bins=20)
    assert prior.lengths == ((2, 5 / 7), (4, 1 / 7), (20, 1 / 7))  # ties: the shorter length first
    assert prior.centre == 1  # three windows centred in [0.05, 0.10)


def test_predict_by_hand() -> None:
    pred = LengthPrior.fit(TRAIN, bins=20).predict(q(9, 80.0, None), clip_len=2.0)
    # centre 0.075: length 0.1 -> [0.025, 0.125]; 0.2 and 1.0 are shifted to start at 0
    assert pred["pred_relevant_windows"] == [[2.0, 10.0, 0.7143], [0.0, 16.0, 0.1429], [0.0, 80.0, 0.1429]]
    saliency = pred["pred_saliency_scores"]
    assert len(saliency) == 40
    assert saliency[2] == 1.0  # clip centre 5 s: inside all three windows
    assert saliency[6] == 0.286  # 13 s: the 0.2 and whole-video windows
    assert saliency[20] == 0.143  # 41 s: the whole-video window only


def test_window_is_shifted_inside_the_video() -> None:
    prior = LengthPrior(lengths=((4, 1.0),), centre=19, bins=20)
    assert prior.window(4) == pytest.approx((0.8, 1.0))
    assert prior.window(20) == pytest.approx((0.0, 1.0))


def test_uses_length_only_not_the_query() -> None:
    a, b = q(10, 60.0, None), Query(qid=11, query="something else", vid="w", duration=60.0, windows=None)
    pa, pb = (predict_baseline("length_prior", [x], clip_len=2.0, train=TRAIN)[0] for x in (a, b))
    assert pa["pred_relevant_windows"] == pb["pred_relevant_windows"]
    assert pa["pred_saliency_scores"] == pb["pred_saliency_scores"]


def test_registered_and_needs_training_data() -> None:
    baseline = REGISTRY["length_prior"]
    assert baseline.needs_train and not baseline.seeded and baseline.title == "Blind: length prior"
    with pytest.raises(MrbenchError, match="needs the training split"):
        predict_baseline("length_prior", [q(1, 10.0, None)], clip_len=1.0)
    with pytest.raises(MrbenchError, match="no windows"):
        LengthPrior.fit([q(1, 10.0, None)])
