"""End-to-end ``score()`` cases with hand-computed reports (issue 18): exact thresholds,
durations that are not a multiple of the clip length, HIT@1 at and past the last clip, the
spurious block with ``allow_missing``, centre-in-mask, bootstrap intervals against the exact
bootstrap distribution, and in-memory ground truth validation. No ../shared needed."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mrbench.data.schema import Query
from mrbench.errors import MrbenchError, ValidationError
from mrbench.scoring import load_ground_truth, score
from mrbench.scoring.bootstrap import bootstrap_intervals
from mrbench.scoring.core import pct

KS = list(range(10, 20))  # top-1 [0, k] on GT [0, 20]: IoU exactly k / 20 = 0.5 ... 0.95


def gt_record(qid: int | str, windows: list[list[float]], duration: float = 100.0, **extra: Any) -> dict[str, Any]:
    """One community-format ground-truth line."""
    return {"qid": qid, "query": f"q{qid}", "vid": f"v{qid}", "duration": duration,
            "relevant_windows": windows, **extra}


def exact_threshold_gt() -> list[dict[str, Any]]:
    """Ten queries with one GT window [0, 20] each (length 20: the 'middle' bucket only)."""
    return [gt_record(k, [[0.0, 20.0]]) for k in KS]


def exact_threshold_preds(ks: list[int] = KS) -> list[dict[str, Any]]:
    """Query k predicts [0, k] (and a far miss after it)."""
    return [{"qid": k, "pred_relevant_windows": [[0.0, float(k), 0.9], [80.0, 90.0, 0.1]]} for k in ks]


# query k hits at every threshold j/20 <= k/20: R1@(j/20) = #{k >= j} / 10 = (20 - j) / 10
EXPECTED_BY_THRESHOLD = {str(j / 20): 10.0 * (20 - j) for j in KS}


def test_r1_and_map_at_exact_thresholds_end_to_end() -> None:
    """IoUs exactly at each threshold count as hits in R1 and mAP: 100, 90, ..., 10; mAP's
    average is their mean (55); the GT windows (length 20) are in the middle bucket only."""
    report = score(exact_threshold_preds(), exact_threshold_gt()).to_dict()
    assert report["full"]["MR-R1"] == EXPECTED_BY_THRESHOLD
    expected_map = dict(EXPECTED_BY_THRESHOLD, average=55.0)
    assert report["full"]["MR-mAP"] == expected_map
    assert report["middle"]["MR-mAP"] == expected_map
    assert "short" not in report and "long" not in report
    assert report["brief"] == {
        "MR-full-R1@0.5": 100.0, "MR-full-R1@0.7": 60.0, "MR-full-mAP": 55.0,
        "MR-full-mAP@0.5": 100.0, "MR-full-mAP@0.75": 50.0, "MR-middle-mAP": 55.0,
    }
    extra = report["mrbench"]
    # mIoU = mean(k / 20) = 145 / 200; R5 sees the same top pair as R1
    assert extra["MR-full-mIoU"] == 72.5
    assert extra["MR-full-R1@0.3"] == 100.0
    assert (extra["MR-full-R5@0.3"], extra["MR-full-R5@0.5"], extra["MR-full-R5@0.7"]) == (100.0, 100.0, 60.0)
    # dR1: alpha = 1 * (1 - (20 - k) / 100); at 0.3/0.5 all hit: 1 - 5.5 / 100; at 0.7 k >= 14
    assert extra["MR-full-dR1@0.3"] == 94.5
    assert extra["MR-full-dR1@0.5"] == 94.5
    assert extra["MR-full-dR1@0.7"] == pytest.approx(57.9)
    assert extra["n_queries"] == 10 and extra["n_missing"] == 0


def test_buckets_split_queries_by_gt_length() -> None:
    """A 10-s window (short, high bound inclusive) and a 40-s window (long) in two queries: each
    bucket scores only its own query; the full block averages both."""
    gt = [gt_record(1, [[0.0, 10.0]]), gt_record(2, [[0.0, 40.0]])]
    preds = [{"qid": 1, "pred_relevant_windows": [[0.0, 10.0, 1.0]]},
             {"qid": 2, "pred_relevant_windows": [[60.0, 70.0, 1.0]]}]
    report = score(preds, gt).to_dict()
    assert report["short"]["MR-mAP"]["average"] == 100.0
    assert report["long"]["MR-mAP"]["average"] == 0.0
    assert report["full"]["MR-R1"]["0.5"] == 50.0
    assert "middle" not in report
    assert report["brief"]["MR-short-mAP"] == 100.0 and report["brief"]["MR-long-mAP"] == 0.0


def test_map_tie_between_adjacent_gt_windows_end_to_end() -> None:
    """Issue 18's case: GT [0,10] and [10,20], predictions [0,20] (IoU 0.5 with both) then
    [0,10]. The later window wins the tie, so both predictions are TPs: mAP@0.5 = 100."""
    gt = [gt_record("a", [[0.0, 10.0], [10.0, 20.0]])]
    preds = [{"qid": "a", "pred_relevant_windows": [[0.0, 20.0, 0.9], [0.0, 10.0, 0.8]]}]
    report = score(preds, gt).to_dict()
    assert report["full"]["MR-mAP"]["0.5"] == 100.0
    # R1: top-1 [0, 20] against the first window (tie -> first), hull IoU 0.5
    assert report["full"]["MR-R1"]["0.5"] == 100.0 and report["full"]["MR-R1"]["0.55"] == 0.0


def test_missing_queries_raise_unless_allowed_and_then_score_zero() -> None:
    """Without k = 19 the ground truth has a query with no prediction: an error, or with
    ``allow_missing`` a zero for it (R1@0.95: 0, R1@0.5: 90) and ``n_missing`` 1."""
    with pytest.raises(ValidationError, match="allow-missing"):
        score(exact_threshold_preds(KS[:-1]), exact_threshold_gt())
    report = score(exact_threshold_preds(KS[:-1]), exact_threshold_gt(), allow_missing=True).to_dict()
    assert report["full"]["MR-R1"]["0.5"] == 90.0
    assert report["full"]["MR-R1"]["0.95"] == 0.0
    assert report["full"]["MR-mAP"]["0.5"] == 90.0
    assert report["mrbench"]["n_missing"] == 1 and report["mrbench"]["n_queries"] == 10
    assert report["mrbench"]["MR-full-mIoU"] == pytest.approx(100 * (145 - 19) / 200)


def write_variant(directory: Path, regions: dict[int, list[list[float]]], gt: list[dict[str, Any]],
                  **fields: Any) -> Path:
    """A minimal masked-variant directory: manifest.json with each query's masked regions (and
    any other manifest ``fields``)."""
    directory.mkdir(parents=True)
    (directory / "annotations").mkdir()
    (directory / "annotations" / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gt))
    manifest = {"split": "val", "queries": {str(q): {"masked_windows": w} for q, w in regions.items()}, **fields}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_spurious_block_with_allow_missing_by_hand(tmp_path: Path) -> None:
    """Masked predictions identical to the main ones but without query 19 (allowed missing).
    Hand values over the 10 GT queries (missing -> 0): Spurious-R1@0.5/0.7/0.9 = 9, 5, 1 of 10;
    mAP@0.5 = 90, @0.75 = 40 (k in 15..18), mAP = 45 (sum over j of #{k <= 18, k >= j} / 100);
    Ratio = 55 / 45; the top-1 agreement is 1 for the 9 present queries; every centre k / 2
    lies exactly on the end of its masked region [0, k / 2] -> inside, the missing one is not."""
    gt = exact_threshold_gt()
    variant = write_variant(tmp_path / "variant", {k: [[0.0, k / 2]] for k in KS}, gt)
    report = score(exact_threshold_preds(), gt, masked=[exact_threshold_preds(KS[:-1])],
                   variant=variant, allow_missing=True).to_dict()
    spurious = report["spurious"]
    assert spurious["n_files"] == 1
    assert spurious["brief"] == {
        "Spurious-R1@0.5": 90.0, "Spurious-R1@0.7": 50.0, "Spurious-R1@0.9": 10.0,
        "Spurious-mAP@0.5": 90.0, "Spurious-mAP@0.75": 40.0, "Spurious-mAP": 45.0,
        "Ratio-mAP": 1.22, "Center-in-mask": 90.0, "Top1-IoU-orig-vs-masked": 90.0,
    }
    assert set(spurious["std"].values()) == {None}
    assert spurious["per_file"][0]["Spurious-mAP"] == 45.0
    assert report["brief"]["MR-full-mAP"] == 55.0


def test_spurious_centre_outside_and_std_over_two_files(tmp_path: Path) -> None:
    """Two masked files: the first as above, the second predicts far from every window
    (R1 0, centre 85 outside [0, k/2]). Means of the two files; std with ddof = 1:
    R1@0.5 = (90 + 0) / 2 = 45, std 0.9 / sqrt(2); the far file's spurious mAP is 0, so its
    Ratio-mAP is undefined and the mean and std of the ratio are None."""
    gt = exact_threshold_gt()
    variant = write_variant(tmp_path / "variant", {k: [[0.0, k / 2]] for k in KS}, gt)
    far = [{"qid": k, "pred_relevant_windows": [[80.0, 90.0, 0.9]]} for k in KS]
    report = score(exact_threshold_preds(), gt, masked=[exact_threshold_preds(KS[:-1]), far],
                   variant=variant, allow_missing=True).to_dict()
    spurious = report["spurious"]
    assert spurious["n_files"] == 2
    assert spurious["brief"]["Spurious-R1@0.5"] == 45.0
    assert spurious["std"]["Spurious-R1@0.5"] == pct(0.9 / math.sqrt(2))
    assert spurious["brief"]["Center-in-mask"] == 45.0
    assert spurious["brief"]["Ratio-mAP"] is None and spurious["std"]["Ratio-mAP"] is None
    assert [f["Spurious-mAP"] for f in spurious["per_file"]] == [45.0, 0.0]
    # top-1 agreement of the far file: [80, 90] vs [0, k] never overlap -> 0
    assert spurious["per_file"][1]["Top1-IoU-orig-vs-masked"] == 0.0


def test_spurious_without_variant_has_no_centre_in_mask() -> None:
    """No manifest: the block has no Center-in-mask entry at all (not a zero)."""
    report = score(exact_threshold_preds(), exact_threshold_gt(), masked=[exact_threshold_preds()]).to_dict()
    assert "Center-in-mask" not in report["spurious"]["brief"]
    assert report["spurious"]["brief"]["Ratio-mAP"] == 1.0


def test_variant_gives_the_ground_truth_when_none_is_passed(tmp_path: Path) -> None:
    """``variant=`` alone: the ground truth comes from the variant's annotations."""
    gt = exact_threshold_gt()
    variant = write_variant(tmp_path / "variant", {k: [[0.0, 1.0]] for k in KS}, gt)
    report = score(exact_threshold_preds(), variant=variant).to_dict()
    assert report["brief"]["MR-full-mAP"] == 55.0


def test_variant_manifest_missing_a_query_is_an_error(tmp_path: Path) -> None:
    """A manifest without a GT query's regions cannot give Center-in-mask: an error naming it."""
    gt = exact_threshold_gt()
    variant = write_variant(tmp_path / "variant", {k: [[0.0, 1.0]] for k in KS[1:]}, gt)
    with pytest.raises(ValidationError, match="masked_windows"):
        score(exact_threshold_preds(), gt, masked=[exact_threshold_preds()], variant=variant)
    with pytest.raises(MrbenchError, match="variant directories"):
        score(exact_threshold_preds(), gt, masked=[exact_threshold_preds()], variant=[variant, variant, variant])


def highlight_gt() -> list[dict[str, Any]]:
    """Three queries of 3 clips each (clip length 2): durations 7 and 7 (not multiples: 3.5
    clips, floor 3) and 6. Labels per annotator: q1 clip 0 = (2, 3, 4); q2 clip 2 = (2, 2, 2);
    q3 clip 1 = (4, 1, 1)."""
    return [
        gt_record(1, [[0.0, 2.0]], duration=7, relevant_clip_ids=[0], saliency_scores=[[2, 3, 4]]),
        gt_record(2, [[4.0, 6.0]], duration=7, relevant_clip_ids=[2], saliency_scores=[[2, 2, 2]]),
        gt_record(3, [[2.0, 4.0]], duration=6, relevant_clip_ids=[1], saliency_scores=[[4, 1, 1]]),
    ]


def test_highlights_with_partial_last_clip_and_argmax_past_the_end() -> None:
    """q1 lists a 4th score (0.95, the argmax) for a clip the 7-s video does not have: it is
    cut (AP unaffected) and its HIT@1 is a miss. q2's argmax is its last clip (2), a hit at
    Fair. q3's argmax is clip 1.

    Per level, AP per annotator (clip 0 / 2 / 1 ranked first where positive):
      Fair  (>=2): q1 (1,1,1), q2 (1,1,1), q3 (1,0,0) -> mean 7/9;  HIT@1 (0, 1, 1) -> 2/3
      Good  (>=3): q1 (0,1,1), q2 (0,0,0), q3 (1,0,0) -> 1/3;       HIT@1 (0, 0, 1) -> 1/3
      VeryGood (>=4): q1 (0,0,1), q2 0, q3 (1,0,0)    -> 2/9;       HIT@1 (0, 0, 1) -> 1/3
    A clip count rounded up would keep q1's 0.95 as a 4th (negative) clip: AP 1/2 there."""
    preds = [
        {"qid": 1, "pred_saliency_scores": [0.9, 0.1, 0.2, 0.95]},
        {"qid": 2, "pred_saliency_scores": [0.1, 0.2, 0.9]},
        {"qid": 3, "pred_saliency_scores": [0.1, 0.8, 0.3]},
    ]
    with pytest.warns(UserWarning, match="clip count"):
        report = score(preds, highlight_gt()).to_dict()
    assert report["brief"] == {
        "HL-min-Fair-mAP": 77.78, "HL-min-Fair-Hit1": 66.67,
        "HL-min-Good-mAP": 33.33, "HL-min-Good-Hit1": 33.33,
        "HL-min-VeryGood-mAP": 22.22, "HL-min-VeryGood-Hit1": 33.33,
    }
    assert list(report["brief"]) == ["HL-min-Fair-mAP", "HL-min-Fair-Hit1", "HL-min-Good-mAP",
                                     "HL-min-Good-Hit1", "HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1"]
    assert "full" not in report


def test_highlight_missing_query_scores_zero() -> None:
    """With q3 missing (allowed), its AP and hit are 0: Fair mAP (1 + 1 + 0) / 3, HIT@1 1/3."""
    preds = [
        {"qid": 1, "pred_saliency_scores": [0.9, 0.1, 0.2]},
        {"qid": 2, "pred_saliency_scores": [0.1, 0.2, 0.9]},
    ]
    report = score(preds, highlight_gt(), allow_missing=True).to_dict()
    assert report["HL-min-Fair"] == {"HL-mAP": 66.67, "HL-Hit1": 66.67}


def test_clip_count_is_the_floor_of_duration_over_clip_length() -> None:
    """n_clips = int(duration / clip_len): 7 s -> 3 clips, 6 s -> 3, 1.9 s -> 0 at 2-s clips;
    a relevant clip id 3 in a 7-s video is out of range."""
    truth = load_ground_truth(highlight_gt())
    assert truth.n_clips.tolist() == [3, 3, 3]
    assert truth.saliency is not None and truth.saliency.shape == (3, 3, 3)
    assert truth.saliency[0, 0].tolist() == [2.0, 3.0, 4.0]
    assert truth.saliency[1, 2].tolist() == [2.0, 2.0, 2.0]
    one_second = load_ground_truth(highlight_gt(), clip_len=1.0)
    assert one_second.n_clips.tolist() == [7, 7, 6]
    bad = gt_record(4, [[0.0, 2.0]], duration=7, relevant_clip_ids=[3], saliency_scores=[[1, 1, 1]])
    with pytest.raises(ValidationError, match="below int"):
        load_ground_truth([bad])


def test_duplicate_qid_in_in_memory_ground_truth_is_an_error() -> None:
    """A list of dicts or of Query objects with a repeated qid is rejected, naming the qid."""
    records = [gt_record(5, [[0.0, 10.0]]), gt_record(6, [[0.0, 10.0]]), gt_record(5, [[20.0, 30.0]])]
    with pytest.raises(ValidationError, match="duplicate qid") as info:
        load_ground_truth(records)
    assert info.value.qid == 5 and info.value.line == 3
    queries = [Query.from_dict(r) for r in records]
    with pytest.raises(ValidationError, match="duplicate qid"):
        load_ground_truth(queries)
    with pytest.raises(ValidationError, match="duplicate qid"):
        score([{"qid": 5, "pred_relevant_windows": [[0, 10, 1]]}], records)


def test_ground_truth_windows_and_padding() -> None:
    """Windows padded per query with a mask; durations kept; an empty window list is refused."""
    truth = load_ground_truth([gt_record(1, [[0.0, 10.0], [20.0, 30.0]]), gt_record(2, [[5.0, 6.0]], duration=50)])
    assert truth.windows.tolist() == [[[0.0, 10.0], [20.0, 30.0]], [[5.0, 6.0], [0.0, 0.0]]]
    assert truth.window_mask.tolist() == [[True, True], [True, False]]
    assert truth.duration.tolist() == [100.0, 50.0]
    assert truth.saliency is None
    assert truth.index == {1: 0, 2: 1}
    with pytest.raises(ValidationError):
        load_ground_truth([])


def binomial_quantile(n: int, p: float, level: float) -> tuple[int, float]:
    """Smallest x with P(Bin(n, p) <= x) >= level, and the distance of the CDF on either side
    of x from ``level`` (how far a sampled quantile is from flipping)."""
    cdf = 0.0
    for x in range(n + 1):
        previous = cdf
        cdf += math.comb(n, x) * p**x * (1 - p) ** (n - x)
        if cdf >= level:
            return x, min(cdf - level, level - previous)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_bootstrap_interval_is_the_exact_95_percent_bootstrap_interval(seed: int) -> None:
    """For a 0/1 metric with 25 ones among Q = 50 queries, a bootstrap replicate's mean is
    Bin(50, 1/2) / 50 exactly, so the 2.5 % and 97.5 % percentiles are 18/50 and 32/50
    (computed here from the binomial CDF, with a margin of > 6 sampling standard deviations at
    20000 replicates). A 90 % interval would give [38, 62]; Q/(Q-1) scaling [36.73, 65.31]."""
    n_queries, ones, n_boot = 50, 25, 20000
    low, low_margin = binomial_quantile(n_queries, ones / n_queries, 0.025)
    high, high_margin = binomial_quantile(n_queries, ones / n_queries, 0.975)
    sigma = math.sqrt(0.025 * 0.975 / n_boot)
    assert min(low_margin, high_margin) > 6 * sigma
    values = np.array([1.0] * ones + [0.0] * (n_queries - ones))
    intervals = bootstrap_intervals({"hit": values}, n_boot=n_boot, seed=seed)
    assert intervals == {"hit": [100 * low / n_queries, 100 * high / n_queries]} == {"hit": [36.0, 64.0]}


def test_bootstrap_level_and_shared_resamples() -> None:
    """``level`` picks the percentiles (0.9 -> [38, 62] for the same distribution); every key
    uses the same resamples, so a key and its complement have mirrored intervals."""
    values = np.array([1.0] * 25 + [0.0] * 25)
    ninety = bootstrap_intervals({"hit": values}, n_boot=20000, seed=0, level=0.9)
    assert ninety == {"hit": [38.0, 62.0]}
    both = bootstrap_intervals({"a": values, "b": 1.0 - values}, n_boot=500, seed=3)
    assert both["a"][0] == pytest.approx(100 - both["b"][1])
    assert both["a"][1] == pytest.approx(100 - both["b"][0])
    assert bootstrap_intervals({}) == {}


def test_bootstrap_replicates_resample_the_queries() -> None:
    """A constant metric has a zero-width interval at its value; a metric over one query too."""
    assert bootstrap_intervals({"c": np.full(30, 0.25)}, n_boot=200, seed=1) == {"c": [25.0, 25.0]}
    assert bootstrap_intervals({"c": np.array([0.5])}, n_boot=50, seed=1) == {"c": [50.0, 50.0]}


def test_score_ci_intervals_use_per_query_values() -> None:
    """score(ci=True): the R1@0.5 of the exact-threshold case is 1 for every query, so its
    interval is [100, 100]; R1@0.7 (6 of 10 hit) brackets 60 and stays inside [0, 100]."""
    report = score(exact_threshold_preds(), exact_threshold_gt(), ci=True, n_boot=300, seed=2).to_dict()
    intervals = report["intervals"]
    assert intervals["MR-full-R1@0.5"] == [100.0, 100.0]
    low, high = intervals["MR-full-R1@0.7"]
    assert 0.0 <= low < 60.0 < high <= 100.0
    assert intervals["MR-full-mIoU"][0] < 72.5 < intervals["MR-full-mIoU"][1]
    assert {"MR-full-mAP", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-R5@0.7",
            "MR-full-dR1@0.5", "MR-full-R1@0.3"} <= set(intervals)
    assert intervals["MR-full-mAP@0.5"] == [100.0, 100.0]


def test_pct_is_the_reference_rounding() -> None:
    """``float(f"{100 * x:.2f}")``: half-way cases follow the binary value, not round-half-up."""
    assert pct(0.5555) == 55.55
    assert pct(2 / 3) == 66.67
    assert pct(0.123449) == 12.34
    assert pct(1.0) == 100.0


def test_report_table_hand_layout() -> None:
    """The printed table: title, counts, headline (MR style without highlights), the full R1 and
    mAP rows, the bucket row, the extra MR numbers, then the spurious block (one file: no spread)."""
    report = score(exact_threshold_preds(), exact_threshold_gt(), masked=[exact_threshold_preds(KS[:5])],
                   allow_missing=True)
    lines = report.format_table().splitlines()
    assert lines[:3] == ["mrbench score: <predictions>", "10 queries", "-- headline"]
    rows = {line.split("  ")[1].strip(): line for line in lines if line.startswith("  ")}
    assert rows["R1@0.5"].split()[-1] == "100.00" and rows["R1@0.7"].split()[-1] == "60.00"
    assert rows["mIoU"].split()[-1] == "72.50" and rows["mAP"].split()[-1] == "55.00"
    assert rows["R1@0.5:0.95"].split()[1:] == [f"{v:.2f}" for v in EXPECTED_BY_THRESHOLD.values()]
    assert rows["middle mAP / R1@0.5"].split()[-3:] == ["55.00", "/", "100.00"]
    assert rows["dR1@0.7"].split()[-1] == "57.90"
    # masked file: queries 10..14 only -> Spurious-R1@0.5 = 50, no "±" with a single file
    assert rows["Spurious-R1@0.5"].split()[-1] == "50.00"
    assert "±" not in report.format_table()
    assert "-- spurious (masked targets, 1 file(s); lower is better)" in lines
    assert lines.index("-- moment retrieval") < lines.index("-- spurious (masked targets, 1 file(s); lower is better)")
    assert str(report) == report.format_table()


def test_report_table_shows_intervals_and_missing_count() -> None:
    """With ``ci`` each headline value carries its interval; missing queries are counted."""
    report = score(exact_threshold_preds(KS[1:]), exact_threshold_gt(), allow_missing=True, ci=True, n_boot=50)
    lines = report.format_table().splitlines()
    assert lines[1] == "10 queries, 1 missing (scored 0)"
    r1 = next(line for line in lines if line.strip().startswith("R1@0.5 "))
    low, high = report["intervals"]["MR-full-R1@0.5"]
    assert r1.split()[-2:] == [f"[{low:.2f},", f"{high:.2f}]"]
    data = json.loads(report.to_json())
    assert data["brief"]["MR-full-R1@0.5"] == 90.0 and "meta" in data
    copy = report.to_dict()
    copy["brief"]["MR-full-R1@0.5"] = 0.0
    assert report.brief["MR-full-R1@0.5"] == 90.0
    assert "spurious" not in report and report["mrbench"]["n_missing"] == 1


@pytest.mark.parametrize(
    ("window", "message"),
    [([5.0, 4.0, 0.9], "reversed"), ([float("nan"), 4.0, 0.9], "not finite"), ([1.0, 2.0], r"\[start, end, score\]"),
     ([1.0, "2", 0.5], r"\[start, end, score\]"), ([True, 2.0, 0.5], r"\[start, end, score\]")],
)
def test_invalid_prediction_windows_are_named(window: list[Any], message: str) -> None:
    """A malformed window of the second query names its line, qid and window index."""
    preds = exact_threshold_preds(KS[:2])
    preds[1]["pred_relevant_windows"] = [[0.0, 1.0, 0.5], window]
    with pytest.raises(ValidationError, match=message) as info:
        score(preds, exact_threshold_gt(), allow_missing=True)
    assert info.value.line == 2 and info.value.qid == 11


def test_prediction_qid_problems() -> None:
    """Duplicate qid (names the first line), unknown qid, a str qid for an int GT qid (hint)."""
    preds = exact_threshold_preds(KS[:2]) + exact_threshold_preds(KS[:1])
    with pytest.raises(ValidationError, match="first on line 1"):
        score(preds, exact_threshold_gt(), allow_missing=True)
    with pytest.raises(ValidationError, match="not in the ground truth"):
        score([{"qid": 99, "pred_relevant_windows": [[0, 1, 1]]}], exact_threshold_gt(), allow_missing=True)
    with pytest.raises(ValidationError, match="types must match"):
        score([{"qid": "10", "pred_relevant_windows": [[0, 1, 1]]}], exact_threshold_gt(), allow_missing=True)
    with pytest.raises(ValidationError, match="non-empty"):
        score([{"qid": 10, "pred_relevant_windows": []}], exact_threshold_gt(), allow_missing=True)


def test_only_the_first_ten_windows_count_and_r1_takes_the_first_listed() -> None:
    """A query listing 11 windows: the exact 11th is cut (mAP 0); R1 uses the first listed
    window even when a later one has a higher score (the first [0, 10] has IoU 0.5)."""
    gt = [gt_record(1, [[0.0, 20.0]])]
    misses = [[100.0 + 5 * i, 102.0 + 5 * i, 0.9] for i in range(10)]
    report = score([{"qid": 1, "pred_relevant_windows": [*misses, [0.0, 20.0, 1.0]]}], gt).to_dict()
    assert report["brief"]["MR-full-mAP"] == 0.0
    first = score([{"qid": 1, "pred_relevant_windows": [[0.0, 10.0, 0.1], [0.0, 20.0, 0.9]]}], gt).to_dict()
    assert first["full"]["MR-R1"]["0.5"] == 100.0 and first["full"]["MR-R1"]["0.55"] == 0.0
    assert first["full"]["MR-mAP"]["0.95"] == 100.0  # mAP ranks by score: the exact one first


def test_saliency_argmax_is_the_first_maximum_of_the_raw_list() -> None:
    """On ties the first maximum of the raw list is the argmax: q1 -> clip 1 (its positive is
    clip 0: miss), q3 -> clip 0 (its positive is clip 1: miss); q2 hits: Fair HIT@1 = 1/3."""
    preds = [
        {"qid": 1, "pred_saliency_scores": [0.5, 0.9, 0.9]},  # argmax 1: q1's positive is clip 0 -> miss
        {"qid": 2, "pred_saliency_scores": [0.1, 0.2, 0.9]},
        {"qid": 3, "pred_saliency_scores": [0.9, 0.9, 0.3]},  # argmax 0: q3's positive is clip 1 -> miss
    ]
    report = score(preds, highlight_gt()).to_dict()
    assert report["HL-min-Fair"]["HL-Hit1"] == pct(1 / 3)


def test_bundle_file_scores_like_its_predictions(tmp_path: Path) -> None:
    """A single-file bundle with inline predictions and one masked list: the standard and
    spurious numbers are those of the exact-threshold case (mAP 55; masked: queries 10..14)."""
    from mrbench.scoring import write_bundle

    path = write_bundle(tmp_path / "b.json", {"model": "m", "seed": 3}, exact_threshold_preds(),
                        masked=[exact_threshold_preds(KS[:5])])
    report = score(path, exact_threshold_gt(), allow_missing=True).to_dict()
    assert report["brief"]["MR-full-mAP"] == 55.0
    assert report["spurious"]["brief"]["Spurious-R1@0.5"] == 50.0
    assert report["meta"]["model"] == "m" and report["meta"]["seed"] == 3


def test_bootstrap_defaults_seeding_and_rounding() -> None:
    """The documented defaults (1000 replicates, seed 0, 95 %); a seed gives the same interval
    every time and another seed another one; bounds are x100 rounded to 2 decimals."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(bootstrap_intervals).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {"n_boot": 1000, "seed": 0, "level": 0.95}
    values = {"x": np.linspace(0.0, 1.0, 40) ** 2}
    first = bootstrap_intervals(values, n_boot=300, seed=3)
    assert first == bootstrap_intervals(values, n_boot=300, seed=3)
    assert first != bootstrap_intervals(values, n_boot=300, seed=4)
    assert bootstrap_intervals({"c": np.full(30, 1 / 3)}, n_boot=100, seed=1) == {"c": [33.33, 33.33]}
    assert bootstrap_intervals({"c": np.full(30, 2 / 3)}, n_boot=100, seed=1) == {"c": [66.67, 66.67]}


def test_bundle_paths_that_leave_the_bundle_name_the_field(tmp_path: Path) -> None:
    """Relative paths must stay inside the bundle's directory: the error names the bundle file
    and the field (predictions, masked[i].predictions, variant)."""
    from mrbench.scoring import read_bundle

    outside = tmp_path / "outside.jsonl"
    outside.write_text("")
    folder = tmp_path / "bundle"
    folder.mkdir()
    cases = {
        "predictions": {"predictions": "../outside.jsonl"},
        "masked[0].predictions": {"predictions": [], "masked": [{"predictions": "../outside.jsonl"}]},
        "variant": {"predictions": [], "variant": "../"},
    }
    for field_name, content in cases.items():
        (folder / "bundle.json").write_text(json.dumps({"mrbench_bundle": 1, **content}))
        with pytest.raises(ValidationError, match="leads outside") as info:
            read_bundle(folder)
        assert info.value.field == field_name
        assert Path(str(info.value.file)) == folder / "bundle.json"


def test_bundle_reading_hand_cases(tmp_path: Path) -> None:
    """No meta: an empty one; a masked entry without predictions is a ValidationError; inline
    lists are labelled ``FILE[predictions]`` / ``FILE[masked][i]``; the path is the JSON file."""
    from mrbench.scoring import read_bundle

    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "bundle.json").write_text(json.dumps({"mrbench_bundle": 1, "predictions": exact_threshold_preds(),
                                                    "masked": [{"predictions": exact_threshold_preds()}]}))
    bundle = read_bundle(folder)
    assert bundle.meta == {} and bundle.path == folder / "bundle.json" and bundle.variant is None
    assert bundle.predictions[0] == f"{folder / 'bundle.json'}[predictions]"
    assert [m[0] for m in bundle.masked] == [f"{folder / 'bundle.json'}[masked][0]"]
    report = score(bundle, exact_threshold_gt()).to_dict()
    assert report["meta"]["masked"] == [f"{folder / 'bundle.json'}[masked][0]"]
    (folder / "bundle.json").write_text(json.dumps({"mrbench_bundle": 1, "predictions": [], "masked": [{"name": "x"}]}))
    with pytest.raises(ValidationError, match="entry 0"):
        read_bundle(folder)
    (folder / "bundle.json").write_text(json.dumps({"mrbench_bundle": 1, "predictions": [], "meta": []}))
    with pytest.raises(ValidationError, match="must be an object"):
        read_bundle(folder)


def test_write_bundle_file_layout(tmp_path: Path) -> None:
    """The documented layout: version key 1, meta, inline predictions, masked entries named
    masked0, masked1, ..., and the variant path when given."""
    from mrbench.scoring import write_bundle

    path = write_bundle(tmp_path / "b.json", {"model": "m"}, [{"qid": 1}], masked=[[{"qid": 2}], [{"qid": 3}]],
                        variant="var")
    data = json.loads(path.read_text())
    assert data == {"mrbench_bundle": 1, "meta": {"model": "m"}, "predictions": [{"qid": 1}],
                    "masked": [{"name": "masked0", "predictions": [{"qid": 2}]},
                               {"name": "masked1", "predictions": [{"qid": 3}]}],
                    "variant": "var"}
    plain = json.loads(write_bundle(tmp_path / "c.json", {}, []).read_text())
    assert "masked" not in plain and "variant" not in plain


def test_report_table_highlights_and_missing_values() -> None:
    """A highlight report prints the QVHighlights headline and one row per level; a value that
    is None prints as "-"."""
    preds = [{"qid": 1, "pred_saliency_scores": [0.9, 0.1, 0.2]},
             {"qid": 2, "pred_saliency_scores": [0.1, 0.2, 0.9]},
             {"qid": 3, "pred_saliency_scores": [0.1, 0.8, 0.3]}]
    table = score(preds, highlight_gt()).format_table().splitlines()
    assert table[2:5] == ["-- headline", "  HL mAP (VeryGood)     22.22", "  HL HIT@1 (VeryGood)   66.67"]
    assert "-- highlight detection" in table
    rows = [line.split() for line in table if line.startswith("  ")]
    assert ["Fair", "mAP", "77.78"] in rows and ["Good", "HIT@1", "66.67"] in rows
    assert ["VeryGood", "HIT@1", "66.67"] in rows
    gt = exact_threshold_gt()
    far = [{"qid": k, "pred_relevant_windows": [[80.0, 90.0, 0.9]]} for k in KS]
    spurious = score(exact_threshold_preds(), gt, masked=[far]).format_table().splitlines()
    ratio = next(line for line in spurious if line.strip().startswith("Ratio-mAP"))
    assert ratio.split() == ["Ratio-mAP", "-"]


def test_seed_directories_pair_with_masked_files_in_natural_order(tmp_path: Path) -> None:
    """A variant root with seed2/ and seed10/: seed2 pairs with the first masked file (natural
    order, not "seed10" < "seed2"). seed2's regions hold every centre, seed10's none, so the
    per-file Center-in-mask is 100 then 0."""
    gt = exact_threshold_gt()
    write_variant(tmp_path / "var" / "seed2", {k: [[0.0, 20.0]] for k in KS}, gt)
    write_variant(tmp_path / "var" / "seed10", {k: [[60.0, 70.0]] for k in KS}, gt)
    report = score(exact_threshold_preds(), gt, masked=[exact_threshold_preds(), exact_threshold_preds()],
                   variant=tmp_path / "var").to_dict()
    assert [f["Center-in-mask"] for f in report["spurious"]["per_file"]] == [100.0, 0.0]
    assert report["meta"]["variant"] == [str(tmp_path / "var" / "seed2"), str(tmp_path / "var" / "seed10")]
    with pytest.raises(MrbenchError, match="not a masked variant"):
        score(exact_threshold_preds(), gt, masked=[exact_threshold_preds()], variant=tmp_path)


def test_missing_queries_message_lists_the_first_five() -> None:
    """Without allow_missing, the error counts the missing queries and shows five qids."""
    with pytest.raises(ValidationError, match=r"7 ground-truth queries have no prediction \(10, 11, 12, 13, 14, \.\.\.\)"):
        score(exact_threshold_preds(KS[7:]), exact_threshold_gt())


def test_saliency_ground_truth_errors() -> None:
    """Annotator counts must agree across queries; a video shorter than one clip has no clip
    for its labels."""
    rows = highlight_gt()
    rows[1] = gt_record(2, [[4.0, 6.0]], duration=7, relevant_clip_ids=[2], saliency_scores=[[2, 2]])
    with pytest.raises(ValidationError, match="annotators"):
        load_ground_truth(rows)
    short = [gt_record(9, [[0.0, 1.0]], duration=1.5, relevant_clip_ids=[0], saliency_scores=[[1, 1, 1]])]
    with pytest.raises(ValidationError, match="below int"):
        load_ground_truth(short)


def test_saliency_length_mismatch_warns_once_with_the_first_query() -> None:
    """Lists longer or shorter than the clip count are cut / zero-padded with one warning naming
    how many queries and the first one."""
    preds = [{"qid": 1, "pred_saliency_scores": [0.9, 0.1]},
             {"qid": 2, "pred_saliency_scores": [0.1, 0.2, 0.9, 0.0, 0.0]},
             {"qid": 3, "pred_saliency_scores": [0.1, 0.8, 0.3]}]
    with pytest.warns(UserWarning, match=r"2 queries .* \(first: line 1, qid 1: 2 vs 3\)"):
        report = score(preds, highlight_gt()).to_dict()
    # q1 padded with a 0 for clip 2: clip 0 still ranked first -> Fair AP 1
    assert report["HL-min-Fair"]["HL-mAP"] == 77.78


def table_rows(text: str) -> dict[str, list[str]]:
    """Rows of a printed report: label -> the fields after it (label and values are separated
    by two or more spaces)."""
    import re

    rows = {}
    for line in text.splitlines():
        if line.startswith("  "):
            label, _, rest = line.strip().partition("  ")
            rows[label] = re.split(r"\s+", rest.strip())
    return rows


def test_report_table_buckets_all_thresholds_and_extra_rows() -> None:
    """Short (10-s window, found) and long (40-s window, missed) buckets get one row each; the
    mAP row lists the ten thresholds without the average; the extra MR numbers (R1@0.3, R5,
    mIoU, dR1) carry their intervals; counts (n_queries, n_missing) are not metric rows."""
    gt = [gt_record(1, [[0.0, 10.0]]), gt_record(2, [[0.0, 40.0]])]
    preds = [{"qid": 1, "pred_relevant_windows": [[0.0, 10.0, 1.0]]},
             {"qid": 2, "pred_relevant_windows": [[60.0, 70.0, 1.0]]}]
    report = score(preds, gt, ci=True, n_boot=50)
    rows = table_rows(report.format_table())
    assert rows["short mAP / R1@0.5"] == ["100.00", "/", "100.00"]
    assert rows["long mAP / R1@0.5"] == ["0.00", "/", "0.00"]
    assert "middle mAP / R1@0.5" not in rows
    assert rows["mAP@0.5:0.95"] == ["50.00"] * 10
    low, high = report["intervals"]["MR-full-dR1@0.5"]
    assert rows["dR1@0.5"] == ["50.00", f"[{low:.2f},", f"{high:.2f}]"]
    assert not any(label.startswith("n_") for label in rows)


def test_report_json_is_indented_and_refuses_nan() -> None:
    """to_json: 4-space indent by default, compact on request; NaN is refused (absent values
    are null, never NaN)."""
    from mrbench.scoring import Report

    assert Report({"a": 1, "b": None}).to_json() == '{\n    "a": 1,\n    "b": null\n}'
    assert Report({"a": [1, 2]}).to_json(indent=None) == '{"a": [1, 2]}'
    with pytest.raises(ValueError):
        Report({"a": float("nan")}).to_json()


def test_cli_spurious_block_with_allow_missing(tmp_path: Path) -> None:
    """``mrbench score PRED --gt --masked --variant --allow-missing --json``: the masked file
    lacks query 19 and the standard file query 10; both score zero there. Standard R1@0.5 =
    9/10; spurious R1@0.5 = 9/10 and Center-in-mask 9/10 (every centre on its region's end)."""
    from tests.conftest import run_cli

    gt_path = tmp_path / "gt.jsonl"
    gt_path.write_text("".join(json.dumps(r) + "\n" for r in exact_threshold_gt()))
    preds, masked = tmp_path / "preds.jsonl", tmp_path / "masked.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in exact_threshold_preds(KS[1:])))
    masked.write_text("".join(json.dumps(r) + "\n" for r in exact_threshold_preds(KS[:-1])))
    variant = write_variant(tmp_path / "variant", {k: [[0.0, k / 2]] for k in KS}, exact_threshold_gt())
    out = tmp_path / "report.json"
    argv = ["score", str(preds), "--gt", str(gt_path), "--masked", str(masked), "--variant", str(variant),
            "--json", str(out)]
    assert run_cli(argv) == 2  # missing queries without the flag
    assert run_cli([*argv, "--allow-missing"]) == 0
    report = json.loads(out.read_text())
    assert report["brief"]["MR-full-R1@0.5"] == 90.0 and report["mrbench"]["n_missing"] == 1
    brief = report["spurious"]["brief"]
    assert (brief["Spurious-R1@0.5"], brief["Center-in-mask"]) == (90.0, 90.0)
    # both present for k = 11..18: identical spans -> top-1 agreement 8/10
    assert brief["Top1-IoU-orig-vs-masked"] == 80.0


def hand_report_data() -> dict[str, Any]:
    """A hand-built report dict (not from score()): every section format_table prints."""
    return {
        "meta": {"predictions": "p.jsonl", "dataset": "qvhl", "split": "val"},
        "mrbench": {"n_queries": 3, "n_missing": 1, "MR-full-R1@0.3": 66.666, "MR-full-mIoU": 40.5},
        "brief": {"MR-full-R1@0.5": 50.0, "MR-full-R1@0.7": 25.0, "MR-full-mAP@0.5": 40.0,
                  "MR-full-mAP@0.75": 20.0, "MR-full-mAP": 30.0, "HL-min-VeryGood-mAP": 12.5,
                  "HL-min-VeryGood-Hit1": None},
        "full": {"MR-R1": {"0.5": 50.0, "0.7": 25.0},
                 "MR-mAP": {"0.5": 40.0, "0.75": 20.0, "average": 30.0}},
        "short": {"MR-mAP": {"average": 10.0}, "MR-R1": {"0.5": 5.0}},
        "long": {"MR-mAP": {"average": 0.0}, "MR-R1": {"0.5": 0.0}},
        "HL-min-Fair": {"HL-mAP": 60.0, "HL-Hit1": 100.0},
        "HL-min-Good": {"HL-mAP": 45.0, "HL-Hit1": 80.0},
        "HL-min-VeryGood": {"HL-mAP": 12.5, "HL-Hit1": None},
        "spurious": {"n_files": 2, "brief": {"Spurious-R1@0.5": 10.0, "Ratio-mAP": None},
                     "std": {"Spurious-R1@0.5": 1.5}},
        "intervals": {"MR-full-R1@0.5": [40.0, 60.0], "MR-short-mAP": [1.0, 2.0],
                      "MR-full-mIoU": [30.0, 50.0]},
    }


#: format_table of hand_report_data(), written out by hand: labels padded to the longest label
#: (19, "HL HIT@1 (VeryGood)"), values without spaces right-aligned to the widest such value (6,
#: "100.00"), intervals as [low, high], the spurious spread as "± std", None as "-", trailing
#: spaces stripped, "middle" absent, the counts n_queries/n_missing not printed as rows.
HAND_TABLE = """\
mrbench score: p.jsonl (qvhl val)
3 queries, 1 missing (scored 0)
-- headline
  R1@0.5                50.00  [40.00, 60.00]
  R1@0.7                25.00
  mAP@0.5               40.00
  mAP@0.75              20.00
  mAP                   30.00
  HL mAP (VeryGood)     12.50
  HL HIT@1 (VeryGood)       -
-- moment retrieval
  R1@0.5:0.95          50.00 25.00
  mAP@0.5:0.95         40.00 20.00
  short mAP / R1@0.5   10.00 / 5.00  [1.00, 2.00]
  long mAP / R1@0.5    0.00 / 0.00
  R1@0.3                66.67
  mIoU                  40.50  [30.00, 50.00]
-- highlight detection
  Fair mAP              60.00
  Fair HIT@1           100.00
  Good mAP              45.00
  Good HIT@1            80.00
  VeryGood mAP          12.50
  VeryGood HIT@1            -
-- spurious (masked targets, 2 file(s); lower is better)
  Spurious-R1@0.5       10.00  ± 1.50
  Ratio-mAP                 -"""


def test_report_table_exact_text_of_a_hand_report() -> None:
    """The whole printed table, character for character, for a report with every section."""
    from mrbench.scoring import Report

    assert Report(hand_report_data()).format_table() == HAND_TABLE


def test_report_table_without_meta_counts_or_dataset() -> None:
    """No meta: an empty predictions name and no "(dataset split)"; no missing: no "missing"
    suffix; a dataset without split shows the dataset alone; MR headline without highlights."""
    from mrbench.scoring import Report

    data = {"brief": {"MR-full-R1@0.5": 7.0}, "mrbench": {"n_queries": 2, "MR-full-R1@0.3": 5.0}}
    assert Report(data).format_table() == (
        "mrbench score: \n2 queries\n-- headline\n  R1@0.3  5.00\n  R1@0.5  7.00")
    data["meta"] = {"predictions": "x", "dataset": "charades"}
    data["mrbench"]["n_missing"] = 0
    assert Report(data).format_table().splitlines()[:2] == ["mrbench score: x (charades)", "2 queries"]


def test_report_table_sparse_and_wide_reports() -> None:
    """Sections that are absent (no "mrbench", no "std") are skipped, not errors; a lone "-"
    is not widened by the section rows; highlight rows carry their own intervals; a value with
    spaces is never right-aligned, even when a plain value is wider."""
    from mrbench.scoring import Report

    assert Report({"brief": {"MR-full-R1@0.5": None}}).format_table() == "mrbench score: \n-- headline\n  R1@0.5  -"
    level = {"HL-mAP": 60.0, "HL-Hit1": 70.0}
    data = {"mrbench": {"n_queries": 1, "MR-full-mIoU": 123456789.0}, "brief": {},
            "full": {"MR-R1": {"0.5": 1.0, "0.7": 2.0}, "MR-mAP": {"0.5": 3.0, "average": 3.0}},
            "HL-min-Fair": level, "HL-min-Good": level, "HL-min-VeryGood": level,
            "spurious": {"n_files": 1, "brief": {"Spurious-R1@0.5": 4.0}},
            "intervals": {"HL-min-Fair-mAP": [1.0, 2.0], "HL-min-Good-Hit1": [3.0, 4.0]}}
    lines = Report(data).format_table().splitlines()
    assert "  R1@0.5:0.95      1.00 2.00" in lines  # label padded to 15, value not padded to 12
    rows = [line.split() for line in lines if line.startswith("  ")]
    assert ["Fair", "mAP", "60.00", "[1.00,", "2.00]"] in rows
    assert ["Good", "HIT@1", "70.00", "[3.00,", "4.00]"] in rows
    assert ["Good", "mAP", "60.00"] in rows and ["Fair", "HIT@1", "70.00"] in rows
    assert ["mIoU", "123456789.00"] in rows and ["Spurious-R1@0.5", "4.00"] in rows


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(True, "True"), ("0.5", "'0.5'"), ([0.1, 0.2], "[0.1, 0.2]"), (float("nan"), "nan")],
)
def test_saliency_scores_must_be_finite_numbers(bad: Any, shown: str) -> None:
    """A JSON boolean, a string, a nested list or NaN among the saliency scores is named by its
    position (score 1 of query 2), not accepted, not a crash."""
    preds = [{"qid": 1, "pred_saliency_scores": [0.9, 0.1, 0.2]},
             {"qid": 2, "pred_saliency_scores": [0.1, bad, 0.9]},
             {"qid": 3, "pred_saliency_scores": [0.1, 0.8, 0.3]}]
    with pytest.raises(ValidationError, match=rf"score 1 must be a finite number, got {re.escape(shown)}"):
        score(preds, highlight_gt())


