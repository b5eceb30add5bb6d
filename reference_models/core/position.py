"""Position encodings.

* :func:`sine_1d`: for a padding mask ``[B, L]`` (valid clips first), position ``x_t`` =
  ``cumsum(mask)_t / (n_valid + 1e-6) * 2 pi`` (normalised by each sample's own length), and
  ``PE[t, 2i] = sin(x_t / T^(2i / D))``, ``PE[t, 2i + 1] = cos(x_t / T^(2i / D))``, T = 1e4.
* :func:`anchor_sine`: DAB-DETR's embedding of (center, width) anchors in [0, 1]: each coordinate
  times 2 pi through the same interleaved sin/cos with ``D / 2`` features, concatenated ``[c ; w]``.
* :class:`LearnedPosition`: a learned table (used for the text by models that switch it on).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _interleave(x: torch.Tensor, dims: int, temperature: float) -> torch.Tensor:
    """``[..., dims]``: interleaved sin/cos of ``x [...]`` over ``dims`` frequencies."""
    i = torch.arange(dims, device=x.device, dtype=torch.float32)
    freq = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / dims)
    angle = x.float()[..., None] / freq
    return torch.stack([angle[..., 0::2].sin(), angle[..., 1::2].cos()], dim=-1).flatten(-2)


def sine_1d(mask: torch.Tensor, dims: int, temperature: float = 10000.0) -> torch.Tensor:
    """``[B, L, dims]`` length-normalised sine encoding of the valid positions of ``mask``."""
    position = mask.float().cumsum(1)
    position = position / (position[:, -1:] + 1e-6) * (2 * math.pi)
    return _interleave(position, dims, temperature)


def anchor_sine(anchors: torch.Tensor, dims: int = 256, temperature: float = 10000.0) -> torch.Tensor:
    """``[..., dims]`` sine embedding of (center, width) anchors ``[..., 2]``."""
    scaled = anchors * (2 * math.pi)
    return torch.cat([_interleave(scaled[..., 0], dims // 2, temperature),
                      _interleave(scaled[..., 1], dims // 2, temperature)], dim=-1)


class LearnedPosition(nn.Module):
    """Learned positions ``LayerNorm(table[0..L-1])`` for sequences up to ``max_len``."""

    def __init__(self, max_len: int, dims: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.table = nn.Embedding(max_len, dims)
        self.norm = nn.LayerNorm(dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Positions ``[B, L, dims]`` for a sequence ``x [B, L, ...]``."""
        index = torch.arange(x.shape[1], device=x.device)
        return self.dropout(self.norm(self.table(index))).unsqueeze(0).expand(x.shape[0], -1, -1)
