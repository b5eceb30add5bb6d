"""Boundary-aware blocks (BAM-DETR's): boundary feature maps, a 1-D deformable boundary sampler,
the boundary decoder layer, and the IoU-quality and boundary losses.

All tensors are batch-first; masks are True at valid clips. Positions on the time axis are
normalised to [0, 1] by a sample's valid length ``W`` (``n_clips``).

* :class:`BoundaryMaps`: two conv stacks (k3-ReLU-k3-ReLU-k1-ReLU, ``d`` channels) over the clip
  features give a left and a right boundary map ``[B, L, d]``.
* :class:`BoundarySampler`: per head and query, ``points`` offsets (in clips) and softmax weights
  are predicted from the query; the projected value ``Linear(2d -> d)`` is read by linear
  interpolation at ``clamp(b + offset / W, 0, 1)`` (``b`` = the boundary point) on the sample's
  own grid ``[0, W - 1]``; the weighted sum over points goes through ``Linear(d, d)``. The
  per-head results enter ``output_proj`` channel-interleaved (channel ``c * nhead + h``), as the
  release lays them out. ``padded_length=True`` reproduces the release's grid: the location is
  scaled by ``W / T`` and read on the batch's padded grid ``[0, T - 1]`` (a sample's samples then
  move with the batch's longest video, and may read padded clips).
* :class:`BoundaryDecoderLayer`: ``LN2(q + Dropout(sampler(q)))``, then ``LN3(. + FFN(.))``.
* :func:`quality_loss`: L1 between a predicted quality and the max IoU of each (detached)
  prediction with any target, averaged separately over the bins IoU > 0.7, (0.3, 0.7] and
  <= 0.3 (an empty bin counts 0), then the mean of the three.
* :func:`boundary_loss`: class-balanced BCE between the boundaryness ``mean_c tanh(map)`` of each
  clip and targets that are 1 at clip centres ``i + 0.5`` in ``[s - 0.25 len, s + 0.1 len]``
  (left) and ``[e - 0.1 len, e + 0.25 len]`` (right), in clips.
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.core.layers import FeedForward
from reference_models.core.span import cxw_to_xx, pairwise_iou


def boundary_conv(d_model: int) -> nn.Sequential:
    """Conv1d(k3) -> ReLU -> Conv1d(k3) -> ReLU -> Conv1d(k1) -> ReLU, ``d_model`` channels."""
    return nn.Sequential(
        nn.Conv1d(d_model, d_model, 3, padding=1), nn.ReLU(),
        nn.Conv1d(d_model, d_model, 3, padding=1), nn.ReLU(),
        nn.Conv1d(d_model, d_model, 1), nn.ReLU(),
    )


class BoundaryMaps(nn.Module):
    """Left and right boundary maps ``[B, L, d]`` of clip features ``[B, L, d]``.

    ``padded_length=False`` zeroes padded clips before every conv, so a valid clip's maps equal
    those of the sample alone (the convs' own zero padding); the release convolves the padded
    clips' features."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.left = boundary_conv(d_model)
        self.right = boundary_conv(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, padded_length: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        keep = None if padded_length else mask.unsqueeze(1).to(x.dtype)  # [B, 1, L]
        x = x.transpose(1, 2)
        out = []
        for stack in (self.left, self.right):
            y = x
            for module in stack:
                if keep is not None and isinstance(module, nn.Conv1d):
                    y = y * keep
                y = module(y)
            out.append(y.transpose(1, 2))
        return out[0], out[1]


class BoundarySampler(nn.Module):
    """1-D deformable sampling around one boundary point per query (module docstring)."""

    def __init__(self, d_model: int, nhead: int, points: int = 4) -> None:
        super().__init__()
        self.d_model = d_model
        self.nhead = nhead
        self.points = points
        self.point_weights = nn.Linear(d_model, nhead * points)
        self.point_offsets = nn.Linear(d_model, nhead * points)
        self.value_proj = nn.Linear(2 * d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        nn.init.zeros_(self.point_weights.weight)
        nn.init.zeros_(self.point_weights.bias)
        nn.init.zeros_(self.point_offsets.weight)
        with torch.no_grad():  # point p of every head starts p + 1 clips after the boundary
            self.point_offsets.bias.copy_(torch.arange(1, points + 1, dtype=torch.float32).repeat(nhead))

    def forward(
        self, query: torch.Tensor, value: torch.Tensor, point: torch.Tensor, length: torch.Tensor,
        padded_length: bool = False,
    ) -> torch.Tensor:
        """``query [B, Q, d]``, ``value [B, T, 2d]``, boundary ``point [B, Q]`` (normalised by the
        valid ``length [B]``) -> ``[B, Q, d]``."""
        b, q, _ = query.shape
        t = value.shape[1]
        h, p = self.nhead, self.points
        value = self.value_proj(value).view(b, t, h, -1).permute(0, 2, 1, 3)  # [B, H, T, dh]
        offsets = self.point_offsets(query).view(b, q, h, p)
        weights = self.point_weights(query).view(b, q, h, p).softmax(-1)
        w = length.to(offsets.dtype)[:, None, None, None]
        location = point[..., None, None] + offsets / w
        if padded_length:
            location = (location * (w / t)).clamp(0, 1) * (t - 1)
        else:
            location = location.clamp(0, 1) * (w - 1)
        low = location.floor().clamp(0, t - 1)
        frac = (location - low).to(value.dtype)
        low = low.long()
        high = (low + 1).clamp(max=t - 1)
        dh = value.shape[-1]

        def read(index: torch.Tensor) -> torch.Tensor:  # [B, Q, H, P] -> [B, Q, H, P, dh]
            flat = index.permute(0, 2, 1, 3).reshape(b, h, q * p, 1).expand(-1, -1, -1, dh)
            return value.gather(2, flat).view(b, h, q, p, dh).permute(0, 2, 1, 3, 4)

        sampled = read(low) * (1 - frac)[..., None] + read(high) * frac[..., None]
        out = (sampled * weights[..., None]).sum(3)  # [B, Q, H, dh]
        return self.output_proj(out.transpose(2, 3).reshape(b, q, self.d_model))


class BoundaryDecoderLayer(nn.Module):
    """Boundary query update: deformable sampling, residual + LayerNorm, FFN + LayerNorm.
    (``norm1`` is built, as in the release, and unused.)"""

    def __init__(self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "prelu") -> None:
        super().__init__()
        self.sampler = BoundarySampler(d_model, nhead)
        self.ffn = FeedForward(d_model, dim_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        for param in self.norm1.parameters():
            param.requires_grad_(False)

    def forward(self, query: torch.Tensor, value: torch.Tensor, point: torch.Tensor, length: torch.Tensor,
                padded_length: bool = False) -> torch.Tensor:
        x = self.norm2(query + self.dropout2(self.sampler(query, value, point, length, padded_length)))
        return self.norm3(x + self.dropout3(self.ffn(x)))


def quality_loss(quality: torch.Tensor, spans: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor,
                 bins: tuple[float, float] = (0.3, 0.7)) -> torch.Tensor:
    """IoU-quality loss of ``quality [B, Q]`` for cxw ``spans [B, Q, 2]`` against cxw ``targets
    [B, W, 2]`` (``target_mask [B, W]``); IoUs on [0, 1]-clamped xx spans (module docstring)."""
    with torch.no_grad():
        iou, _ = pairwise_iou(cxw_to_xx(spans.detach().float()).clamp(0, 1), cxw_to_xx(targets.float()).clamp(0, 1))
        iou = iou.nan_to_num(0.0).masked_fill(~target_mask[:, None, :], -1.0).amax(-1).clamp(min=0)
    error = (quality.float() - iou).abs().flatten()
    iou = iou.flatten()
    low, high = bins
    total = error.new_zeros(())
    for part in (iou > high, (iou <= high) & (iou > low), iou <= low):
        count = part.sum()
        total = total + torch.where(count > 0, (error * part).sum() / count.clamp(min=1), error.new_zeros(()))
    return total / 3.0


def boundary_targets(targets: torch.Tensor, target_mask: torch.Tensor, lengths: torch.Tensor, clips: int,
                     inner: float = 0.1, outer: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right boundary labels ``[B, clips]`` (float 0/1) of cxw ``targets [B, W, 2]``
    normalised by ``lengths [B]`` clips (module docstring)."""
    xx = cxw_to_xx(targets.float()).clamp(0, 1) * lengths.float()[:, None, None]
    start, end = xx[..., 0:1], xx[..., 1:2]  # [B, W, 1]
    size = end - start
    centre = torch.arange(clips, device=targets.device, dtype=torch.float32) + 0.5
    real = target_mask[..., None]
    left = ((centre >= start - size * outer) & (centre <= start + size * inner) & real).any(1)
    right = ((centre >= end - size * inner) & (centre <= end + size * outer) & real).any(1)
    return left.float(), right.float()


def boundary_loss(maps: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor, video_mask: torch.Tensor,
                  padded_length: bool = False) -> torch.Tensor:
    """Class-balanced BCE of the boundaryness of ``maps [B, L, 2d]`` (left half, right half).

    Positives weigh ``1 / #positives``, negatives ``1 / #negatives`` of the sample's valid clips;
    the loss is summed over valid clips, x 0.5 (and x 0.5 for the left/right mean), averaged over
    the batch. ``padded_length=True`` is the release: targets placed on the batch's padded length
    ``L`` instead of the sample's own, and negatives weighted ``1 / (#negatives in L + #padded)``."""
    maps = maps.float()
    d = maps.shape[-1] // 2
    pred_left = torch.tanh(maps[..., :d]).mean(-1)
    pred_right = torch.tanh(maps[..., d:]).mean(-1)
    batch, clips = pred_left.shape
    valid = video_mask.float()
    lengths = torch.full((batch,), float(clips), device=maps.device) if padded_length else valid.sum(1)
    total = maps.new_zeros(batch, clips)
    padded = (1 - valid).sum(-1, keepdim=True)
    for pred, label in zip((pred_left, pred_right), boundary_targets(targets, target_mask, lengths, clips), strict=True):
        if not padded_length:
            label = label * valid
        positive = label * (1.0 / (label.sum(-1, keepdim=True) + 1e-9))
        if padded_length:
            negative = (1 - label) * (1.0 / ((1 - label).sum(-1, keepdim=True) + padded + 1e-9))
        else:
            negative = (1 - label) * valid * (1.0 / (((1 - label) * valid).sum(-1, keepdim=True) + 1e-9))
        bce = -(label * pred.log().clamp(min=-100) + (1 - label) * (1 - pred).log().clamp(min=-100))
        total = total + bce * (positive + negative) * 0.5
    return ((total * valid).sum(-1) * 0.5).mean()