def test_saliency_scores_may_mix_ints_and_floats() -> None:
    """Integer and float scores in one file are both numbers (q1: clip 0 highest -> HIT)."""
    preds = [{"qid": 1, "pred_saliency_scores": [1, 0.1, 0]},
             {"qid": 2, "pred_saliency_scores": [0.1, 0.2, 0.9]},
             {"qid": 3, "pred_saliency_scores": [0.1, 0.8, 0.3]}]
    report = score(preds, highlight_gt())
    assert report["HL-min-Fair"]["HL-Hit1"] == 100.0


def test_parse_jsonl_applies_the_given_limits() -> None:
    from mrbench.io import ReadLimits
    from mrbench.scoring.predictions import parse_jsonl

    text = '{"qid": 1}\n{"qid": 2}\n'
    assert [obj["qid"] for _, obj in parse_jsonl(text, "p")] == [1, 2]
    with pytest.raises(MrbenchError):
        parse_jsonl(text, "p", ReadLimits(max_bytes=10**6, max_lines=1))


@pytest.mark.parametrize("window", [[1.0, "x"], [1.0, 2.0, 3.0]])
def test_manifest_masked_windows_must_be_number_pairs(tmp_path: Path, window: list[Any]) -> None:
    """A masked window that is not a pair of numbers is a ValidationError naming the manifest."""
    from mrbench.scoring.core import _masks

    (tmp_path / "manifest.json").write_text(json.dumps({"queries": {"1": {"masked_windows": [window]}}}))
    truth = load_ground_truth([gt_record(1, [[0.0, 10.0]])])
    with pytest.raises(ValidationError, match="no masked_windows"):
        _masks([tmp_path], truth, 1)


