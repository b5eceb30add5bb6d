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
from mrbench.data.schema import Query
from mrbench.data.synth import VIDEO_TYPES, SynthConfig, generate, plan, render
from mrbench.errors import MrbenchError
from mrbench.probes import (
    NearestCentroid,
    SoftmaxRegression,
    concepts,
    context_probe,
    context_vector,
    context_vectors,
    position_prior_r1,
    top1_r1,
)

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


def test_top1_r1_by_hand() -> None:
    records = [_query(0, [[0, 10], [50, 60]]), _query(1, [[20, 40]])]
    # query 0: best window [50, 60] vs [52, 60] -> 0.8; query 1: [20, 40] vs [30, 50] -> 1/3
    pred = np.array([[52.0, 60.0], [30.0, 50.0]])
    assert top1_r1(pred, records, 0.5) == 0.5
    assert top1_r1(pred, records, 0.3) == 1.0
    assert top1_r1(pred, records, 0.9) == 0.0
    # IoU exactly at the threshold counts: [0, 10] vs [0, 5] -> 0.5
    assert top1_r1(np.array([[0.0, 5.0]]), [_query(2, [[0, 10]])], 0.5) == 1.0
    assert np.isnan(top1_r1(np.zeros((0, 2)), [], 0.5))


def test_position_prior_r1_by_hand() -> None:
    # training: [0.2, 0.4] three times, [0.6, 0.8] twice -> top-1 is [0.2, 0.4] of each test video
    train = [_query(i, [[20, 40]]) for i in range(3)] + [_query(10 + i, [[60, 80]]) for i in range(2)]
    test = [_query(20, [[40, 80]], duration=200.0), _query(21, [[60, 80]]), _query(22, [[25, 40]])]
    # [40, 80] of 200 s: IoU 1; [20, 40] vs [60, 80]: 0; [20, 40] vs [25, 40]: 0.75
    assert position_prior_r1(train, test, 0.5) == pytest.approx(2 / 3)
    assert position_prior_r1(train, test, 0.8) == pytest.approx(1 / 3)
    with pytest.raises(MrbenchError, match="no windows"):
        position_prior_r1([Query(2, "q", "v", 10.0)], test)


def test_classifiers_on_separable_points() -> None:
    rng = np.random.default_rng(0)
    centers = np.eye(4, 8) * 5
    y = np.repeat(np.arange(4), 30)
    x = centers[y] + rng.normal(0, 1, size=(120, 8))
    for model in (NearestCentroid(), SoftmaxRegression()):
        assert np.mean(model.fit(x, y).predict(x) == y) > 0.95
