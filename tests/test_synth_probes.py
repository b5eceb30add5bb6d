"""The planted cues are really there and tunable: the context-only probe and the position prior.

Margins: with K = 6 concepts and 180 test queries, the accuracy of a chance-level probe has a
standard deviation of sqrt(1/6 * 5/6 / 180) = 0.028; "at chance" allows 1/6 + 0.12 (over 4
standard deviations), "far above chance" asks for 0.5 or more (the measured values are ~0.9 with
both context cues, ~0.7 with the flank cue alone). Seeds are fixed, so the results are also
reproducible exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrbench.data.dataset import DatasetDir
from mrbench.data.probes import (
    NearestCentroid,
    SoftmaxRegression,
    concepts,
    context_probe,
    context_vector,
    context_vectors,
    fit_position_prior,
    position_prior_r1,
    r1_at,
    span_iou,
)
from mrbench.data.schema import Query
from mrbench.data.synth import VIDEO_TYPES, SynthConfig, generate, plan, render
from mrbench.errors import MrbenchError

K = 6
CHANCE = 1 / K
AT_CHANCE = CHANCE + 0.12
FAR_ABOVE = 0.5
SIZES = dict(n_train=240, n_val=180, n_ood=180, concepts=K)


def in_memory(config: SynthConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Context vectors and concepts per split, rendered without writing files."""
    world, videos = plan(config)
    rows: dict[str, tuple[list, list]] = {}
    for first in range(0, len(videos), 64):
        batch = videos[first : first + 64]
        features = render(config, world, batch)
        for i, video in enumerate(batch):
            (q,) = video.queries
            vector = context_vector({t: features[t][i, : video.n_clips] for t in VIDEO_TYPES},
                                    q.record.windows, config.clip_len)
            rows.setdefault(q.split, ([], []))[0].append(vector)
            rows[q.split][1].append(q.concept)
    return {split: (np.stack(x), np.array(y)) for split, (x, y) in rows.items()}


def accuracies(data: dict[str, tuple[np.ndarray, np.ndarray]], method: str) -> dict[str, float]:
    model = NearestCentroid() if method == "centroid" else SoftmaxRegression()
    model.fit(*data["train"])
    return {split: float(np.mean(model.predict(x) == y)) for split, (x, y) in data.items()}


@pytest.fixture(scope="module")
def strong(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SynthConfig(**SIZES, rho_scene=0.9, rho_flank=0.9, rho_position=0.9)
    return generate(config, tmp_path_factory.mktemp("probe") / "strong", progress=False)


@pytest.fixture(scope="module")
def none() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return in_memory(SynthConfig(**SIZES, rho_scene=0.0, rho_flank=0.0, rho_position=0.0))


@pytest.mark.parametrize("method", ["centroid", "softmax"])
def test_context_probe_finds_planted_cues_and_only_them(
    strong: Path, none: dict[str, tuple[np.ndarray, np.ndarray]], method: str
) -> None:
    measured = context_probe(strong, "train", ("val", "val_ood", "test_ood"), method=method)
    assert measured["val"] >= FAR_ABOVE
    assert measured["val_ood"] < AT_CHANCE and measured["test_ood"] < AT_CHANCE
    without = accuracies(none, method)
    assert without["val"] < AT_CHANCE and without["val_ood"] < AT_CHANCE


def test_flank_cue_alone_is_visible_to_a_linear_probe() -> None:
    measured = accuracies(in_memory(SynthConfig(**SIZES, rho_scene=0.0, rho_flank=0.9, seed=1)), "softmax")
    assert measured["val"] >= FAR_ABOVE
    assert measured["val_ood"] < AT_CHANCE


def test_scene_cue_alone_is_visible_to_nearest_centroid() -> None:
    measured = accuracies(in_memory(SynthConfig(**SIZES, rho_scene=0.9, rho_flank=0.0, seed=2)), "centroid")
    assert measured["val"] >= FAR_ABOVE
    assert measured["val_ood"] < AT_CHANCE


def test_in_memory_vectors_equal_the_written_files(strong: Path) -> None:
    x, records = context_vectors(strong, "val", VIDEO_TYPES)
    config = SynthConfig(**SIZES, rho_scene=0.9, rho_flank=0.9, rho_position=0.9)
    rebuilt, concepts_ = in_memory(config)["val"]
    assert np.array_equal(x, rebuilt)
    assert np.array_equal(concepts(strong, records), concepts_)


def _records_by_split(config: SynthConfig) -> dict[str, list[Query]]:
    _, videos = plan(config)
    out: dict[str, list[Query]] = {}
    for video in videos:
        for q in video.queries:
            out.setdefault(q.split, []).append(q.record)
    return out


def test_position_prior_rises_with_rho_position() -> None:
    """Measured: R1@0.5 = 0.12, 0.38, 0.60 on val at rho 0, 0.5, 0.9; 0.11-0.15 on val_ood."""
    scores = []
    for rho in (0.0, 0.5, 0.9):
        records = _records_by_split(SynthConfig(n_train=600, n_val=300, n_ood=300, rho_position=rho))
        scores.append(position_prior_r1(records["train"], records["val"]))
        assert position_prior_r1(records["train"], records["val_ood"]) < 0.2
    assert scores[0] < 0.2
    assert scores[1] > scores[0] + 0.1 and scores[2] > scores[1] + 0.1


def test_position_prior_on_a_written_dataset(strong: Path) -> None:
    data = DatasetDir(strong)
    train = data.load("train").records
    assert position_prior_r1(train, data.load("val").records) > position_prior_r1(train, data.load("val_ood").records) + 0.2


def _query(qid: int, windows: list[list[float]], duration: float = 100.0) -> Query:
    return Query(qid=qid, query="q", vid=f"v{qid}", duration=duration, windows=windows)


def test_span_iou_and_r1_by_hand() -> None:
    assert span_iou(np.array([0.0, 10.0]), np.array([5.0, 15.0])) == pytest.approx(5 / 15)
    assert span_iou(np.array([0.0, 10.0]), np.array([10.0, 15.0])) == 0.0
    assert span_iou(np.array([2.0, 4.0]), np.array([2.0, 4.0])) == 1.0
    records = [_query(0, [[0, 10], [50, 60]]), _query(1, [[20, 40]])]
    # query 0: best window [50, 60] vs [52, 60] -> 0.8; query 1: [20, 40] vs [30, 50] -> 1/3
    pred = np.array([[52.0, 60.0], [30.0, 50.0]])
    assert r1_at(pred, records, 0.5) == 0.5
    assert r1_at(pred, records, 0.3) == 1.0
    assert r1_at(pred, records, 0.9) == 0.0


def test_fit_position_prior_by_hand() -> None:
    # any window with IoU >= 0.5 against [0.2, 0.4] hits 5 of 6; [0.2, 0.4] itself has the best IoU
    records = [_query(i, [[20, 40]]) for i in range(5)] + [_query(9, [[140, 180]], duration=200.0)]
    assert fit_position_prior(records) == pytest.approx((0.2, 0.4))
    with pytest.raises(MrbenchError, match="at least one"):
        fit_position_prior([_query(1, [[0, 1]]), Query(2, "q", "v", 10.0)])


def test_classifiers_on_separable_points() -> None:
    rng = np.random.default_rng(0)
    centers = np.eye(4, 8) * 5
    y = np.repeat(np.arange(4), 30)
    x = centers[y] + rng.normal(0, 1, size=(120, 8))
    for model in (NearestCentroid(), SoftmaxRegression()):
        assert np.mean(model.fit(x, y).predict(x) == y) > 0.95