def test_manifest_without_a_queries_object_is_refused(tmp_path: Path) -> None:
    """A manifest whose "queries" is not an object is a ValidationError on field "queries"."""
    from mrbench.masking.variant import read_manifest

    (tmp_path / "manifest.json").write_text(json.dumps({"queries": [1]}))
    with pytest.raises(ValidationError, match="missing field"):
        read_manifest(tmp_path, complete=False)


def test_prediction_limits_grow_with_queries_and_clips() -> None:
    """Two queries of 100 s (50 two-second clips): lines 2 * 2 + 1000; characters per line
    65536 + 64 * 50; bytes 2 * (16384 + 64 * 50) + 2**20; a factor scales every bound."""
    from mrbench.scoring.predictions import prediction_limits

    gt = load_ground_truth([gt_record(1, [[0.0, 10.0]]), gt_record(2, [[0.0, 10.0]], duration=60.0)])
    limits = prediction_limits(gt, 1.0)
    assert (limits.max_bytes, limits.max_lines, limits.max_line_chars) == (1_087_744, 1004, 68_736)
    assert limits.why == "the bound for a ground truth of 2 queries of up to 50 clips"
    doubled = prediction_limits(gt, 2.0)
    assert (doubled.max_bytes, doubled.max_lines, doubled.max_line_chars) == (2_175_488, 2008, 137_472)
    one = prediction_limits(load_ground_truth([gt_record(1, [[0.0, 2.0]], duration=3.0)]), 1.0)
    # one clip (3 s / 2 s, floored): 16384 + 64 + 2**20 bytes, 65536 + 64 characters
    assert (one.max_bytes, one.max_lines, one.max_line_chars) == (1_065_024, 1002, 65_600)


