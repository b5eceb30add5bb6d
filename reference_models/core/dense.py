"""Dense (per-point) detection pieces of the single-stage detectors (SnAG, ActionFormer lineage).

Units: the **grid** of the input clips (clip ``i`` sits at grid position ``i``; a time ``s``
seconds is grid ``s / clip_len - offset``, the clip centre convention ``offset = 0.5``). Level
``l`` of a pyramid has stride ``2 ** l`` and its point ``i`` sits at grid ``i * 2 ** l``.

* :func:`level_points`: the points ``[T_l, 4]`` = (t, regression min, regression max, stride) of
  every level. The ranges start at ``[0, R)``; level ``l >= 1`` takes ``[sigma * r, 2 r)`` where
  ``r`` is the previous level's upper bound, and the last level's upper bound is at least
  ``max_len + 1``.
* :func:`assign_points`: labels and offset targets ``(t - s, e - t) / stride`` of every point for
  one or more ground-truth windows per query. A point is positive for a window when it lies
  strictly inside the centre-sampling interval ``(c - radius * stride, c + radius * stride)``
  clipped to the window, and ``max(t - s, e - t)`` lies in its regression range. With several
  windows a point regresses the shortest window it is positive for (ActionFormer's rule; with one
  window this is the release's assignment).
* :func:`focal_loss` (sigmoid focal loss with label smoothing: targets ``1 - eps / 2`` and
  ``eps / 2`` enter both the BCE and ``p_t``; ``alpha_t`` from the hard label) and
  :func:`diou_loss` / :func:`iou_loss` on (left, right) offsets from a common point, per element.
* Post-processing of one query, all in grid units: :func:`collect_candidates` (sigmoid scores at
  valid points above a threshold, the top ``k``, segments ``(t - o_l * stride, t + o_r * stride)``
  longer than a minimum), :func:`gaussian_soft_nms` (the release's C++ soft-NMS, see there) and
  :func:`segment_voting`, joined by :func:`detect`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def regression_ranges(levels: int, first: float, sigma: float, max_len: int) -> list[tuple[float, float]]:
    """``[(min, max)]`` per level (module docstring)."""
    ranges = [(0.0, float(first))]
    upper = float(first)
    for level in range(1, levels):
        low, high = upper * sigma, upper * 2
        if level == levels - 1:
            high = max(high, float(max_len + 1))
        ranges.append((low, high))
        upper = high
    return ranges


def level_points(lengths: list[int], ranges: list[tuple[float, float]], device: torch.device | None = None) -> list[torch.Tensor]:
    """Per level ``[T_l, 4]`` = (t, range min, range max, stride), ``T_l = lengths[l]``."""
    out = []
    for level, (length, (low, high)) in enumerate(zip(lengths, ranges, strict=True)):
        stride = float(2**level)
        t = torch.arange(length, dtype=torch.float32, device=device) * stride
        columns = [t, torch.full_like(t, low), torch.full_like(t, high), torch.full_like(t, stride)]
        out.append(torch.stack(columns, dim=1))
    return out


def assign_points(points: torch.Tensor, windows: torch.Tensor, window_mask: torch.Tensor,
                  radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``labels [B, P]`` (bool) and ``offsets [B, P, 2]`` for ``points [P, 4]`` and grid windows
    ``windows [B, W, 2]`` (start, end) with ``window_mask [B, W]`` (module docstring)."""
    t, low, high, stride = (points[:, i][None, :, None] for i in range(4))  # [1, P, 1]
    start, end = windows[:, None, :, 0], windows[:, None, :, 1]  # [B, 1, W]
    to_start, to_end = t - start, end - t  # [B, P, W]
    centre = 0.5 * (start + end)
    reach = stride * radius
    t_min = torch.maximum(centre - reach, start)
    t_max = torch.minimum(centre + reach, end)
    inside = ((t - t_min) > 0) & ((t_max - t) > 0)
    farthest = torch.maximum(to_start, to_end)
    in_range = (farthest >= low) & (farthest < high)
    positive = inside & in_range & window_mask[:, None, :]
    length = torch.where(positive, (end - start).expand_as(positive), torch.full_like(to_start, float("inf")))
    best = length.argmin(-1, keepdim=True)  # [B, P, 1]
    offsets = torch.stack([to_start.gather(-1, best)[..., 0], to_end.gather(-1, best)[..., 0]], dim=-1)
    return positive.any(-1), offsets / points[None, :, 3:]


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.5, gamma: float = 2.0,
               smoothing: float = 0.2) -> torch.Tensor:
    """Per-element sigmoid focal loss with label smoothing (module docstring), in float32."""
    logits = logits.float()
    hard = labels.float()
    target = hard * (1.0 - smoothing) + smoothing / 2
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * hard + (1 - alpha) * (1 - hard)) * loss
    return loss


