"""Prediction validation (errors name file, line, qid, field), missing queries, saliency
length handling, bundles and the spurious block, on small hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrbench.errors import ValidationError
from mrbench.scoring import read_bundle, score, write_bundle

GT = [
    {"qid": 1, "query": "a", "duration": 10, "vid": "v1", "relevant_clip_ids": [1, 2],
     "saliency_scores": [[4, 3, 2], [2, 2, 4]], "relevant_windows": [[2, 6]]},
    {"qid": 2, "query": "b", "duration": 10, "vid": "v2", "relevant_clip_ids": [0, 1, 3, 4],
     "saliency_scores": [[1, 2, 3], [4, 4, 4], [0, 2, 2], [3, 1, 0]], "relevant_windows": [[0, 4], [6, 10]]},
    {"qid": 3, "query": "c", "duration": 10, "vid": "v3", "relevant_clip_ids": [2, 3],
     "saliency_scores": [[2, 2, 2], [4, 4, 4]], "relevant_windows": [[4, 8]]},
]
PERFECT = [
    {"qid": 1, "pred_relevant_windows": [[2, 6, 0.9]], "pred_saliency_scores": [0, 3, 2, 0, 0]},
    {"qid": 2, "pred_relevant_windows": [[0, 4, 0.9], [6, 10, 0.8]], "pred_saliency_scores": [1, 4, 0, 2, 1]},
    {"qid": 3, "pred_relevant_windows": [[4, 8, 0.9]], "pred_saliency_scores": [0, 0, 2, 4, 0]},
]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


@pytest.fixture
def gt_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "gt.jsonl", GT)


def lines(**changes: object) -> list:
    """PERFECT as JSON lines, with line numbers (1-based) replaced by the given text/objects."""
    out: list = [json.dumps(r) for r in PERFECT]
    for key, value in changes.items():
        out[int(key[1:]) - 1] = value if isinstance(value, str) else json.dumps(value)
    return out


BAD_CASES = {
    "bad-json": (lines(l2='{"qid": 2, "pred_relevant_windows": [[0, 4, 0.9]'), ["preds.jsonl:2", "invalid JSON"]),
    "not-object": (lines(l2="[1, 2]"), ["preds.jsonl:2", "JSON object"]),
    "no-qid": (lines(l2={"pred_relevant_windows": [[0, 4, 1]], "pred_saliency_scores": [1]}), [":2", "field 'qid'"]),
    "no-windows": (lines(l3={"qid": 3, "pred_saliency_scores": [1, 2, 3, 4, 5]}),
                   [":3", "qid 3", "field 'pred_relevant_windows'", "missing field"]),
    "no-saliency": (lines(l3={"qid": 3, "pred_relevant_windows": [[4, 8, 0.9]]}), [":3", "field 'pred_saliency_scores'"]),
    "nan": (lines(l2='{"qid": 2, "pred_relevant_windows": [[0, NaN, 0.9]], "pred_saliency_scores": [1]}'),
            [":2", "qid 2", "not finite"]),
    "inf-score": (lines(l2='{"qid": 2, "pred_relevant_windows": [[0, 4, Infinity]], "pred_saliency_scores": [1]}'),
                  [":2", "not finite"]),
    "reversed": (lines(l1={"qid": 1, "pred_relevant_windows": [[2, 6, 0.9], [6, 2, 0.5]], "pred_saliency_scores": [1]}),
                 [":1", "qid 1", "window 1", "reversed"]),
    "unknown-qid": (lines(l3={"qid": 99, "pred_relevant_windows": [[4, 8, 0.9]], "pred_saliency_scores": [1]}),
                    [":3", "qid 99", "not in the ground truth"]),
    "str-qid": (lines(l3={"qid": "3", "pred_relevant_windows": [[4, 8, 0.9]], "pred_saliency_scores": [1]}),
                [":3", "qid types must match"]),
    "duplicate": (lines(l3={"qid": 1, "pred_relevant_windows": [[4, 8, 0.9]], "pred_saliency_scores": [1]}),
                  [":3", "qid 1", "duplicate qid (first on line 1)"]),
    "missing": (lines()[:2], ["1 ground-truth queries have no prediction (3)", "--allow-missing"]),
    "empty-windows": (lines(l2={"qid": 2, "pred_relevant_windows": [], "pred_saliency_scores": [1]}),
                      [":2", "non-empty list"]),
    "no-score": (lines(l2={"qid": 2, "pred_relevant_windows": [[0, 4]], "pred_saliency_scores": [1]}),
                 [":2", "qid 2", "window 0 must be [start, end, score]"]),
    "string-coord": (lines(l2={"qid": 2, "pred_relevant_windows": [["0", 4, 1]], "pred_saliency_scores": [1]}),
                     [":2", "[start, end, score]"]),
    "bad-saliency": (lines(l2='{"qid": 2, "pred_relevant_windows": [[0, 4, 1]], "pred_saliency_scores": [1, NaN]}'),
                     [":2", "field 'pred_saliency_scores'", "score 1"]),
    "empty-saliency": (lines(l2={"qid": 2, "pred_relevant_windows": [[0, 4, 1]], "pred_saliency_scores": []}),
                       [":2", "field 'pred_saliency_scores'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_invalid_predictions_name_the_location(
    case: str, tmp_path: Path, gt_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mrbench.cli import main

    records, fragments = BAD_CASES[case]
    preds = write_jsonl(tmp_path / "preds.jsonl", records)
    with pytest.raises(ValidationError) as info:
        score(preds, gt_file)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    with pytest.raises(SystemExit) as exit_info:  # the command: exit code 2, the same one line
        main(["score", str(preds), "--gt", str(gt_file)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_perfect_predictions(gt_file: Path) -> None:
    report = score(PERFECT, gt_file).to_dict()
    assert set(report["full"]["MR-R1"].values()) == {100.0}
    assert set(report["full"]["MR-mAP"].values()) == {100.0}
    assert report["mrbench"]["MR-full-mIoU"] == 100.0 and report["mrbench"]["MR-full-dR1@0.7"] == 100.0
    assert "spurious" not in report and "intervals" not in report


def test_allow_missing_scores_zero_not_dropped(tmp_path: Path, gt_file: Path) -> None:
    report = score(PERFECT[:2], gt_file, allow_missing=True).to_dict()
    assert report["full"]["MR-R1"]["0.5"] == 66.67  # the reference would drop qid 3 and say 100
    assert report["full"]["MR-mAP"]["average"] == 66.67
    assert report["mrbench"]["n_missing"] == 1 and report["mrbench"]["n_queries"] == 3
    assert report["HL-min-Fair"]["HL-Hit1"] == 66.67


def test_saliency_length_mismatch_is_cut_or_padded_with_a_warning(gt_file: Path) -> None:
    short = [dict(p) for p in PERFECT]
    short[0] = {**short[0], "pred_saliency_scores": [0, 3, 2, 0]}  # one clip short: padded with 0
    short[2] = {**short[2], "pred_saliency_scores": [0, 0, 2, 4, 0, 9]}  # one too many: cut (argmax 5 misses)
    padded = [dict(p) for p in PERFECT]
    padded[0] = {**padded[0], "pred_saliency_scores": [0, 3, 2, 0, 0]}
    with pytest.warns(UserWarning, match=r"2 queries have pred_saliency_scores .* line 1, qid 1: 4 vs 5"):
        report = score(short, gt_file).to_dict()
    expected = score(padded, gt_file).to_dict()
    for level in ("Fair", "Good", "VeryGood"):
        assert report[f"HL-min-{level}"]["HL-mAP"] == expected[f"HL-min-{level}"]["HL-mAP"]
    assert report["HL-min-Fair"]["HL-Hit1"] == 66.67  # qid 3's argmax is clip 5, past the video
    assert any("pred_saliency_scores" in w for w in report["meta"]["warnings"])


def test_highlight_numbers_by_hand(gt_file: Path) -> None:
    report = score(PERFECT, gt_file).to_dict()
    # Hit1 (VeryGood, >= 4): q1 argmax clip 1 -> [2,2,4] yes; q2 clip 1 -> [4,4,4] yes; q3 clip 3 yes
    assert report["HL-min-VeryGood"]["HL-Hit1"] == 100.0
    # q1 annotator 0 at VeryGood: positives {clip 1}; clip 1 has the top score -> AP 1.
    # q1 annotator 2 at VeryGood: positive clip 2 (score 2, ranked 2nd of 5) -> AP 1/2.
    from mrbench.metrics import highlight_ap
    from mrbench.scoring import align_predictions, load_ground_truth, read_records

    truth = load_ground_truth(gt_file)
    pred = align_predictions(*read_records(PERFECT), truth)
    ap = highlight_ap(pred.saliency, (truth.saliency[pred.gt_rows] >= 4).astype(float), truth.n_clips[pred.gt_rows])
    assert ap[0].tolist() == [1.0, 0.0, 0.5]


# --- spurious block -----------------------------------------------------------------------------

MASKED_0 = [{"qid": 1, "pred_relevant_windows": [[2, 6, 0.9]]},
            {"qid": 2, "pred_relevant_windows": [[0, 2, 0.9]]},
            {"qid": 3, "pred_relevant_windows": [[0, 2, 0.9]]}]
MASKED_1 = [{"qid": q, "pred_relevant_windows": [[8, 10, 0.9]]} for q in (1, 2, 3)]


def make_variant(directory: Path) -> Path:
    (directory / "annotations").mkdir(parents=True)
    write_jsonl(directory / "annotations" / "val.jsonl",
                [{**g, "vid": f"{g['vid']}__mask_q{g['qid']}"} for g in GT])
    queries = {str(g["qid"]): {"qid": g["qid"], "vid": f"{g['vid']}__mask_q{g['qid']}", "source_vid": g["vid"],
                               "masked_clips": [[int(s // 2), int(e // 2)] for s, e in g["relevant_windows"]],
                               "masked_windows": [[float(s), float(e)] for s, e in g["relevant_windows"]]}
               for g in GT}
    manifest = {"mrbench_version": "0", "split": "val", "strategy": "noise", "margin": 0.0, "seed": 0,
                "clip_len": 2.0, "queries": queries, "files": {}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


EXPECTED_0 = {"Spurious-R1@0.5": 66.67, "Spurious-R1@0.7": 33.33, "Spurious-R1@0.9": 33.33,
              "Spurious-mAP@0.5": 50.0, "Spurious-mAP@0.75": 33.33, "Spurious-mAP": 35.0,
              "Ratio-mAP": 2.86, "Center-in-mask": 66.67, "Top1-IoU-orig-vs-masked": 50.0}
EXPECTED_1 = {"Spurious-R1@0.5": 33.33, "Spurious-R1@0.7": 0.0, "Spurious-R1@0.9": 0.0,
              "Spurious-mAP@0.5": 16.67, "Spurious-mAP@0.75": 0.0, "Spurious-mAP": 1.67,
              "Ratio-mAP": 60.0, "Center-in-mask": 33.33, "Top1-IoU-orig-vs-masked": 0.0}


def test_spurious_block_by_hand(tmp_path: Path, gt_file: Path) -> None:
    variant = make_variant(tmp_path / "masked")
    report = score(PERFECT, gt_file, masked=[MASKED_0, MASKED_1], variant=variant).to_dict()
    spurious = report["spurious"]
    assert spurious["n_files"] == 2
    assert {k: v for k, v in spurious["per_file"][0].items() if k != "predictions"} == EXPECTED_0
    assert {k: v for k, v in spurious["per_file"][1].items() if k != "predictions"} == EXPECTED_1
    assert spurious["brief"]["Spurious-R1@0.5"] == 50.0
    assert spurious["std"]["Spurious-R1@0.5"] == 23.57  # sample std of 66.67 and 33.33
    assert spurious["brief"]["Spurious-mAP"] == 18.33
    assert spurious["brief"]["Ratio-mAP"] == 31.43
    assert spurious["brief"]["Center-in-mask"] == 50.0
    assert spurious["brief"]["Top1-IoU-orig-vs-masked"] == 25.0
    # the variant's annotations are the ground truth when none is given
    assert score(PERFECT, masked=[MASKED_0], variant=variant).to_dict()["spurious"]["brief"] == {
        **EXPECTED_0}
    # without a variant there is no center-in-mask diagnostic; one file has no std
    alone = score(PERFECT, gt_file, masked=[MASKED_0]).to_dict()["spurious"]
    assert "Center-in-mask" not in alone["brief"] and alone["std"]["Spurious-mAP"] is None


def test_seed_directories_pair_with_masked_files(tmp_path: Path, gt_file: Path) -> None:
    make_variant(tmp_path / "masked" / "seed0")
    make_variant(tmp_path / "masked" / "seed1")
    report = score(PERFECT, gt_file, masked=[MASKED_0, MASKED_1], variant=tmp_path / "masked").to_dict()
    assert report["meta"]["variant"] == [str(tmp_path / "masked" / "seed0"), str(tmp_path / "masked" / "seed1")]
    assert report["spurious"]["per_file"][1]["Center-in-mask"] == 33.33
    with pytest.raises(Exception, match="2 variant directories for 3"):
        score(PERFECT, gt_file, masked=[MASKED_0, MASKED_1, MASKED_0], variant=tmp_path / "masked")


def test_manifest_without_a_query_is_an_error(tmp_path: Path, gt_file: Path) -> None:
    variant = make_variant(tmp_path / "masked")
    manifest = json.loads((variant / "manifest.json").read_text())
    del manifest["queries"]["2"]
    (variant / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValidationError, match=r"manifest.json: qid 2: field 'queries'"):
        score(PERFECT, gt_file, masked=[MASKED_0], variant=variant)


def test_masked_file_is_validated_like_the_standard_one(tmp_path: Path, gt_file: Path) -> None:
    bad = write_jsonl(tmp_path / "m.jsonl", [MASKED_0[0], MASKED_0[0], MASKED_0[2]])
    with pytest.raises(ValidationError, match=r"m.jsonl:2: qid 1: field 'qid': duplicate"):
        score(PERFECT, gt_file, masked=[bad])


def test_bundle_file_and_directory(tmp_path: Path, gt_file: Path) -> None:
    variant = make_variant(tmp_path / "masked")
    meta = {"dataset": "tiny", "split": "val", "model": "perfect", "features": "none", "seed": 1}
    bundle = write_bundle(tmp_path / "sub.json", meta, PERFECT, [MASKED_0, MASKED_1], variant=str(variant))
    report = score(bundle, gt_file).to_dict()
    assert report["spurious"]["per_file"][0]["Center-in-mask"] == 66.67
    assert report["meta"]["model"] == "perfect" and report["meta"]["seed"] == 1
    assert report["full"]["MR-mAP"]["average"] == 100.0

    directory = tmp_path / "bundle_dir"
    directory.mkdir()
    write_jsonl(directory / "preds.jsonl", PERFECT)
    write_jsonl(directory / "m0.jsonl", MASKED_0)
    (directory / "bundle.json").write_text(json.dumps({
        "mrbench_bundle": 1, "meta": meta, "predictions": "preds.jsonl",
        "masked": [{"name": "seed0", "predictions": "m0.jsonl"}]}))
    assert read_bundle(directory).meta == meta
    report = score(directory, gt_file).to_dict()
    assert report["spurious"]["brief"]["Spurious-mAP"] == 35.0
    assert report["meta"]["predictions"] == str(directory / "preds.jsonl")


def test_bundle_errors_name_the_item(tmp_path: Path, gt_file: Path) -> None:
    bad = [dict(p) for p in PERFECT]
    bad[1] = {"qid": 2, "pred_relevant_windows": [[4, 0, 0.9]], "pred_saliency_scores": [1]}
    bundle = write_bundle(tmp_path / "sub.json", {}, bad)
    with pytest.raises(ValidationError, match=r"sub.json\[predictions\]:2: qid 2: .*reversed"):
        score(bundle, gt_file)
    (tmp_path / "nobundle.json").write_text('{"predictions": []}')
    with pytest.raises(ValidationError, match="not an mrbench bundle"):
        score(tmp_path / "nobundle.json", gt_file)


def test_ground_truth_problems(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="relevant_windows"):
        score(PERFECT, [{k: v for k, v in g.items() if k != "relevant_windows"} for g in GT])
    with pytest.raises(Exception, match="no ground truth"):
        score(PERFECT)
    with pytest.raises(Exception, match="both --dataset and --split"):
        score(PERFECT, dataset="qvhighlights")


def test_gzip_and_json_array_files(tmp_path: Path, gt_file: Path) -> None:
    import gzip

    expected = score(PERFECT, gt_file).to_dict()["brief"]
    packed = tmp_path / "preds.jsonl.gz"
    packed.write_bytes(gzip.compress("\n".join(json.dumps(p) for p in PERFECT).encode()))
    assert score(packed, gt_file).to_dict()["brief"] == expected
    array = tmp_path / "preds.json"
    array.write_text(json.dumps(PERFECT, indent=2))
    assert score(array, gt_file).to_dict()["brief"] == expected
    array.write_text(json.dumps([PERFECT[0], {**PERFECT[1], "qid": 7}, PERFECT[2]], indent=2))
    with pytest.raises(ValidationError, match=r"preds.json:2: qid 7"):
        score(array, gt_file)


def test_ground_truth_file_is_cached_until_it_changes(tmp_path: Path) -> None:
    from mrbench.scoring import load_ground_truth

    path = write_jsonl(tmp_path / "gt.jsonl", GT)
    first = load_ground_truth(path)
    assert load_ground_truth(str(path)) is first
    write_jsonl(path, GT[:2])
    again = load_ground_truth(path)
    assert again is not first and len(again) == 2