def test_read_records_json_array_and_jsonl_by_suffix_and_content(tmp_path: Path) -> None:
    """A ``.json`` file whose text starts (after whitespace) with ``[`` is one array, items
    numbered like lines; a ``.jsonl`` file starting with ``[`` is JSON Lines (one list per line);
    a ``.json`` file of objects per line is JSON Lines too."""
    from mrbench.io import ReadLimits
    from mrbench.scoring.predictions import read_records

    item = {"qid": 1, "pred_relevant_windows": [[0.0, 1.0, 0.5]]}
    array = tmp_path / "p.json"
    array.write_text("  \n" + json.dumps([item, item]), encoding="utf-8")
    assert read_records(array) == (str(array), [(1, item), (2, item)])
    lines = tmp_path / "p.jsonl"
    lines.write_text(json.dumps([item]) + "\n", encoding="utf-8")
    assert read_records(lines, "named") == ("named", [(1, [item])])
    objects = tmp_path / "o.json"
    objects.write_text(json.dumps(item) + "\n\n" + json.dumps(item) + "\n", encoding="utf-8")
    assert read_records(objects) == (str(objects), [(1, item), (3, item)])
    # exactly as many items as the bound is fine; one more names the file and the count
    bound = ReadLimits(10_000, max_lines=2, max_line_chars=1000, why="a test bound")
    assert len(read_records(array, limits=bound)[1]) == 2
    with pytest.raises(ValidationError) as info:
        read_records(array, limits=ReadLimits(10_000, max_lines=1, why="a test bound"))
    assert str(info.value).startswith(f"{array}: 2 items is more than the bound of 1 (a test bound)")
    # the bounds reach the file's bytes and its JSON Lines
    with pytest.raises(ValidationError, match=r"bytes is more than the bound of 10 \(a test bound\)"):
        read_records(lines, limits=ReadLimits(10, why="a test bound"))
    with pytest.raises(ValidationError, match=r"3 lines is more than the bound of 2"):
        read_records(objects, limits=bound)


