"""score(): exact parity with the reference evaluators on the golden cases and on the prediction
files that published models committed, plus the report layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import mrbench
from mrbench.data.schema import read_annotations
from mrbench.scoring import load_ground_truth, score
from tests.conftest import require_shared

QVH_VAL = ("data", "qvhighlights", "highlight_val_release.jsonl")
QVH_TEST = ("data", "qvhighlights", "highlight_test_with_gt.jsonl")
CHARADES_TEST = ("data", "charades_sta", "charades_test_release.jsonl")


@pytest.fixture(scope="module")
def qvh_truth() -> dict[str, object]:
    return {
        "val": load_ground_truth(require_shared(*QVH_VAL)),
        "test": load_ground_truth(require_shared(*QVH_TEST)),
    }


def test_golden_qvhighlights_val_bit_for_bit() -> None:
    preds = require_shared("golden", "qvh_val_preds.jsonl")
    reference = json.loads(require_shared("golden", "qvh_val_metrics_reference.json").read_text())
    report = mrbench.score(str(preds), require_shared(*QVH_VAL)).to_dict()
    for key, block in reference.items():
        assert report[key] == block, key
    assert list(report)[:8] == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood", "full", "long", "middle", "short"]
    assert list(report["brief"]) == list(reference["brief"])


def test_golden_charades_lighthouse_and_univtg() -> None:
    preds = require_shared("golden", "charades_test_preds.jsonl")
    lighthouse = json.loads(require_shared("golden", "charades_test_metrics_reference_lighthouse.json").read_text())
    univtg = json.loads(require_shared("golden", "charades_test_metrics_reference_univtg.json").read_text())
    report = score(preds, require_shared(*CHARADES_TEST)).to_dict()
    assert report["full"] == lighthouse["full"]
    for key, value in lighthouse["brief"].items():
        assert report["brief"][key] == value
    # the empty "long" bucket (no GT window over 30 s) is absent, not a crash or a zero
    assert "long" not in report and "MR-long-mAP" not in report["brief"]
    assert not any(k.startswith("HL") for k in report)
    # UniVTG: same quantities under other names
    extra = report["mrbench"]
    for t in ("0.3", "0.5", "0.7"):
        assert extra[f"MR-full-R5@{t}"] == univtg["brief"][f"MR-full-R5@{t}-key"]
    assert extra["MR-full-R1@0.3"] == univtg["brief"]["MR-full-R1@0.3-key"]
    assert extra["MR-full-mIoU"] == univtg["brief"]["MR-full-mIoU-key"]
    for t, value in report["full"]["MR-R1"].items():
        assert univtg["full"]["MR-R1"][t] == value
    for bucket in ("short", "middle"):
        assert report[bucket]["MR-mAP"] == univtg[bucket]["MR-mAP"]
        for t, value in report[bucket]["MR-R1"].items():
            assert univtg[bucket]["MR-R1"][t] == value


def test_charades_univtg_r5_and_miou_at_every_threshold_and_bucket() -> None:
    import numpy as np

    from mrbench.metrics import best_gt_for_top1, bucket_window_mask, recall_at_5
    from mrbench.metrics.retrieval import WIDE_THRESHOLDS
    from mrbench.scoring import align_predictions, read_records
    from mrbench.scoring.core import pct

    univtg = json.loads(require_shared("golden", "charades_test_metrics_reference_univtg.json").read_text())
    truth = load_ground_truth(require_shared(*CHARADES_TEST))
    pred = align_predictions(*read_records(require_shared("golden", "charades_test_preds.jsonl")), truth)
    windows, mask = truth.windows[pred.gt_rows], truth.window_mask[pred.gt_rows]
    for bucket, (low, high) in {"full": (0, 1e9), "short": (0, 10), "middle": (10, 30)}.items():
        in_bucket = bucket_window_mask(windows, mask, low, high)
        rows = in_bucket.any(1)
        _, iou = best_gt_for_top1(pred.top1[rows], windows[rows], in_bucket[rows])
        assert pct(np.mean(iou)) == univtg[bucket]["MR-mIoU"]
        for t in WIDE_THRESHOLDS:
            assert pct(np.mean(iou >= t)) == univtg[bucket]["MR-R1"][str(t)], (bucket, t)
        r5 = recall_at_5(pred.windows[rows], pred.n_pred[rows], windows[rows], in_bucket[rows])
        for t in WIDE_THRESHOLDS:
            assert pct(np.mean(r5 >= t)) == univtg[bucket]["MR-R5"][str(t)], (bucket, t)


def _real_cases() -> list[tuple[str, dict]]:
    path = Path(__file__).resolve().parents[1].parent / "shared" / "real_predictions" / "expected.json"
    if not path.is_file():
        return [("absent", {})]
    return sorted(json.loads(path.read_text()).items())


@pytest.mark.parametrize(("name", "expected"), _real_cases(), ids=[n for n, _ in _real_cases()])
def test_real_predictions_score_to_reference_brief(name: str, expected: dict, qvh_truth: dict) -> None:
    preds = require_shared("real_predictions", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saliency lists one clip short in some files
        report = score(preds, qvh_truth[expected["split"]]).to_dict()
    assert report["brief"] == expected["reference_brief"]


def test_gt_as_query_list_or_dicts_gives_the_same_report() -> None:
    path = require_shared(*CHARADES_TEST)
    preds = [json.loads(line) for line in require_shared("golden", "charades_test_preds.jsonl").read_text().splitlines()]
    from_path = score(preds, path).to_dict()
    queries = read_annotations(path).records
    assert score(preds, queries).to_dict()["full"] == from_path["full"]
    assert score(preds, [q.to_dict() for q in queries]).to_dict()["brief"] == from_path["brief"]
    assert from_path["meta"]["predictions"] == "<predictions>"


def test_dataset_and_split_from_the_catalog(tmp_path: Path) -> None:
    root = tmp_path / "charades_sta"
    root.mkdir()
    (root / "charades_test_release.jsonl").write_bytes(require_shared(*CHARADES_TEST).read_bytes())
    preds = require_shared("golden", "charades_test_preds.jsonl")
    report = score(preds, dataset="charades_sta", split="test", root=root).to_dict()
    assert report["brief"]["MR-full-mAP"] == 46.14
    assert report["meta"]["dataset"] == "charades_sta" and report["meta"]["split"] == "test"


def test_bootstrap_intervals_are_seeded_and_bracket_the_value() -> None:
    preds = require_shared("golden", "charades_test_preds.jsonl")
    gt = load_ground_truth(require_shared(*CHARADES_TEST))
    first = score(preds, gt, ci=True, seed=3, n_boot=200).to_dict()
    again = score(preds, gt, ci=True, seed=3, n_boot=200).to_dict()
    other = score(preds, gt, ci=True, seed=4, n_boot=200).to_dict()
    assert first["intervals"] == again["intervals"] != other["intervals"]
    low, high = first["intervals"]["MR-full-mAP"]
    assert low < first["brief"]["MR-full-mAP"] < high and high - low < 5
    low, high = first["intervals"]["MR-full-mIoU"]
    assert low < first["mrbench"]["MR-full-mIoU"] < high


@pytest.mark.parametrize(
    "parts", [("data", "tacos", "tacos_test_release.jsonl"), ("data", "activitynet", "activitynet_val_release.jsonl")]
)
def test_perfect_predictions_on_tacos_and_activitynet(parts: tuple[str, ...]) -> None:
    """String qids (TACoS) and windows longer than 150 s (ActivityNet: in "full", in no bucket)."""
    records = read_annotations(require_shared(*parts)).records
    preds = [{"qid": q.qid, "pred_relevant_windows": [[*w, 1.0] for w in q.windows]} for q in records]
    report = score(preds, records).to_dict()
    assert report["brief"]["MR-full-mAP"] == 100.0 and report["full"]["MR-R1"]["0.95"] == 100.0
    assert report["mrbench"]["MR-full-mIoU"] == 100.0 and report["mrbench"]["n_queries"] == len(records)
    for bucket in ("short", "middle", "long"):
        if bucket in report:
            assert report[bucket]["MR-mAP"]["average"] == 100.0
    if isinstance(records[0].qid, str):
        bad = [*preds[:-1], {**preds[-1], "qid": "nope"}]
        with pytest.raises(Exception, match="qid 'nope'"):
            score(bad, records)
