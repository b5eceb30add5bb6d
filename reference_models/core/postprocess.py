"""From normalised span predictions to the community prediction format.

For one query with ``n`` clips of ``clip_len`` seconds and video ``duration``:
``[s, e] = xx * n * clip_len`` (the length the spans were normalised by in training; with
``span_scale = "duration"``, the release's ``xx * duration``), clipped to ``[0, duration]``; with
``round_to_clip`` both ends are rounded to the nearest clip multiple and, with ``widen_short``, a
window shorter than one clip is widened to one clip (kept inside ``[0, duration]``; the release
keeps it, possibly empty). The release clips to ``[0, 150]`` s (QVHighlights, Charades-STA)
rather than to the duration; the two agree on QVHighlights' 150-s videos. Windows are
sorted by score (stable), optionally thinned by temporal NMS (drop a window whose IoU with a
higher-scored kept window exceeds ``nms_thresh``), and the first ``top_k`` are kept.
"""

from __future__ import annotations

import numpy as np

#: ``span_scale`` values: the clip-feature length (mrbench) or the video's duration (the release)
SPAN_SCALES = ("clips", "duration")


def temporal_nms(windows: np.ndarray, thresh: float) -> np.ndarray:
    """Indices kept by greedy NMS over ``windows [K, 2]`` already sorted by score (best first)."""
    keep: list[int] = []
    for i, (start, end) in enumerate(windows):
        ok = True
        for j in keep:
            inter = max(0.0, min(end, windows[j, 1]) - max(start, windows[j, 0]))
            union = (end - start) + (windows[j, 1] - windows[j, 0]) - inter
            if union > 0 and inter / union > thresh:
                ok = False
                break
        if ok:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def soft_nms(windows: np.ndarray, scores: np.ndarray, thresh: float, sigma: float,
             top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The BAM-DETR release's NMS over ``windows [K, 2]`` and ``scores [K]``: repeatedly keep the
    best remaining window and multiply the score of every other remaining window whose IoU with
    it exceeds ``thresh`` by ``exp(-IoU^2 / sigma)``, where IoU = intersection / hull (the
    release's, not the union); at most ``top_k`` kept, in the order kept, with decayed scores."""
    windows = np.asarray(windows, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).copy()
    if len(windows) == 1:
        return windows, scores
    left = list(range(len(windows)))
    kept: list[int] = []
    while left and len(kept) < top_k:
        best = max(left, key=lambda i: scores[i])  # the first of equal scores, as list.index(max)
        for i in left:
            if i == best:
                continue
            inter = max(0.0, min(windows[best, 1], windows[i, 1]) - max(windows[best, 0], windows[i, 0]))
            hull = max(windows[best, 1], windows[i, 1]) - min(windows[best, 0], windows[i, 0])
            iou = inter / hull if hull != 0 else 0.0
            if iou > thresh:
                scores[i] *= np.exp(-(iou * iou) / sigma)
        kept.append(best)
        left.remove(best)
    index = np.asarray(kept, dtype=np.int64)
    return windows[index], scores[index]


def to_windows(
    spans: np.ndarray, scores: np.ndarray, n_clips: int, clip_len: float, duration: float,
    round_to_clip: bool = True, nms_thresh: float = -1.0, top_k: int = 10, span_scale: str = "clips",
    widen_short: bool = True, nms_sigma: float = 0.0,
) -> list[list[float]]:
    """``[[start, end, score], ...]`` in seconds, best first, from normalised xx ``spans [Q, 2]``
    (``nms_sigma > 0``: :func:`soft_nms` on the first ``top_k`` windows instead of hard NMS)."""
    if span_scale not in SPAN_SCALES:
        raise ValueError(f"span_scale must be one of {', '.join(SPAN_SCALES)}, got {span_scale!r}")
    length = duration if span_scale == "duration" else n_clips * clip_len
    seconds = np.asarray(spans, dtype=np.float64) * length
    seconds = np.clip(seconds, 0.0, duration)
    if round_to_clip:
        seconds = np.round(seconds / clip_len) * clip_len
        if widen_short:
            short = seconds[:, 1] - seconds[:, 0] < clip_len
            seconds[short, 1] = np.minimum(seconds[short, 0] + clip_len, duration)
            seconds[short, 0] = np.maximum(seconds[short, 1] - clip_len, 0.0)
        seconds = np.clip(seconds, 0.0, duration)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    seconds, scores = seconds[order], np.asarray(scores)[order]
    if nms_thresh is not None and nms_thresh > 0 and nms_sigma > 0:
        seconds, scores = soft_nms(seconds[:top_k], scores[:top_k], nms_thresh, nms_sigma, top_k)
    elif nms_thresh is not None and nms_thresh > 0:
        kept = temporal_nms(seconds, nms_thresh)
        seconds, scores = seconds[kept], scores[kept]
    return [[round(float(s), 4), round(float(e), 4), round(float(p), 4)] for (s, e), p in zip(seconds[:top_k], scores[:top_k], strict=True)]