def test_ground_truth_clip_length_bounds_are_inclusive() -> None:
    """Clip lengths in [0.01, 3600] s are accepted (both ends included); finite values outside
    and NaN are refused."""
    records = [gt_record(1, [[0.0, 10.0]], duration=7200.0)]
    assert load_ground_truth(records, clip_len=0.01).n_clips.tolist() == [720_000]
    assert load_ground_truth(records, clip_len=3600.0).n_clips.tolist() == [2]
    for bad in (0.0099, 3600.5, 1e9, float("nan")):
        with pytest.raises(MrbenchError, match=r"clip length must lie in \[0.01, 3600.0\] seconds"):
            load_ground_truth(records, clip_len=bad)


def test_ground_truth_sources_and_lines_by_input_kind(tmp_path: Path) -> None:
    """Dicts are numbered from line 1 under '<ground truth>'; Annotations keep their path (or
    '<ground truth>'), without line numbers; a file is named as given."""
    from mrbench.data.schema import Annotations

    dicts = [gt_record(1, [[0.0, 10.0]]), gt_record(2, [[1.0, 2.0]])]
    gt = load_ground_truth(dicts)
    assert (gt.source, gt.lines, gt.qids) == ("<ground truth>", [1, 2], [1, 2])
    with pytest.raises(ValidationError) as info:
        load_ground_truth([dicts[0], gt_record(2, [[5.0, 1.0]])])
    assert str(info.value).startswith("<ground truth>:2: qid 2: field 'relevant_windows': ")
    # a dict without windows is refused where it is read (windows are required)
    no_windows = {k: v for k, v in dicts[1].items() if k != "relevant_windows"}
    with pytest.raises(ValidationError) as info:
        load_ground_truth([dicts[0], no_windows])
    assert str(info.value).startswith("<ground truth>:2: qid 2: field 'relevant_windows': ")
    assert "test release" not in str(info.value)
    queries = [Query.from_dict(d) for d in dicts]
    named = load_ground_truth(Annotations(queries, path=tmp_path / "gt.jsonl"))
    assert (named.source, named.lines) == (str(tmp_path / "gt.jsonl"), [None, None])
    unnamed = load_ground_truth(Annotations(queries))
    assert (unnamed.source, unnamed.lines) == ("<ground truth>", [None, None])
    with pytest.raises(ValidationError) as info:
        load_ground_truth(Annotations([queries[0], queries[0]], path=tmp_path / "gt.jsonl"))
    assert str(info.value) == f"{tmp_path / 'gt.jsonl'}: qid 1: field 'qid': duplicate qid in the ground truth"
    with pytest.raises(ValidationError, match=r"is a directory, not a ground-truth file"):
        load_ground_truth(tmp_path)


