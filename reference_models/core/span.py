"""Span operations on ``(..., 2)`` tensors.

Two formats: ``xx`` = (start, end) and ``cxw`` = (center, width), both normalised to [0, 1] by
the clip-feature length in seconds (``n_clips * clip_len``). Temporal IoU of spans a, b:
``inter = max(0, min(e_a, e_b) - max(s_a, s_b))``, ``union = len_a + len_b - inter``,
``IoU = inter / union``. gIoU = ``IoU - (hull - union) / hull`` with ``hull = max(e) - min(s)``.
"""

from __future__ import annotations

import torch


def cxw_to_xx(spans: torch.Tensor) -> torch.Tensor:
    """(center, width) -> (start, end)."""
    center, width = spans.unbind(-1)
    return torch.stack([center - 0.5 * width, center + 0.5 * width], dim=-1)


def xx_to_cxw(spans: torch.Tensor) -> torch.Tensor:
    """(start, end) -> (center, width)."""
    start, end = spans.unbind(-1)
    return torch.stack([0.5 * (start + end), end - start], dim=-1)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and union ``[..., N, M]`` of xx spans ``a [..., N, 2]`` and ``b [..., M, 2]``."""
    a_start, a_end = a[..., :, None, 0], a[..., :, None, 1]
    b_start, b_end = b[..., None, :, 0], b[..., None, :, 1]
    inter = (torch.minimum(a_end, b_end) - torch.maximum(a_start, b_start)).clamp(min=0)
    union = (a_end - a_start) + (b_end - b_start) - inter
    return inter / union, union


def pairwise_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU ``[..., N, M]`` of xx spans ``a [..., N, 2]`` and ``b [..., M, 2]``."""
    iou, union = pairwise_iou(a, b)
    hull = torch.maximum(a[..., :, None, 1], b[..., None, :, 1]) - torch.minimum(
        a[..., :, None, 0], b[..., None, :, 0]
    )
    return iou - (hull - union) / hull


def paired_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU ``[...]`` of corresponding xx spans ``a [..., 2]`` and ``b [..., 2]``."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    hull = torch.maximum(a[..., 1], b[..., 1]) - torch.minimum(a[..., 0], b[..., 0])
    return inter / union - (hull - union) / hull


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``log(x / (1 - x))`` with x clamped to [eps, 1 - eps]."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