def _offset_iou(pred: torch.Tensor, target: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pred, target = pred.float(), target.float()
    lp, rp, lg, rg = pred[:, 0], pred[:, 1], target[:, 0], target[:, 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    return inter / union.clamp(min=eps), pred, target


def iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1 - IoU`` of (left, right) offsets ``[N, 2]`` from a common point (the 1-D gIoU reduces
    to it), per element."""
    return 1.0 - _offset_iou(pred, target, eps)[0]


def diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Distance-IoU loss ``1 - IoU + (centre distance / hull)^2`` of offsets ``[N, 2]``, per element."""
    iou, pred, target = _offset_iou(pred, target, eps)
    hull = torch.maximum(pred[:, 0], target[:, 0]) + torch.maximum(pred[:, 1], target[:, 1])
    rho = 0.5 * (pred[:, 1] - pred[:, 0] - target[:, 1] + target[:, 0])
    return 1.0 - iou + torch.square(rho / hull.clamp(min=eps))


@dataclass(frozen=True)
class DetectSettings:
    """Post-processing thresholds (the release's Charades-STA values by default)."""

    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    min_length: float = 0.1
    sigma: float = 0.9
    min_score: float = 0.001
    max_segments: int = 5
    voting_thresh: float = 0.95


def collect_candidates(points: list[torch.Tensor], logits: list[torch.Tensor], offsets: list[torch.Tensor],
                       masks: list[torch.Tensor], settings: DetectSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate segments ``[K, 2]`` (grid) and scores ``[K]`` of one query, best first, from the
    per-level ``points [T_l, 4]``, ``logits [T_l]``, ``offsets [T_l, 2]`` and ``masks [T_l]``."""
    kept_points, kept_scores, kept_offsets = [], [], []
    for pts, logit, offset, mask in zip(points, logits, offsets, masks, strict=True):
        scores = torch.sigmoid(logit.float()) * mask.float()
        keep = scores > settings.pre_nms_thresh
        kept_points.append(pts[keep])
        kept_scores.append(scores[keep])
        kept_offsets.append(offset.float()[keep])
    pts, scores, offset = torch.cat(kept_points), torch.cat(kept_scores), torch.cat(kept_offsets)
    order = scores.argsort(descending=True)[: settings.pre_nms_topk]
    pts, scores, offset = pts[order], scores[order], offset[order]
    segments = torch.stack([pts[:, 0] - offset[:, 0] * pts[:, 3], pts[:, 0] + offset[:, 1] * pts[:, 3]], dim=-1)
    keep = (segments[:, 1] - segments[:, 0]) > settings.min_length
    return segments[keep], scores[keep]


def gaussian_soft_nms(segments: torch.Tensor, scores: torch.Tensor, sigma: float, min_score: float,
                      max_segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's Gaussian soft-NMS (its C++ ``softnms``, method 2), stopped after
    ``max_segments`` picks: repeatedly pick the first best remaining segment, multiply every
    other remaining score by ``exp(-IoU^2 / sigma)`` (IoU with lengths ``+ 1e-6``, no IoU
    threshold) and drop those below ``min_score`` (each dropped one is replaced by the last
    remaining one, as the release does: this order decides ties). Returns the picks ``[k, 2]``
    and their decayed scores ``[k]``, in pick order (non-increasing)."""
    x1, x2 = segments[:, 0].float().clone(), segments[:, 1].float().clone()
    score = scores.float().clone()
    area = x2 - x1 + 1e-6
    arrays = [x1, x2, score, area]
    left, i = len(score), 0
    picked: list[torch.Tensor] = []
    while i < left and len(picked) < max_segments:
        j = i + int(torch.argmax(score[i:left]))
        picked.append(torch.stack([x1[j], x2[j], score[j]]))
        for a in arrays:
            a[i], a[j] = a[j].clone(), a[i].clone()
        rest = slice(i + 1, left)
        inter = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        overlap = inter / (area[i] + area[rest] - inter)
        score[rest] *= torch.exp(-(overlap * overlap) / sigma)
        good = score[rest] >= min_score
        boundary = i + 1 + int(good.sum())
        holes = (i + 1 + torch.nonzero(~good[: boundary - i - 1]).flatten())
        fillers = (boundary + torch.nonzero(good[boundary - i - 1:]).flatten()).flip(0)
        for a in arrays:
            a[holes] = a[fillers]
        left, i = boundary, i + 1
    if not picked:
        return segments.new_zeros(0, 2), scores.new_zeros(0)
    out = torch.stack(picked)
    return out[:, :2], out[:, 2]


def segment_voting(kept: torch.Tensor, candidates: torch.Tensor, scores: torch.Tensor, thresh: float) -> torch.Tensor:
    """Each kept segment replaced by the score-weighted mean of the candidates whose IoU with it
    is at least ``thresh`` (original, undecayed scores)."""
    left = torch.maximum(kept[:, None, 0], candidates[None, :, 0])
    right = torch.minimum(kept[:, None, 1], candidates[None, :, 1])
    overlap = (right - left).clamp(min=0)
    union = (kept[:, 1] - kept[:, 0])[:, None] + (candidates[:, 1] - candidates[:, 0])[None, :] - overlap
    weights = (overlap / union >= thresh).float() * scores[None, :]
    return (weights / weights.sum(dim=1, keepdim=True)) @ candidates


def suppress(candidates: torch.Tensor, scores: torch.Tensor, settings: DetectSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS, voting, then the best ``max_segments`` by decayed score (the release's
    ``batched_nms``); empty in, empty out."""
    if len(candidates) == 0:
        return candidates.new_zeros(0, 2), scores.new_zeros(0)
    kept, kept_scores = gaussian_soft_nms(candidates, scores, settings.sigma, settings.min_score, settings.max_segments)
    if settings.voting_thresh > 0 and len(kept):
        kept = segment_voting(kept, candidates.float(), scores.float(), settings.voting_thresh)
    order = kept_scores.argsort(descending=True)[: settings.max_segments]
    return kept[order], kept_scores[order]


def detect(points: list[torch.Tensor], logits: list[torch.Tensor], offsets: list[torch.Tensor],
           masks: list[torch.Tensor], settings: DetectSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Segments ``[k, 2]`` (grid) and scores ``[k]`` of one query, best first, ``k <= max_segments``."""
    candidates, scores = collect_candidates(points, logits, offsets, masks, settings)
    return suppress(candidates, scores, settings)