def test_ground_truth_file_cache_follows_path_time_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file is re-read when it changes (size or modification time), and the same relative
    name in another folder is another file, even with equal size and time."""
    def write(path: Path, end: float, stamp: int) -> None:
        path.write_text(json.dumps(gt_record(1, [[0.0, end]])) + "\n", encoding="utf-8")
        os.utime(path, ns=(stamp, stamp))

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(first / "gt.jsonl", 10.0, 1_000_000_000)
    write(second / "gt.jsonl", 20.0, 1_000_000_000)
    monkeypatch.chdir(first)
    gt = load_ground_truth("gt.jsonl")
    assert (gt.source, gt.windows.tolist()) == ("gt.jsonl", [[[0.0, 10.0]]])
    monkeypatch.chdir(second)
    assert load_ground_truth("gt.jsonl").windows.tolist() == [[[0.0, 20.0]]]
    write(second / "gt.jsonl", 30.0, 1_000_000_000)  # same size and time: the cache holds
    write(second / "gt.jsonl", 40.0, 2_000_000_000)  # a new time: re-read
    assert load_ground_truth("gt.jsonl").windows.tolist() == [[[0.0, 40.0]]]
    (second / "gt.jsonl").write_text(json.dumps(gt_record(1, [[0.0, 5.5]])) + "\n", encoding="utf-8")
    os.utime(second / "gt.jsonl", ns=(2_000_000_000, 2_000_000_000))  # same time, new size
    assert load_ground_truth("gt.jsonl").windows.tolist() == [[[0.0, 5.5]]]


def test_ground_truth_bad_window_names_its_own_query() -> None:
    """Windows that slip past per-record checks (Query objects built directly) are checked
    again: the first bad one (start >= end; an empty window counts) names its query and line."""
    from mrbench.scoring.groundtruth import build_ground_truth

    def q(qid: int, windows: list[list[float]]) -> Query:
        return Query(qid, f"q{qid}", f"v{qid}", 100.0, windows)

    records = [q(1, [[0.0, 1.0], [2.0, 3.0]]), q(2, [[5.0, 5.0]]), q(3, [[0.0, 1.0], [9.0, 4.0]])]
    with pytest.raises(ValidationError) as info:
        build_ground_truth(records, source="src", lines=[10, 20, 30])
    assert str(info.value) == "src:20: qid 2: field 'relevant_windows': a window has start >= end (or is not finite)"
    records[1] = q(2, [[5.0, 6.0]])
    with pytest.raises(ValidationError) as info:
        build_ground_truth(records, source="src", lines=[10, 20, 30])
    assert str(info.value).startswith("src:30: qid 3: ")
    with pytest.raises(ValueError):
        build_ground_truth(records, source="src", lines=[10, 20])  # one line number per record


@pytest.mark.parametrize(("factor_exponent", "fails"), [(-27, False), (-28, True)])
def test_ground_truth_window_allocation_bound_is_exact(
    monkeypatch: pytest.MonkeyPatch, factor_exponent: int, fails: bool
) -> None:
    """One query with one window needs 1 * 1 * 2 float64 = 16 bytes: a bound of exactly 16
    bytes (2**31 * 2**-27) passes, 8 bytes fails and names the field."""
    monkeypatch.setenv("MRBENCH_SIZE_LIMIT_FACTOR", repr(2.0**factor_exponent))
    records = [gt_record(1, [[0.0, 1.0]], duration=1.0)]
    if not fails:
        assert load_ground_truth(records).windows.tolist() == [[[0.0, 1.0]]]
        return
    with pytest.raises(ValidationError) as info:
        load_ground_truth(records)
    assert str(info.value).startswith(
        "<ground truth>: field 'relevant_windows': the ground-truth windows would need 0.0 GiB")


def saliency_record(qid: int, duration: float, ids: list[int], scores: list[list[int]]) -> dict[str, Any]:
    """A ground-truth line with highlight labels."""
    return gt_record(qid, [[0.0, 1.0]], duration=duration, relevant_clip_ids=ids, saliency_scores=scores)


def test_saliency_labels_with_two_annotators_and_one_clip() -> None:
    """Two annotators give a [Q, C, 2] array; a 3 s video has one 2 s clip (C = 1)."""
    gt = load_ground_truth([saliency_record(1, 3.0, [0], [[4, 2]])])
    assert gt.saliency is not None
    assert gt.saliency.tolist() == [[[4.0, 2.0]]]
    assert gt.n_clips.tolist() == [1]


def test_saliency_without_listed_clips_has_three_annotator_columns() -> None:
    """Queries that list no clips still get labels: zeros for three annotators."""
    gt = load_ground_truth([saliency_record(1, 4.0, [], [])])
    assert gt.saliency is not None
    assert gt.saliency.shape == (1, 2, 3)
    assert not gt.saliency.any()


def test_saliency_needs_both_ids_and_scores_on_every_query() -> None:
    """A query with clip ids but no scores (or the reverse) means: no highlight labels (Query
    objects built directly: a file cannot give one without the other)."""
    full = Query(1, "q1", "v1", 4.0, [[0.0, 1.0]], [0], [[1, 1, 1]])
    ids_only = Query(2, "q2", "v2", 4.0, [[0.0, 1.0]], [0], None)
    scores_only = Query(2, "q2", "v2", 4.0, [[0.0, 1.0]], None, [[1, 1, 1]])
    assert load_ground_truth([full, ids_only]).saliency is None
    assert load_ground_truth([full, scores_only]).saliency is None
    assert load_ground_truth([full]).saliency is not None


def test_saliency_on_a_video_shorter_than_one_clip_is_refused() -> None:
    """A 1.5 s video has no whole 2 s clip: labels are refused even with no clip listed."""
    with pytest.raises(ValidationError) as info:
        load_ground_truth([saliency_record(1, 4.0, [1], [[1, 1, 1]]), saliency_record(2, 1.5, [], [])])
    assert str(info.value) == (
        "<ground truth>:2: qid 2: field 'relevant_clip_ids': clip ids must lie below int(duration / clip_len) = 0")


@pytest.mark.parametrize(("factor_exponent", "fails"), [(-26, False), (-27, True)])
def test_saliency_allocation_bound_is_exact(monkeypatch: pytest.MonkeyPatch, factor_exponent: int, fails: bool) -> None:
    """Labels of one query, 2 clips, 2 annotators: 32 bytes; a 32-byte bound passes, 16 fails
    (the 16-byte windows pass both) and names the duration field."""
    monkeypatch.setenv("MRBENCH_SIZE_LIMIT_FACTOR", repr(2.0**factor_exponent))
    records = [saliency_record(1, 4.0, [1], [[3, 1]])]
    if not fails:
        labels = load_ground_truth(records).saliency
        assert labels is not None and labels.tolist() == [[[0.0, 0.0], [3.0, 1.0]]]
        return
    with pytest.raises(ValidationError) as info:
        load_ground_truth(records)
    assert str(info.value).startswith("<ground truth>: field 'duration': the saliency labels would need 0.0 GiB")


def test_missing_query_scores_zero_in_r5_and_debiased_recall() -> None:
    """With ``allow_missing`` the missing query (k = 19) counts 0 in R5 and dR as well:
    R5@0.3 = 9 of 10; R5@0.7: k in 14..18 = 5 of 10; dR1@0.3 = sum_{k=10}^{18} (1 - (20 - k)
    / 100) / 10 = (9 - 0.54) / 10."""
    report = score(exact_threshold_preds(KS[:-1]), exact_threshold_gt(), allow_missing=True).to_dict()
    extra = report["mrbench"]
    assert (extra["MR-full-R5@0.3"], extra["MR-full-R5@0.7"]) == (90.0, 50.0)
    assert extra["MR-full-dR1@0.3"] == 84.6
    assert extra["MR-full-dR5@0.3"] == 84.6


def test_ci_of_values_exactly_at_a_threshold() -> None:
    """Every query's top-1 and top-5 IoU is exactly 0.7 (prediction [0, 14] on GT [0, 20]):
    each per-query hit at 0.7 is 1, so the intervals are [100, 100] (a strict > would give 0)."""
    report = score(exact_threshold_preds([14] * 1), [gt_record(14, [[0.0, 20.0]])], ci=True, n_boot=50).to_dict()
    intervals = report["intervals"]
    assert intervals["MR-full-R1@0.7"] == [100.0, 100.0]
    assert intervals["MR-full-R5@0.7"] == [100.0, 100.0]
    assert intervals["MR-full-R5@0.5"] == [100.0, 100.0]


def test_one_query_with_windows_in_three_buckets() -> None:
    """GT windows [0, 5] (short), [20, 40] (middle), [50, 100] (long); the only prediction is
    [20, 40]. Full: one of three windows found at rank 1 -> AP 1/3 at every threshold, R1 100;
    middle bucket: AP and R1 100; short and long: 0."""
    gt = [gt_record(1, [[0.0, 5.0], [20.0, 40.0], [50.0, 100.0]], duration=150.0)]
    report = score([{"qid": 1, "pred_relevant_windows": [[20.0, 40.0, 0.9]]}], gt).to_dict()
    thresholds = [str(j / 20) for j in KS]
    assert report["full"]["MR-mAP"] == dict(dict.fromkeys(thresholds, 33.33), average=33.33)
    assert report["full"]["MR-R1"] == dict.fromkeys(thresholds, 100.0)
    assert report["middle"]["MR-mAP"]["average"] == 100.0
    assert report["middle"]["MR-R1"]["0.95"] == 100.0
    for bucket in ("short", "long"):
        assert report[bucket]["MR-mAP"]["average"] == 0.0
        assert report[bucket]["MR-R1"]["0.5"] == 0.0
    assert report["brief"]["MR-short-mAP"] == 0.0 and report["brief"]["MR-middle-mAP"] == 100.0


def test_spurious_ratio_std_is_rounded_not_a_percentage(tmp_path: Path) -> None:
    """Two masked files with spurious mAP 45 and 55 (the main one 55): ratios 55/45 and 1;
    their sample std |55/45 - 1| / sqrt(2) = 0.157 is shown rounded to 0.16 (not x100)."""
    gt = exact_threshold_gt()
    report = score(exact_threshold_preds(), gt, masked=[exact_threshold_preds(KS[:-1]), exact_threshold_preds()],
                   allow_missing=True).to_dict()
    spurious = report["spurious"]
    assert spurious["std"]["Ratio-mAP"] == 0.16
    assert spurious["brief"]["Ratio-mAP"] == 1.11
    assert spurious["std"]["Spurious-mAP"] == pct(0.1 / math.sqrt(2))


def test_compute_metrics_defaults_and_bootstrap_arguments() -> None:
    """compute_metrics: no intervals unless asked; with ``ci`` the intervals are the bootstrap
    of the per-query values (R1@0.7 hits: queries 14..19) with the given or default seed and
    replicate count (1000, seed 0)."""
    from mrbench.scoring.core import compute_metrics
    from mrbench.scoring.predictions import align_predictions, read_records

    truth = load_ground_truth(exact_threshold_gt())
    main = align_predictions(*read_records(exact_threshold_preds()), truth)
    assert "intervals" not in compute_metrics(main, truth)
    hits = {"MR-full-R1@0.7": np.array([k >= 14 for k in KS])}
    default = compute_metrics(main, truth, ci=True)["intervals"]["MR-full-R1@0.7"]
    assert default == bootstrap_intervals(hits, n_boot=1000, seed=0)["MR-full-R1@0.7"]
    chosen = compute_metrics(main, truth, ci=True, seed=5, n_boot=40)["intervals"]["MR-full-R1@0.7"]
    assert chosen == bootstrap_intervals(hits, n_boot=40, seed=5)["MR-full-R1@0.7"]
    assert chosen != bootstrap_intervals(hits, n_boot=1000, seed=5)["MR-full-R1@0.7"]
    assert chosen != bootstrap_intervals(hits, n_boot=40, seed=0)["MR-full-R1@0.7"]


def test_compute_metrics_saliency_needs_labels_and_spurious_needs_windows() -> None:
    """Predicted saliency against a ground truth without labels adds no HL block; a masked set
    without windows is refused."""
    from mrbench.scoring.core import compute_metrics
    from mrbench.scoring.predictions import align_predictions, read_records

    truth = load_ground_truth(exact_threshold_gt())
    with_saliency = [dict(p, pred_saliency_scores=[1.0] * 50) for p in exact_threshold_preds()]
    main = align_predictions(*read_records(with_saliency), truth)
    assert main.saliency is not None
    data = compute_metrics(main, truth)
    assert not any(key.startswith("HL") for key in data) and not any(k.startswith("HL") for k in data["brief"])
    saliency_only = align_predictions(*read_records([{"qid": k, "pred_saliency_scores": [1.0] * 50} for k in KS]), truth)
    with pytest.raises(ValidationError, match="spurious metrics need 'pred_relevant_windows' in every file"):
        compute_metrics(main, truth, [saliency_only])


def test_bootstrap_defaults_apply_when_not_given() -> None:
    """Called without arguments, the bootstrap uses 1000 replicates and seed 0 (the defaults
    are applied, not only declared): on 0, 1/18, ..., 17/18 the interval is [34.24, 60.19],
    and one replicate more or another seed moves it."""
    values = {"x": np.arange(18) / 18}
    assert bootstrap_intervals(values) == {"x": [34.24, 60.19]}
    assert bootstrap_intervals(values, n_boot=1000, seed=0, level=0.95) == {"x": [34.24, 60.19]}
    assert bootstrap_intervals(values, n_boot=1001, seed=0) == {"x": [34.26, 60.19]}
    assert bootstrap_intervals(values, n_boot=1000, seed=1) != {"x": [34.24, 60.19]}


@pytest.mark.parametrize(("factor_exponent", "fails"), [(-27, False), (-28, True)])
def test_bootstrap_allocation_bound_is_exact(monkeypatch: pytest.MonkeyPatch, factor_exponent: int, fails: bool) -> None:
    """2 replicates of 1 query take 2 * 1 * 8 = 16 bytes: a 16-byte bound passes, 8 bytes
    fails and names --n-boot."""
    monkeypatch.setenv("MRBENCH_SIZE_LIMIT_FACTOR", repr(2.0**factor_exponent))
    values = {"x": np.array([0.5])}
    if not fails:
        assert bootstrap_intervals(values, n_boot=2) == {"x": [50.0, 50.0]}
        return
    with pytest.raises(ValidationError) as info:
        bootstrap_intervals(values, n_boot=2)
    assert str(info.value).startswith("field '--n-boot': 2 bootstrap replicates of 1 queries would need 0.0 GiB")


def test_is_bundle_reads_the_first_4096_bytes_leniently(tmp_path: Path) -> None:
    """A ``.json`` file is a bundle if its first 4096 bytes hold the bundle key or it starts
    (after whitespace) with an object; a multi-byte character cut at byte 4096 is ignored."""
    from mrbench.scoring.bundle import is_bundle

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    key = b'"mrbench_bundle"'
    assert is_bundle(write("obj.json", b"\n  {\"x\": 1}"))
    assert not is_bundle(write("array.json", b"[" + b" " * 5000 + b"]"))
    assert is_bundle(write("early.json", b"[" + b" " * (4096 - 1 - len(key)) + key + b"]"))
    assert not is_bundle(write("late.json", b"[" + b" " * (4096 - len(key)) + key + b"]"))
    assert not is_bundle(write("cut.json", b"[" + b" " * 4094 + "\u00e9".encode() + b"]"))
    assert not is_bundle(write("preds.jsonl", b"{\"mrbench_bundle\": 1}"))
    (tmp_path / "folder").mkdir()
    assert not is_bundle(tmp_path / "folder")
    (tmp_path / "folder" / "bundle.json").write_text("{}", encoding="utf-8")
    assert is_bundle(tmp_path / "folder")


# -- prediction files: exact reasons and shapes (mutation survivors of scoring.predictions) --


def _align(preds: list[dict[str, Any]], gt: list[dict[str, Any]], **kwargs: Any) -> Any:
    from mrbench.scoring.predictions import align_predictions

    return align_predictions("p.jsonl", list(enumerate(preds, start=1)), load_ground_truth(gt), **kwargs)


def _reason(preds: list[dict[str, Any]], gt: list[dict[str, Any]]) -> tuple[str, int | None, Any, str | None]:
    with pytest.raises(ValidationError) as info:
        _align(preds, gt, allow_missing=True)
    return info.value.reason, info.value.line, info.value.qid, info.value.field


W = "pred_relevant_windows"
S = "pred_saliency_scores"


@pytest.mark.parametrize(
    ("second", "reason", "field"),
    [({"qid": 11}, "missing field", W),
     ({"qid": 11, W: []}, "must be a non-empty list of [start, end, score]", W),
     ({"qid": 11, W: [[0.0, 1.0, 0.5], [5.0, 4.0, 0.9]]}, "window 1 [5.0, 4.0, 0.9] is reversed (start > end)", W),
     ({"qid": 11, W: [[float("nan"), 1.0, 0.5]]}, "window 0 [nan, 1.0, 0.5] is not finite (NaN/inf)", W),
     ({"qid": 11, W: [[0.0, float("inf"), 0.5]]}, "window 0 [0.0, inf, 0.5] is not finite (NaN/inf)", W)],
)
def test_prediction_window_errors_give_their_exact_reason(second: dict[str, Any], reason: str, field: str) -> None:
    """The second line (qid 11) is wrong: the reason is worded exactly, with line, qid, field."""
    first = {"qid": 10, W: [[0.0, 10.0, 0.9]]}
    assert _reason([first, second], exact_threshold_gt()) == (reason, 2, 11, field)


@pytest.mark.parametrize(
    ("second", "reason"),
    [({"qid": 11}, "missing field"),
     ({"qid": 11, S: []}, "must be a non-empty list of numbers"),
     ({"qid": 11, S: 0.5}, "must be a non-empty list of numbers")],
)
def test_prediction_saliency_errors_give_their_exact_reason(second: dict[str, Any], reason: str) -> None:
    """A saliency-only file (no windows key on line 1): missing and empty lists are told apart."""
    first = {"qid": 10, S: [0.1, 0.2]}
    assert _reason([first, second], exact_threshold_gt()) == (reason, 2, 11, S)


def test_windows_that_are_all_pairs_are_refused_by_index() -> None:
    """Every window is a 2-number pair (a rectangular numeric array of width 2, not 3): refused
    with the first window's index and value, not packed or crashed on."""
    preds = [{"qid": 10, W: [[0.0, 1.0], [2.0, 3.0]]}]
    assert _reason(preds, exact_threshold_gt()) == (
        "window 0 must be [start, end, score] numbers, got [0.0, 1.0]", 1, 10, W)


