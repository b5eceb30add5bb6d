"""The query-blind mask detector (mrbench.mask_detector): it finds the masked span of every
masking strategy on synthetic data, not the ground truth of unmasked videos, a hand-made span
exactly, deterministically, and its output scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.features import FeatureStore
from mrbench.data.schema import Query, write_annotations
from mrbench.data.synth import SynthConfig, generate
from mrbench.errors import MrbenchError
from mrbench.mask_detector import predict_mask_detector, span_scores, standardized
from mrbench.masking.build import build, source_from_dir
from mrbench.masking.variant import Variant
from mrbench.metrics.iou import paired_iou
from mrbench.scoring import score

# top-1 IoU >= 0.5 rates measured on this data (40 val queries, dims 64,32, margin 3 s):
# noise 1.0, zero 1.0, mean 0.975, swap 1.0, recontext 0.875; unmasked vs ground truth 0.05
MIN_HIT = {"noise": 0.9, "zero": 0.9, "mean": 0.85, "swap": 0.9, "recontext": 0.75}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SynthConfig(n_train=0, n_val=40, n_ood=0, dims="64,32")
    return generate(config, tmp_path_factory.mktemp("synth") / "data", progress=False)


@pytest.fixture(scope="module")
def variants(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("masked")
    out = {}
    for strategy in MIN_HIT:
        build(source_from_dir(synth, "val"), root / strategy, strategy=strategy, margin=3.0, seeds=[0])
        out[strategy] = root / strategy
    return out


def hull(windows: list[list[float]]) -> np.ndarray:
    return np.array([min(w[0] for w in windows), max(w[1] for w in windows)], dtype=float)


def top1_hits(predictions: list[dict], truth: dict[object, list[list[float]]]) -> float:
    ious = [float(paired_iou(np.array(p["pred_relevant_windows"][0][:2]), hull(truth[p["qid"]])))
            for p in predictions]
    return float(np.mean(np.array(ious) >= 0.5))


def check_valid(predictions: list[dict], records: list[Query], max_windows: int = 10) -> None:
    by_qid = {r.qid: r for r in records}
    assert [p["qid"] for p in predictions] == [r.qid for r in records]
    for p in predictions:
        record = by_qid[p["qid"]]
        assert p["vid"] == record.vid and p["query"] == record.query
        windows = p["pred_relevant_windows"]
        assert 1 <= len(windows) <= max_windows
        assert all(0 <= s < e <= record.duration for s, e, _ in windows)
        assert [w[2] for w in windows] == sorted((w[2] for w in windows), reverse=True)
        spans = np.array([w[:2] for w in windows])
        for k in range(1, len(spans)):  # non-maximum suppression
            assert paired_iou(spans[:k], spans[k]).max() <= 0.7
        assert len(p["pred_saliency_scores"]) >= 1
        assert all(np.isfinite(v) and v >= 0 for v in p["pred_saliency_scores"])


@pytest.mark.parametrize("strategy", list(MIN_HIT))
def test_finds_the_masked_span(variants: dict[str, Path], strategy: str) -> None:
    variant = Variant(variants[strategy])
    predictions = predict_mask_detector(variant.path)
    records = DatasetDir(variant.path).load(variant.split).records
    check_valid(predictions, records)
    masked = {p["qid"]: variant.masked_windows(p["qid"]) for p in predictions}
    assert top1_hits(predictions, masked) >= MIN_HIT[strategy]


def test_unmasked_videos_do_not_point_at_the_ground_truth(synth: Path) -> None:
    records = DatasetDir(synth).load("val").records
    predictions = predict_mask_detector(synth, split="val")
    check_valid(predictions, records)
    assert top1_hits(predictions, {r.qid: r.windows for r in records}) <= 0.25


def test_deterministic_and_scores(variants: dict[str, Path]) -> None:
    path = variants["noise"]
    first = predict_mask_detector(path, max_windows=5)
    assert first == predict_mask_detector(path, max_windows=5)
    assert all(len(p["pred_relevant_windows"]) <= 5 for p in first)
    report = score(first, Variant(path).annotations).to_dict()
    assert "MR-full-mAP" in report["brief"]
    assert report["brief"]["MR-full-mAP"] > 10


def hand_dataset(root: Path, features: dict[str, np.ndarray], duration: float, clip_len: float = 2.0) -> Path:
    directory = DatasetDir(root)
    store = FeatureStore(directory.features_root)
    for feature_type, array in features.items():
        store.write_video(feature_type, "v1", array)
    directory.annotation_path("val").parent.mkdir(parents=True, exist_ok=True)
    write_annotations(directory.annotation_path("val"),
                      [Query(qid=1, query="a man opens a door", vid="v1", duration=duration, windows=[[0, 1]])])
    directory.write_info(DatasetInfo(name="hand", clip_len=clip_len,
                                     video_features={t: a.shape[1] for t, a in features.items()}, splits=["val"]))
    return root


def test_hand_case_constant_video_with_a_replaced_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = np.tile(rng.normal(size=(1, 6)), (10, 1)).astype(np.float32)
    base[3:6] = rng.normal(size=6).astype(np.float32)  # clips 3, 4, 5 replaced by one other vector
    flat = np.full((10, 4), 7.0, dtype=np.float32)  # a constant source adds nothing
    root = hand_dataset(tmp_path / "hand", {"slowfast_features": 100 * base, "clip_features": flat}, duration=20)
    (prediction,) = predict_mask_detector(root, split="val")
    windows = prediction["pred_relevant_windows"]
    assert windows[0][:2] == [6.0, 12.0]
    # T = ||3 * 0.7 d|| * sqrt(10 / 21) = sqrt(2.1) |d|, and standardising makes |d|^2 = 1 / 0.21
    assert windows[0][2] == pytest.approx(np.sqrt(10), abs=1e-4)
    saliency = prediction["pred_saliency_scores"]
    assert len(saliency) == 10 and np.argmax(saliency) == 3 and saliency[3] == saliency[4] == saliency[5]
    assert min(saliency[:3] + saliency[6:]) < saliency[3]


def test_edge_span_is_reported_not_its_complement(tmp_path: Path) -> None:
    base = np.zeros((10, 3), dtype=np.float32)
    base[:3] = 1.0  # the first three clips differ: [0, 3) and [3, 10) split the video alike
    root = hand_dataset(tmp_path / "edge", {"clip_features": base}, duration=19.5)
    windows = predict_mask_detector(root, split="val", max_windows=100)[0]["pred_relevant_windows"]
    assert windows[0][:2] == [0.0, 6.0]
    assert all(not (s == 6.0 and e == 19.5) for s, e, _ in windows)  # the complement is no candidate
    assert max(e for _, e, _ in windows) == 19.5  # ends clipped to the duration


def test_one_clip_video_and_statistic(tmp_path: Path) -> None:
    root = hand_dataset(tmp_path / "one", {"clip_features": np.ones((1, 3), dtype=np.float32)}, duration=1.5)
    (prediction,) = predict_mask_detector(root, split="val")
    assert prediction["pred_relevant_windows"] == [[0.0, 1.5, 0.0]]
    # the prefix-sum statistic equals the direct two-sample contrast
    x = standardized({"a": np.random.default_rng(1).normal(size=(7, 5))})
    t = span_scores(x)
    for i, j in [(0, 3), (2, 5), (4, 7), (1, 2)]:
        inside, outside = x[i:j], np.concatenate([x[:i], x[j:]])
        direct = np.linalg.norm(inside.mean(0) - outside.mean(0)) * np.sqrt(len(inside) * len(outside) / 7)
        assert t[i, j] == pytest.approx(direct)
    assert np.isnan(t[0, 7]) and np.isnan(t[3, 3])


def test_needs_a_variant_or_a_split(synth: Path, tmp_path: Path) -> None:
    with pytest.raises(MrbenchError, match="split="):
        predict_mask_detector(synth)
    with pytest.raises(MrbenchError, match="max_windows"):
        predict_mask_detector(synth, split="val", max_windows=0)
