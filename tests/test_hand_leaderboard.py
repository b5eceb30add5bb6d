"""Hand cases for the leaderboard's aggregation over seeds (issue 18): mean and *sample*
standard deviation (n - 1), a missing value poisoning only its own metric, a single seed
without a spread, and the flattening of a score report into one row of numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mrbench.leaderboard.submission import Submission
from mrbench.leaderboard.table import aggregate, make_row
from mrbench.scoring.report import flatten_report


def test_aggregate_mean_and_sample_std() -> None:
    """Values 1, 2, 6: mean 3; squared deviations 4 + 1 + 9 = 14; sample variance 14 / 2 = 7."""
    mean, std, n = aggregate([1.0, 2.0, 6.0])
    assert (mean, n) == (3.0, 3)
    assert std == pytest.approx(math.sqrt(7.0), abs=1e-12)


def test_aggregate_two_values() -> None:
    """40 and 42: mean 41, sample std sqrt(2) (not 1, the population std)."""
    assert aggregate([40.0, 42.0]) == (41.0, pytest.approx(math.sqrt(2.0)), 2)


def test_aggregate_one_value_has_no_spread() -> None:
    """A single seed: its value, no std, n = 1."""
    assert aggregate([12.5]) == (12.5, None, 1)


def test_aggregate_missing_values_give_none_but_keep_n() -> None:
    """A None among the seeds (e.g. an undefined ratio) makes the mean and std None; n counts
    the seeds; an empty list is (None, None, 0)."""
    assert aggregate([1.0, None, 3.0]) == (None, None, 3)
    assert aggregate([None]) == (None, None, 1)
    assert aggregate([]) == (None, None, 0)


def test_aggregate_is_exactly_rounded() -> None:
    """fsum: ten times 0.1 averages to exactly 0.1 with zero spread (a plain sum drifts)."""
    mean, std, n = aggregate([0.1] * 10)
    assert mean == 0.1 and std == 0.0 and n == 10


def test_flatten_report_takes_brief_additions_and_spurious_brief() -> None:
    """Numbers of the three blocks in one dict; None and non-finite values become None;
    booleans, strings and nested blocks are left out."""
    report = {
        "brief": {"MR-full-mAP": 40.5, "MR-full-R1@0.5": 60},
        "full": {"MR-mAP": {"0.5": 1.0}},
        "mrbench": {"n_queries": 3, "n_missing": 0, "MR-full-mIoU": float("nan"), "flag": True, "note": "x"},
        "spurious": {"brief": {"Spurious-mAP": 5.0, "Ratio-mAP": None}, "std": {"Spurious-mAP": 1.0}},
        "meta": {"dataset": "d"},
    }
    assert flatten_report(report) == {
        "MR-full-mAP": 40.5, "MR-full-R1@0.5": 60.0, "n_queries": 3.0, "n_missing": 0.0,
        "MR-full-mIoU": None, "Spurious-mAP": 5.0, "Ratio-mAP": None,
    }
    assert isinstance(flatten_report(report)["MR-full-R1@0.5"], float)
    assert flatten_report({"brief": {"x": float("inf")}}) == {"x": None}
    assert flatten_report({"brief": {"x": 1.0}, "spurious": {"std": {"y": 2.0}}}) == {"x": 1.0}
    assert flatten_report({}) == {}


def submission(seeds: tuple[int, ...]) -> Submission:
    """A minimal validated-looking entry (only its seeds and metadata are used)."""
    return Submission(entry_id="e", root=Path("/nonexistent"), name="E", model="m", kind="model",
                      features=("clip",), dataset="d", split="val", seeds=seeds, date="2026-01-01",
                      submitted_by="t", test_answers_used=False, self_scored=False)


def test_make_row_aggregates_each_metric_over_the_entrys_seeds() -> None:
    """Per metric over the seeds the entry declares: mAP (40, 42) -> 41 +- sqrt 2; a metric a
    seed lacks counts as missing (None); the per-seed values are kept."""
    per_seed = {0: {"mAP": 40.0, "R1": 10.0}, 1: {"mAP": 42.0}}
    row = make_row(submission((0, 1)), per_seed)
    assert list(row.stats) == ["R1", "mAP"]
    assert row.stats["mAP"] == (41.0, pytest.approx(math.sqrt(2.0)), 2)
    assert row.stats["R1"] == (None, None, 2)
    assert row.per_seed == per_seed
    assert row.meta["entry"] == "e" and row.meta["seeds"] == [0, 1]
    single = make_row(submission((1,)), per_seed)
    assert single.stats["mAP"] == (42.0, None, 1)