def test_zero_length_window_is_accepted_and_counts_are_ints() -> None:
    """start == end is a valid (empty) window; ``n_pred`` holds each row's window count as
    integers (a missing query: 0); windows are packed at the file's width of 2."""
    preds = [{"qid": 11, W: [[5.0, 5.0, 0.9], [0.0, 20.0, 0.5]]}, {"qid": 10, W: [[1.0, 2.0, 0.3]]}]
    result = _align(preds, exact_threshold_gt()[:3], allow_missing=True)
    assert result.gt_rows.tolist() == [1, 0, 2]
    assert result.present.tolist() == [True, True, False]
    assert result.n_pred.tolist() == [2, 1, 0]
    assert all(type(n) is int for n in result.n_pred.tolist())
    assert result.windows.tolist() == [[[5.0, 5.0, 0.9], [0.0, 20.0, 0.5]],
                                       [[1.0, 2.0, 0.3], [0.0, 0.0, 0.0]],
                                       [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]
    assert result.n_missing == 1


def test_align_predictions_refuses_missing_queries_by_default() -> None:
    """``allow_missing`` defaults to False: two of three GT queries without a prediction."""
    with pytest.raises(ValidationError) as info:
        _align([{"qid": 10, W: [[0.0, 1.0, 0.5]]}], exact_threshold_gt()[:3])
    assert info.value.reason.startswith("2 ground-truth queries have no prediction (11, 12); pass --allow-missing")


@pytest.mark.parametrize(("n_listed", "shown"), [(5, "(15, 16, 17, 18, 19)"), (4, "(14, 15, 16, 17, 18, ...)")])
def test_missing_queries_message_ellipsis_only_past_five(n_listed: int, shown: str) -> None:
    """Exactly five missing qids are all shown without "..."; six show five and "..."."""
    with pytest.raises(ValidationError) as info:
        _align(exact_threshold_preds(KS[:n_listed]), exact_threshold_gt())
    assert info.value.reason.startswith(f"{10 - n_listed} ground-truth queries have no prediction {shown}; pass")


QID_GT = [gt_record(1, [[0.0, 2.0]]), gt_record(-3, [[0.0, 2.0]])]


@pytest.mark.parametrize(
    ("qid", "gt", "reason"),
    [(True, QID_GT, "must be an int or a string, got bool"),
     (2.5, QID_GT, "must be an int or a string, got float"),
     (None, QID_GT, "must be an int or a string, got NoneType"),
     ("-3", QID_GT, "qid is not in the ground truth <ground truth> (the ground truth has -3: qid types must match)"),
     ("1", QID_GT, "qid is not in the ground truth <ground truth> (the ground truth has 1: qid types must match)"),
     ("X1", QID_GT, "qid is not in the ground truth <ground truth>"),
     ("abc", QID_GT, "qid is not in the ground truth <ground truth>"),
     (99, QID_GT, "qid is not in the ground truth <ground truth>"),
     (7, [gt_record("7", [[0.0, 2.0]])],
      "qid is not in the ground truth <ground truth> (the ground truth has '7': qid types must match)")],
)
def test_prediction_qid_reasons_and_type_hints(qid: Any, gt: list[dict[str, Any]], reason: str) -> None:
    """bool is refused although it is an int subtype (True would find qid 1); a qid of the
    other type gets a hint in both directions, negative numbers included; no hint otherwise."""
    assert _reason([{"qid": qid, W: [[0.0, 1.0, 0.5]]}], gt) == (reason, 1, qid, "qid")


def test_prediction_limits_of_an_empty_ground_truth_are_the_base_bounds() -> None:
    """No queries (no clips): 2**20 bytes, 1000 lines, 65536 characters per line."""
    from mrbench.scoring.groundtruth import GroundTruth
    from mrbench.scoring.predictions import prediction_limits

    empty = GroundTruth([], np.zeros((0, 1, 2)), np.zeros((0, 1), dtype=bool), np.zeros(0), None,
                        np.zeros(0, dtype=int), "<empty>", [])
    limits = prediction_limits(empty, 1.0)
    assert (limits.max_bytes, limits.max_lines, limits.max_line_chars) == (1 << 20, 1000, 65_536)
    assert limits.why == "the bound for a ground truth of 0 queries of up to 0 clips"


def test_saliency_of_one_clip_videos_is_one_column_wide() -> None:
    """Videos of 3 s (one 2-s clip): the packed saliency is [Q, 1]; extra scores are cut and
    the argmax is taken on the raw list."""
    gt = [gt_record(1, [[0.0, 2.0]], duration=3.0, relevant_clip_ids=[0], saliency_scores=[[1, 2, 3]]),
          gt_record(2, [[0.0, 2.0]], duration=3.0, relevant_clip_ids=[0], saliency_scores=[[1, 2, 3]])]
    with pytest.warns(UserWarning, match="1 queries have pred_saliency_scores of a length other"):
        result = _align([{"qid": 1, S: [0.25]}, {"qid": 2, S: [0.5, 0.75]}], gt)
    assert result.saliency.tolist() == [[0.25], [0.5]]
    assert result.saliency_argmax.tolist() == [0, 1]


def test_read_records_names_a_fifo_as_not_a_prediction_file(tmp_path: Path) -> None:
    """A named pipe is not a regular file: the error says what was expected (read without
    opening it, so nothing blocks)."""
    from mrbench.scoring.predictions import read_records

    fifo = tmp_path / "preds.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ValidationError) as info:
        read_records(fifo)
    assert info.value.reason == "is not a regular file (a prediction file is expected)"


def test_mean_map_averages_the_per_threshold_maps_in_that_order() -> None:
    """mAP is the mean over thresholds of each threshold's mAP (the column means), as the
    reference evaluator computes it. On this matrix the float result depends on the order:
    the mean of all entries gives 0.47 and the mean of the row means 0.47000000000000003."""
    from mrbench.scoring.core import MAP_THRESHOLDS, RetrievalScores

    ap = np.array([[0.9, 0.1, 0.0, 0.9, 0.0, 0.5, 0.0, 0.3, 0.5, 0.4],
                   [0.4, 0.0, 0.0, 0.1, 0.0, 0.7, 0.5, 0.7, 0.2, 0.6],
                   [0.8, 0.4, 0.5, 1.0, 0.8, 1.0, 0.4, 0.7, 1.0, 0.7]])
    assert ap.shape[1] == len(MAP_THRESHOLDS)
    scores = RetrievalScores(ap=ap, iou=np.zeros(3))
    assert scores.mean_map() == 0.4699999999999999
    assert scores.map_at(0.5) == 0.7000000000000001  # (0.9 + 0.4 + 0.8) / 3, summed left to right


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("final_break", [True, False])
def test_json_lines_counts_lines_not_line_breaks(newline: str, final_break: bool) -> None:
    """A file of exactly ``max_lines`` lines is accepted whether or not its last line ends
    with a line break; one line more is refused and counted as such."""
    from mrbench.io import ReadLimits, json_lines

    bound = ReadLimits(10_000, max_lines=2, why="a test bound")

    def text(count: int) -> str:
        return newline.join(f'{{"qid": {k}}}' for k in range(count)) + (newline if final_break else "")

    assert [number for number, _ in json_lines(text(2), "p", bound)] == [1, 2]
    with pytest.raises(ValidationError, match=r"^p: 3 lines is more than the bound of 2"):
        list(json_lines(text(3), "p", bound))
    assert list(json_lines("", "p", bound)) == []
    assert list(json_lines(newline * 2, "p", bound)) == []


def test_dr5_looks_past_the_top_window() -> None:
    """A top-1 miss followed by the exact GT window: dR1 is 0 and dR5 is 100 (the second
    candidate hits with both boundaries exact), at every threshold."""
    preds = [{"qid": 1, "pred_relevant_windows": [[80.0, 90.0, 0.9], [0.0, 20.0, 0.8]]}]
    extra = score(preds, [gt_record(1, [[0.0, 20.0]])]).to_dict()["mrbench"]
    for t in ("0.3", "0.5", "0.7"):
        assert (extra[f"MR-full-dR1@{t}"], extra[f"MR-full-dR5@{t}"]) == (0.0, 100.0)


def one_second_clips() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A 10 s video labelled in 1 s clips (clip 9 exists only at 1 s per clip), and predictions
    whose saliency peaks on clip 9."""
    gt = [gt_record(1, [[8.0, 10.0]], duration=10.0, relevant_clip_ids=[8, 9], saliency_scores=[[1, 1, 1], [4, 4, 4]])]
    preds = [{"qid": 1, "pred_relevant_windows": [[8.0, 10.0, 1.0]], "pred_saliency_scores": [0.0] * 9 + [1.0]}]
    return gt, preds


def test_score_reads_the_clip_length_of_the_dataset_or_the_variant(tmp_path: Path) -> None:
    """The saliency clip length is the one given, else the dataset's (a dataset folder or a
    catalog dataset under ``root``), else the variant's manifest, else 2 s: 1 s clips are
    refused at the 2 s default and scored at 1 s."""
    gt, preds = one_second_clips()
    gt_file = tmp_path / "val.jsonl"
    gt_file.write_text(json.dumps(gt[0]) + "\n")
    with pytest.raises(ValidationError, match=r"clip ids must lie below int\(duration / clip_len\) = 5"):
        score(preds, gt_file)
    expected = score(preds, gt_file, clip_len=1.0).to_dict()
    assert expected["HL-min-VeryGood"]["HL-Hit1"] == 100.0
    # a dataset folder records its clip length; an explicit clip_len still wins
    folder = tmp_path / "data"
    (folder / "annotations").mkdir(parents=True)
    (folder / "annotations" / "val.jsonl").write_text(gt_file.read_text())
    (folder / "dataset.json").write_text(json.dumps({"name": "one-second", "clip_len": 1.0, "video_features": {}}))
    by_folder = score(preds, dataset=str(folder), split="val").to_dict()
    assert by_folder["HL-min-VeryGood"] == expected["HL-min-VeryGood"]
    with pytest.raises(ValidationError, match=r"= 5"):
        score(preds, dataset=str(folder), split="val", clip_len=2.0)
    # a variant's manifest records it too (and serves a --gt file scored with the variant)
    variant = write_variant(tmp_path / "variant", {1: [[0.0, 4.0]]}, gt, clip_len=1.0)
    for report in (score(preds, variant=variant, masked=[preds]), score(preds, gt_file, variant=variant, masked=[preds])):
        assert report.to_dict()["HL-min-VeryGood"] == expected["HL-min-VeryGood"]
    bare = write_variant(tmp_path / "bare", {1: [[0.0, 4.0]]}, gt)
    with pytest.raises(ValidationError, match=r"= 5"):
        score(preds, variant=bare, masked=[preds])


def test_score_finds_a_catalog_dataset_under_root(tmp_path: Path) -> None:
    """``dataset``/``split`` of the catalog read the split's file under ``root`` with the
    dataset's clip length (Charades-STA: 1 s; QVHighlights: 2 s)."""
    gt, preds = one_second_clips()
    (tmp_path / "charades_test_release.jsonl").write_text(json.dumps(gt[0]) + "\n")
    report = score(preds, dataset="charades_sta", split="test", root=tmp_path).to_dict()
    assert report["meta"]["ground_truth"].endswith("charades_test_release.jsonl")
    assert report["HL-min-VeryGood"]["HL-Hit1"] == 100.0 and report["brief"]["MR-full-R1@0.7"] == 100.0
    (tmp_path / "highlight_val_release.jsonl").write_text(json.dumps(gt[0]) + "\n")
    with pytest.raises(ValidationError, match=r"= 5"):
        score(preds, dataset="qvhighlights", split="val", root=tmp_path)
    with pytest.raises(MrbenchError, match="give both --dataset and --split"):
        score(preds, dataset="charades_sta")
    with pytest.raises(MrbenchError, match="give both --dataset and --split"):
        score(preds, split="test")


