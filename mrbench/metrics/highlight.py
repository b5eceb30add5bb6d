"""Highlight-detection metrics of QVHighlights: HL-mAP and HL-Hit1 (reference semantics).

Labels are per clip and per annotator (``[Q, C, A]``, 1 = the annotator's score reaches the
level: >= 2 "Fair", >= 3 "Good", >= 4 "VeryGood").

* **Hit1**: the clip with the highest predicted saliency (first on ties) is a hit when any
  annotator labels it positive; a clip index past the video's clips is a miss.
* **AP** (per query and annotator): a column of all negatives scores 0 and all positives 1.
  Otherwise, over the distinct predicted scores taken as thresholds (highest first), precision
  ``TP / #clips scored >= threshold`` is interpolated (max over all lower thresholds) and AP is
  the *unweighted mean* of the interpolated precision over the distinct recall levels, each
  taken at the first threshold that reaches it. This equals sklearn's ``precision_recall_curve``
  route of the reference; without tied scores it is ordinary interpolated AP.
"""

from __future__ import annotations

import numpy as np

from mrbench.metrics._reduce import ordered_row_sum


def highlight_hit_at_1(argmax_clip: np.ndarray, labels: np.ndarray, n_clips: np.ndarray) -> np.ndarray:
    """``[Q]`` hits (0/1 floats): ``labels[q, argmax_clip[q]]`` has a positive annotator, and the
    clip exists (``argmax_clip < n_clips``)."""
    argmax_clip = np.asarray(argmax_clip)
    inside = argmax_clip < np.asarray(n_clips)
    index = np.minimum(argmax_clip, labels.shape[1] - 1)
    chosen = np.take_along_axis(labels, index[:, None, None], axis=1)[:, 0, :]
    return np.where(inside, chosen.max(axis=1), 0.0).astype(float)


def highlight_ap(scores: np.ndarray, labels: np.ndarray, n_clips: np.ndarray) -> np.ndarray:
    """Per query and annotator AP ``[Q, A]``.

    ``scores [Q, C]`` are the predicted saliencies already cut or zero-padded to each video's
    ``n_clips[q]`` clips (entries past it are ignored); ``labels [Q, C, A]`` binary.
    """
    scores = np.asarray(scores, dtype=float)
    n_queries, width = scores.shape
    n_clips = np.asarray(n_clips)
    valid = np.arange(width)[None, :] < n_clips[:, None]
    labels = np.moveaxis(np.asarray(labels) > 0, 2, 1) & valid[:, None, :]  # [Q, A, C]
    order = np.argsort(np.where(valid, -scores, np.inf), axis=1, kind="stable")
    ranked = np.take_along_axis(np.where(valid, scores, -np.inf), order, axis=1)
    ranked_valid = np.take_along_axis(valid, order, axis=1)
    following = np.concatenate([ranked[:, 1:], np.full((n_queries, 1), -np.inf)], axis=1)
    group_end = ranked_valid & (ranked != following)  # last clip of each run of tied scores
    has_ties = (ranked_valid & ~group_end).any(axis=1)

    ranked_labels = np.take_along_axis(labels, order[:, None, :], axis=2)
    positives = ranked_labels.sum(axis=2)
    ap = np.where(positives == n_clips[:, None], 1.0, 0.0)  # constant columns: 1 or 0
    rows, columns = np.nonzero((positives > 0) & (positives < n_clips[:, None]))
    hits = ranked_labels[rows, columns]  # [R, C]
    tps = np.cumsum(hits, axis=1, dtype=np.int16)
    # A new recall level starts at the end of each group of tied scores that holds a positive;
    # without ties, at every positive clip. Only those points matter: any other threshold has
    # the recall of an earlier level and a lower precision.
    level = hits.copy()
    tied = np.flatnonzero(has_ties[rows])
    if len(tied):
        ends = group_end[rows[tied]]
        at_end = np.maximum.accumulate(np.where(ends, tps[tied], 0), axis=1)
        previous = np.concatenate([np.zeros((len(tied), 1), dtype=tps.dtype), at_end[:, :-1]], axis=1)
        level[tied] = ends & (tps[tied] > previous)
    precision = np.where(level, tps / np.arange(1.0, width + 1.0), 0.0)
    interpolated = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    total, counts = ordered_row_sum(interpolated, level, reverse=True)
    ap[rows, columns] = total / counts
    return ap
