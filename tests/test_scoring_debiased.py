"""dR@1 and dR@5 in the scorer's report, against hand-computed values."""

from __future__ import annotations

import pytest

from mrbench.scoring import score


def _gt(qid: int, windows: list[list[float]], duration: float = 100.0) -> dict:
    return {"qid": qid, "query": "q", "vid": f"v{qid}", "duration": duration, "relevant_windows": windows}


def test_dr1_and_dr5_by_hand() -> None:
    gt = [_gt(1, [[40, 60]]), _gt(2, [[0, 20]])]
    preds = [
        # query 1: top-1 misses; the 2nd candidate hits (IoU 20/24) with both ends 2 s off:
        # discount (1 - 0.02) * (1 - 0.02) = 0.9604
        {"qid": 1, "pred_relevant_windows": [[0, 10, 0.9], [38, 62, 0.8], [70, 80, 0.7]]},
        # query 2: top-1 [0, 25] hits at IoU 0.8 (not 0.9), end 5 s off: 1 * 0.95 = 0.95
        {"qid": 2, "pred_relevant_windows": [[0, 25, 0.9]]},
    ]
    extra = score(preds, gt)["mrbench"]
    assert extra["MR-full-dR1@0.5"] == pytest.approx(100 * 0.95 / 2)
    assert extra["MR-full-dR1@0.7"] == pytest.approx(100 * 0.95 / 2)
    assert extra["MR-full-dR5@0.5"] == pytest.approx(100 * (0.9604 + 0.95) / 2)
    assert extra["MR-full-dR5@0.7"] == pytest.approx(100 * (0.9604 + 0.95) / 2)
    assert extra["MR-full-dR5@0.3"] == pytest.approx(100 * (0.9604 + 0.95) / 2)


def test_a_missing_query_scores_zero_in_dr5() -> None:
    gt = [_gt(1, [[40, 60]]), _gt(2, [[0, 20]])]
    preds = [{"qid": 1, "pred_relevant_windows": [[40, 60, 0.9]]}]
    extra = score(preds, gt, allow_missing=True)["mrbench"]
    assert extra["MR-full-dR5@0.5"] == pytest.approx(50.0)
    assert extra["MR-full-dR1@0.5"] == pytest.approx(50.0)