def test_masked_regions_pack_each_querys_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``masked_regions``: ``[Q, M, 2]`` windows and ``[Q, M]`` validity, M the most windows of
    any query (at least 1, also for no query); the allocation bound names the manifest."""
    import mrbench.io
    from mrbench.masking.variant import Variant
    from mrbench.scoring.core import masked_regions

    (tmp_path / "manifest.json").write_text(json.dumps({"split": "val", "queries": {
        "1": {"masked_windows": [[0.0, 4.0], [10.0, 12.5]]}, "2": {"masked_windows": [[3.0, 5.0]]},
        "3": {"masked_windows": []}}}))
    variant = Variant(tmp_path)
    windows, valid = masked_regions(variant, [2, 1, 3])
    assert windows.tolist() == [[[3.0, 5.0], [0.0, 0.0]], [[0.0, 4.0], [10.0, 12.5]], [[0.0, 0.0], [0.0, 0.0]]]
    assert valid.tolist() == [[True, False], [True, True], [False, False]]
    for qids, shape in (([2], (1, 1, 2)), ([3], (1, 1, 2)), ([], (0, 1, 2))):
        windows, valid = masked_regions(variant, qids)
        assert windows.shape == shape and valid.shape == shape[:2]
    # three queries x two windows x two float64 bounds = 96 bytes: at the bound, then past it
    monkeypatch.delenv("MRBENCH_SIZE_LIMIT_FACTOR", raising=False)
    monkeypatch.setattr(mrbench.io, "MAX_ARRAY_BYTES", 96)
    assert masked_regions(variant, [1, 2, 3])[0].shape == (3, 2, 2)
    monkeypatch.setattr(mrbench.io, "MAX_ARRAY_BYTES", 95)
    with pytest.raises(ValidationError) as info:
        masked_regions(variant, [1, 2, 3])
    assert str(info.value).startswith(f"{tmp_path / 'manifest.json'}: the masked windows would need ")
