"""``score(...)``: validate a submission against its ground truth and compute every metric."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrbench import __version__
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import check_allocation
from mrbench.masking.variant import Variant
from mrbench.metrics.debiased import DEBIASED_NS, debiased_recall
from mrbench.metrics.highlight import highlight_ap, highlight_hit_at_1
from mrbench.metrics.iou import paired_iou
from mrbench.metrics.retrieval import (
    BUCKETS,
    MAP_THRESHOLDS,
    average_precision,
    best_gt_for_top1,
    bucket_window_mask,
    compact_windows,
    recall_at_5,
    threshold_hits,
)
from mrbench.metrics.spurious import center_in_mask
from mrbench.scoring import keys as K
from mrbench.scoring.bootstrap import BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, bootstrap_intervals
from mrbench.scoring.bundle import Bundle, is_bundle, read_bundle
from mrbench.scoring.groundtruth import HL_CLIP_LEN, GroundTruth, GroundTruthLike, load_ground_truth
from mrbench.scoring.predictions import (
    PredictionSet,
    align_predictions,
    prediction_limits,
    read_records,
)
from mrbench.scoring.report import Report

PredictionsLike = str | os.PathLike | Sequence[dict[str, Any]] | Bundle
#: saliency level -> the minimum label counted as relevant
HL_LEVELS = tuple(zip(K.HL_LEVELS, (2, 3, 4), strict=True))
EXTRA_R1 = (0.3,)
R5_THRESHOLDS = (0.3, 0.5, 0.7)
DEBIASED_THRESHOLDS = (0.3, 0.5, 0.7)
SPURIOUS_R1 = (0.5, 0.7, 0.9)


def pct(value: float) -> float:
    """The reference evaluator's rounding: ``float(f"{100 * value:.2f}")``."""
    return float(f"{100 * value:.2f}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything).

    Scoring parses tens of thousands of small, acyclic JSON objects; each allocation burst
    triggers a collection that scans them all, which costs about a quarter of a QVHighlights
    val scoring run. The previous state is restored on exit, also after an error.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@gc_paused()
def score(
    predictions: PredictionsLike,
    gt: GroundTruthLike | None = None,
    *,
    dataset: str | None = None,
    split: str | None = None,
    root: str | os.PathLike | None = None,
    masked: Sequence[str | os.PathLike | Sequence[dict[str, Any]]] = (),
    variant: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    allow_missing: bool = False,
    ci: bool = False,
    seed: int = BOOTSTRAP_SEED,
    n_boot: int = BOOTSTRAP_REPLICATES,
    clip_len: float | None = None,
    limit_factor: float | None = None,
) -> Report:
    """Score predictions (a JSONL path, a list of prediction dicts, or a bundle) -> :class:`Report`.

    Ground truth: ``gt`` (path, :class:`~mrbench.data.schema.Annotations`, list of
    :class:`~mrbench.data.schema.Query` or dicts), else ``dataset``/``split`` from the catalog
    (``root`` as for ``mrbench data``), else the masked ``variant``'s annotations (they keep the
    original windows), else the bundle's metadata. ``masked``: predictions on masked-target
    variants (one per mask seed) for the spurious block; ``variant`` gives their manifests
    (one directory for all files, or one per file; a directory of ``seed*/`` variants counts as
    one per seed). Missing queries raise unless ``allow_missing`` (then they score zero).
    ``ci`` adds bootstrap 95% intervals (``n_boot`` replicates, ``seed``). ``clip_len`` (s) is the
    saliency clip length of the ground truth; by default the dataset's or the variant's, and
    :data:`~mrbench.scoring.groundtruth.HL_CLIP_LEN` for a ``gt`` given directly. Prediction files are
    read within bounds set by the ground truth, scaled by ``limit_factor`` (see
    :func:`~mrbench.scoring.predictions.prediction_limits`).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise MrbenchError(f"n_boot must be a positive integer, got {n_boot!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MrbenchError(f"the bootstrap seed must be a non-negative integer, got {seed!r}")
    bundle = _as_bundle(predictions)
    meta: dict[str, Any] = {}
    if bundle is not None:
        meta.update(bundle.meta)
        main_input: Any = bundle.predictions
        masked_inputs: list[Any] = list(masked) or bundle.masked
        if variant is None and bundle.variant is not None:
            variant = bundle.variant
        dataset = dataset or (None if gt is not None else bundle.meta.get("dataset"))
        split = split or (None if gt is not None else bundle.meta.get("split"))
    else:
        main_input, masked_inputs = predictions, list(masked)
    variants = _variant_dirs(variant)
    truth = _resolve_ground_truth(gt, dataset, split, root, variants, clip_len)
    limits = prediction_limits(truth, limit_factor)

    def read(item: Any) -> tuple[str, list[tuple[int, Any]]]:
        return item if isinstance(item, tuple) else read_records(item, limits=limits)

    main_name, main_records = read(main_input)
    masked_inputs = [read(m) for m in masked_inputs]
    meta.update({"dataset": dataset or meta.get("dataset"), "split": split or meta.get("split")})

    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        main = align_predictions(main_name, main_records, truth, allow_missing=allow_missing)
        masked_sets = [align_predictions(n, r, truth, allow_missing=allow_missing) for n, r in masked_inputs]
    for item in records:
        caught.append(str(item.message))
        warnings.warn(str(item.message), item.category, stacklevel=2)

    masks = _masks(variants, truth, len(masked_sets)) if masked_sets else None
    ordered = compute_metrics(main, truth, masked_sets, masks, ci=ci, seed=seed, n_boot=n_boot)
    if main.saliency is not None and truth.saliency is None:
        meta["highlights"] = "skipped: the ground truth has no saliency labels"
    meta.update({
        "predictions": main_name,
        "masked": [m.name for m in masked_sets],
        "ground_truth": truth.source,
        "variant": [str(v) for v in variants],
        "mrbench_version": __version__,
        "warnings": caught,
    })
    ordered[K.META] = meta
    return Report(ordered, caught)


def compute_metrics(
    main: PredictionSet,
    truth: GroundTruth,
    masked_sets: Sequence[PredictionSet] = (),
    masks: list[tuple[np.ndarray, np.ndarray]] | None = None,
    *,
    ci: bool = False,
    seed: int = BOOTSTRAP_SEED,
    n_boot: int = BOOTSTRAP_REPLICATES,
) -> dict[str, Any]:
    """Every metric of already validated predictions: the report dict without ``meta``.

    ``masks``: per masked file, the masked regions ``([Q_gt, M, 2], [Q_gt, M])`` in GT row order.
    """
    data: dict[str, Any] = {K.BRIEF: {}}
    per_query: dict[str, np.ndarray] = {}
    additions: dict[str, Any] = {}
    full_map: float | None = None
    if main.windows is not None:
        retrieval = _moment_retrieval(main, truth)
        data[K.BRIEF].update(retrieval.brief)
        data.update(retrieval.blocks)
        additions.update(retrieval.additions)
        per_query.update(retrieval.per_query)
        full_map = retrieval.full_map
    if main.saliency is not None and truth.saliency is not None:
        hl_blocks, hl_per_query = _highlights(main, truth)
        for name, block in hl_blocks.items():
            data[K.BRIEF][f"{name}-mAP"] = block[K.BLOCK_HL_MAP]
            data[K.BRIEF][f"{name}-Hit1"] = block[K.BLOCK_HL_HIT1]
        data.update(hl_blocks)
        per_query.update(hl_per_query)
    ordered = {K.BRIEF: data.pop(K.BRIEF)}
    ordered.update(sorted(data.items()))
    additions[K.N_QUERIES] = len(truth)
    additions[K.N_MISSING] = main.n_missing
    ordered[K.MRBENCH] = additions
    if masked_sets:
        if main.windows is None or any(m.windows is None for m in masked_sets):
            raise ValidationError("spurious metrics need 'pred_relevant_windows' in every file",
                                  field="pred_relevant_windows")
        ordered[K.SPURIOUS] = _spurious(main, full_map, list(masked_sets), truth, masks)
    if ci:
        ordered[K.INTERVALS] = bootstrap_intervals(per_query, n_boot=n_boot, seed=seed)
    return ordered


def _as_bundle(predictions: PredictionsLike) -> Bundle | None:
    if isinstance(predictions, Bundle):
        return predictions
    if isinstance(predictions, (str, os.PathLike)) and is_bundle(predictions):
        return read_bundle(predictions)
    return None


def _variant_dirs(variant: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    return [] if variant is None else [v.path for v in Variant.find_all(variant)]


def _resolve_ground_truth(
    gt: GroundTruthLike | None,
    dataset: str | None,
    split: str | None,
    root: str | os.PathLike | None,
    variants: list[Path],
    clip_len: float | None,
) -> GroundTruth:
    """The ground truth, read with clip length ``clip_len`` if given, else the dataset's, else
    the (first) variant's, else :data:`HL_CLIP_LEN`."""
    first = Variant(variants[0]) if variants else None
    recorded = first.clip_len if first is not None else None
    fallback = next(value for value in (clip_len, recorded, HL_CLIP_LEN) if value is not None)
    if gt is not None:
        return load_ground_truth(gt, clip_len=fallback)
    if dataset is not None or split is not None:
        if dataset is None or split is None:
            raise MrbenchError("give both --dataset and --split (or --gt FILE)")
        from mrbench.data.catalog import resolve_split

        source = resolve_split(dataset, split, root=root, clip_len=clip_len)
        if source.answers:  # e.g. QVHighlights' test: the answers are a split of their own
            raise MrbenchError(f"{dataset} split {split!r} is released without answers; "
                               f"score against --split {source.answers}")
        return load_ground_truth(source.load(), clip_len=source.clip_len)
    if first is not None:
        return load_ground_truth(first.annotations, clip_len=fallback)
    raise MrbenchError("no ground truth: pass --gt FILE, or --dataset NAME --split SPLIT, or --variant DIR")


def _masks(variants: list[Path], truth: GroundTruth, n_files: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Masked regions ``([Q_gt, M, 2], [Q_gt, M])`` for each masked file, from the manifests."""
    if not variants:
        return None
    if len(variants) not in (1, n_files):
        raise MrbenchError(f"{len(variants)} variant directories for {n_files} masked prediction files "
                           "(give one for all, or one per file)")
    tables = [masked_regions(Variant(directory), truth.qids) for directory in variants]
    return tables * n_files if len(tables) == 1 else tables


def masked_regions(variant: Variant, qids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The masked regions ``([Q, M, 2], [Q, M])`` of ``qids`` (in that order) from the variant's manifest."""
    regions = [variant.masked_windows(qid) for qid in qids]
    width = max(1, max((len(r) for r in regions), default=1))
    check_allocation((len(regions), width, 2), 8, "the masked windows", file=variant.manifest_path)
    array = np.zeros((len(regions), width, 2))
    mask = np.zeros((len(regions), width), dtype=bool)
    for row, region in enumerate(regions):
        if region:
            array[row, : len(region)] = region
            mask[row, : len(region)] = True
    return array, mask


@dataclass(frozen=True)
class RetrievalScores:
    """Per-query retrieval scores of one prediction set against one set of GT windows.

    ``ap``: ``[Q, T]`` average precision at each of :data:`MAP_THRESHOLDS`; ``iou``: ``[Q]`` IoU of
    the top-1 window with its best GT window (zero for a missing query). Thresholds are looked
    up by value, never by column position.
    """

    ap: np.ndarray
    iou: np.ndarray

    def ap_at(self, threshold: float) -> np.ndarray:
        """Per-query AP at IoU ``threshold`` (one of :data:`MAP_THRESHOLDS`)."""
        return self.ap[:, threshold_column(MAP_THRESHOLDS, threshold)]

    def map_at(self, threshold: float) -> float:
        """mAP at IoU ``threshold``: the column mean of :attr:`ap` (summed as the average is)."""
        return float(self.ap.mean(0)[threshold_column(MAP_THRESHOLDS, threshold)])

    def mean_map(self) -> float:
        """mAP averaged over :data:`MAP_THRESHOLDS`."""
        return float(np.mean(self.ap.mean(0)))

    def hit_at(self, threshold: float) -> np.ndarray:
        """Per-query R1 hit at IoU ``threshold``: ``iou >= threshold``."""
        return self.iou >= threshold


def threshold_column(thresholds: Sequence[float], threshold: float) -> int:
    """The column of ``threshold`` in ``thresholds`` (exact value lookup)."""
    for index, value in enumerate(thresholds):
        if value == threshold:
            return index
    raise KeyError(f"IoU threshold {threshold} is not one of {tuple(thresholds)}")


def retrieval_scores(
    pred: PredictionSet, rows: np.ndarray, gt_windows: np.ndarray, gt_mask: np.ndarray, ap: np.ndarray | None = None,
) -> RetrievalScores:
    """:class:`RetrievalScores` of prediction rows ``rows`` (``ap`` when already computed)."""
    assert pred.windows is not None and pred.n_pred is not None
    if ap is None:
        ap = average_precision(pred.windows[rows], pred.n_pred[rows], gt_windows, gt_mask)
    _, iou = best_gt_for_top1(pred.top1[rows], gt_windows, gt_mask)
    return RetrievalScores(ap, np.where(pred.present[rows], iou, 0.0))


@dataclass
class MomentRetrieval:
    """The moment-retrieval part of a report: blocks per bucket, brief keys, the ``mrbench``
    additions, per-query values for the bootstrap, and the full mAP (for the spurious ratio)."""

    blocks: dict[str, Any]
    brief: dict[str, float]
    additions: dict[str, Any]
    per_query: dict[str, np.ndarray]
    full_map: float


def _moment_retrieval(pred: PredictionSet, truth: GroundTruth) -> MomentRetrieval:
    assert pred.windows is not None and pred.n_pred is not None
    gt_windows = truth.windows[pred.gt_rows]
    gt_mask = truth.window_mask[pred.gt_rows]
    present = pred.present
    parts = []
    for name in (K.FULL, *BUCKETS):
        window_mask = gt_mask if name == K.FULL else bucket_window_mask(gt_windows, gt_mask, *BUCKETS[name])
        rows = np.flatnonzero(window_mask.any(axis=1))
        if len(rows):  # an empty bucket (e.g. "long" on Charades-STA) is absent
            parts.append((name, rows, *compact_windows(gt_windows[rows], window_mask[rows])))
    # one AP call over the buckets' rows stacked (fewer, larger array operations)
    width = max(part[2].shape[1] for part in parts)
    stacked_gt = np.concatenate([np.pad(p[2], ((0, 0), (0, width - p[2].shape[1]), (0, 0))) for p in parts])
    stacked_mask = np.concatenate([np.pad(p[3], ((0, 0), (0, width - p[3].shape[1]))) for p in parts])
    all_rows = np.concatenate([p[1] for p in parts])
    ap_all = average_precision(pred.windows[all_rows], pred.n_pred[all_rows], stacked_gt, stacked_mask)
    offsets = np.cumsum([0] + [len(p[1]) for p in parts])
    blocks: dict[str, Any] = {}
    scores: dict[str, RetrievalScores] = {}
    for (name, rows, bucket_gt, bucket_mask), start, end in zip(parts, offsets[:-1], offsets[1:], strict=True):
        scores[name] = retrieval_scores(pred, rows, bucket_gt, bucket_mask, ap_all[start:end])
        map_by_thr = scores[name].ap.mean(0)
        mr_map = {str(t): pct(v) for t, v in zip(MAP_THRESHOLDS, map_by_thr, strict=True)}
        mr_map["average"] = pct(np.mean(map_by_thr))
        hits = threshold_hits(scores[name].iou, MAP_THRESHOLDS)
        r1 = {str(t): pct(v) for t, v in zip(MAP_THRESHOLDS, hits.mean(0), strict=True)}
        blocks[name] = {K.BLOCK_MAP: mr_map, K.BLOCK_R1: r1}
    full = scores[K.FULL]
    per_query: dict[str, np.ndarray] = {
        K.mr_r1(0.5): full.hit_at(0.5), K.mr_r1(0.7): full.hit_at(0.7),
        K.MR_MAP: full.ap.mean(1), K.mr_map_at(0.5): full.ap_at(0.5), K.mr_map_at(0.75): full.ap_at(0.75),
    }
    additions: dict[str, Any] = {}
    for t in EXTRA_R1:
        additions[K.mr_r1(t)] = pct(np.mean(full.hit_at(t)))
        per_query[K.mr_r1(t)] = full.hit_at(t)
    r5_iou = np.where(present, recall_at_5(pred.windows, pred.n_pred, gt_windows, gt_mask), 0.0)
    for t in R5_THRESHOLDS:
        additions[K.mr_r5(t)] = pct(np.mean(r5_iou >= t))
        per_query[K.mr_r5(t)] = r5_iou >= t
    additions[K.MR_MIOU] = pct(np.mean(full.iou))
    per_query[K.MR_MIOU] = full.iou
    durations = truth.duration[pred.gt_rows]
    for n in DEBIASED_NS:  # dR@1 from the top-1 window, dR@5 from the first five
        debiased = debiased_recall(pred.windows, pred.n_pred, gt_windows, gt_mask, durations, DEBIASED_THRESHOLDS, n=n)
        debiased = np.where(present[:, None], debiased, 0.0)
        for i, t in enumerate(DEBIASED_THRESHOLDS):
            additions[K.mr_dr(n, t)] = pct(np.mean(debiased[:, i]))
            per_query[K.mr_dr(n, t)] = debiased[:, i]
    brief = {
        K.MR_MAP: blocks[K.FULL][K.BLOCK_MAP][K.BLOCK_AVERAGE],
        K.mr_map_at(0.5): blocks[K.FULL][K.BLOCK_MAP]["0.5"],
        K.mr_map_at(0.75): blocks[K.FULL][K.BLOCK_MAP]["0.75"],
        K.mr_r1(0.5): blocks[K.FULL][K.BLOCK_R1]["0.5"],
        K.mr_r1(0.7): blocks[K.FULL][K.BLOCK_R1]["0.7"],
    }
    for name in BUCKETS:
        if name in blocks:
            brief[K.mr_bucket_map(name)] = blocks[name][K.BLOCK_MAP][K.BLOCK_AVERAGE]
    return MomentRetrieval(blocks, dict(sorted(brief.items())), additions, per_query, full.mean_map())


def _highlights(pred: PredictionSet, truth: GroundTruth) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The HL-min-* blocks and their per-query values."""
    assert pred.saliency is not None and pred.saliency_argmax is not None and truth.saliency is not None
    labels = truth.saliency[pred.gt_rows]
    n_clips = truth.n_clips[pred.gt_rows]
    scores = pred.saliency[:, : labels.shape[1]]
    present = pred.present
    levels = [labels >= level for _, level in HL_LEVELS]
    n_ann = labels.shape[2]
    # one pass for the three levels: their annotator columns side by side
    ap_all = highlight_ap(scores, np.concatenate(levels, axis=2), n_clips)
    blocks = {}
    per_query: dict[str, np.ndarray] = {}
    for index, (level_name, _) in enumerate(HL_LEVELS):
        hit = np.where(present, highlight_hit_at_1(pred.saliency_argmax, levels[index], n_clips), 0.0)
        ap = np.where(present[:, None], ap_all[:, index * n_ann : (index + 1) * n_ann], 0.0)
        name = K.hl_block(level_name)
        blocks[name] = {K.BLOCK_HL_MAP: pct(np.mean(ap)), K.BLOCK_HL_HIT1: pct(np.mean(hit))}
        per_query[f"{name}-mAP"] = ap.mean(1)
        per_query[f"{name}-Hit1"] = hit
    return blocks, per_query


def _spurious(
    main: PredictionSet,
    full_map: float | None,
    masked_sets: list[PredictionSet],
    truth: GroundTruth,
    masks: list[tuple[np.ndarray, np.ndarray]] | None,
) -> dict[str, Any]:
    n_gt = len(truth)
    main_top1 = np.zeros((n_gt, 2))
    main_present = np.zeros(n_gt, dtype=bool)
    main_top1[main.gt_rows] = main.top1
    main_present[main.gt_rows] = main.present
    raw: list[dict[str, float | None]] = []
    for index, pred in enumerate(masked_sets):
        scores = retrieval_scores(pred, np.arange(len(pred.gt_rows)),
                                   truth.windows[pred.gt_rows], truth.window_mask[pred.gt_rows])
        values: dict[str, float | None] = {K.spurious(f"R1@{t}"): float(np.mean(scores.hit_at(t))) for t in SPURIOUS_R1}
        values[K.spurious("mAP@0.5")] = scores.map_at(0.5)
        values[K.spurious("mAP@0.75")] = scores.map_at(0.75)
        spurious_map = scores.mean_map()
        values[K.SPURIOUS_MAP] = spurious_map
        values[K.RATIO_MAP] = full_map / spurious_map if spurious_map > 0 and full_map is not None else None
        if masks is not None:
            regions, region_mask = masks[index]
            inside = center_in_mask(pred.top1, regions[pred.gt_rows], region_mask[pred.gt_rows]) & pred.present
            values[K.CENTER_IN_MASK] = float(np.mean(inside))
        both = pred.present & main_present[pred.gt_rows]
        agreement = np.where(both, paired_iou(main_top1[pred.gt_rows], pred.top1), 0.0)
        values[K.TOP1_AGREEMENT] = float(np.mean(agreement))
        raw.append(values)

    def shown(key: str, value: float | None) -> float | None:
        if value is None:
            return None
        return round(value, 2) if key == K.RATIO_MAP else pct(value)

    keys = list(raw[0])
    brief: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for key in keys:
        column = [v[key] for v in raw]
        if any(c is None for c in column):
            brief[key] = std[key] = None
            continue
        array = np.asarray(column, dtype=float)
        brief[key] = shown(key, float(array.mean()))
        std[key] = shown(key, float(array.std(ddof=1))) if len(array) > 1 else None
    per_file = [{"predictions": pred.name, **{k: shown(k, v) for k, v in values.items()}}
                for pred, values in zip(masked_sets, raw, strict=True)]
    return {K.BRIEF: brief, K.STD: std, K.PER_FILE: per_file, K.N_FILES: len(masked_sets)}
