"""Convolutional-transformer encoders of the single-stage detectors (SnAG, ActionFormer lineage).

Tensors are channel-first, ``[B, C, T]``, with boolean masks ``[B, 1, T]`` (True = valid), as
convolutions over time want them. The blocks:

* :class:`ChannelNorm`: LayerNorm over the channels of a ``[B, C, T]`` tensor;
* :func:`sinusoid`: the absolute position encoding ``[sin(t / f_i) ; cos(t / f_i)] / sqrt(C)``
  with ``f_i = 10000 ** (i / (C / 2))``, computed for any length;
* :class:`MaskedAttention`: multi-head attention with 1x1-conv projections, q and k each
  scaled by ``d ** -1/4``; global (padded keys masked) or local (each query sees the valid keys
  at most ``window // 2`` positions away, i.e. banded attention, which equals the release's
  chunked window attention; rows of padded queries are zeroed);
* :class:`EncoderBlock`: pre-norm ``x <- skip + LayerScale(attn(LN(x)))``,
  ``x <- x + LayerScale(FFN(LN(x)) * mask)``. With ``stride >= 1`` q, k and v first pass through
  depthwise k3 convs (stride ``stride``) and a LayerNorm each; with stride 2 the skip path is a
  masked max-pool (k3, s2, p1) and the new mask is the old one at even positions;
* :class:`VideoPyramid`: 1x1 projection, ``embed_convs`` x (k3 conv, LayerNorm, ReLU), the
  position encoding at valid positions, ``stem`` stride-1 local blocks, then ``levels`` local
  blocks (the first of stride 1, the others of stride 2), one pyramid level each;
* :class:`TextEncoder`: 1x1 projection, the position encoding at valid tokens, a learnable
  background token prepended (no position encoding, valid whenever the query is), then global
  blocks without convolutions.

Every input of a convolution is multiplied by its mask first, so valid outputs never depend on
how far a sample is padded; outputs at padded positions are left as computed (unused).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ChannelNorm(nn.Module):
    """LayerNorm over dim 1 of ``[B, C, T]`` (biased variance, ``eps`` inside the root)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=1, keepdim=True)
        x = x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x * self.weight[:, None] + self.bias[:, None]


class Pointwise(nn.Conv1d):
    """A 1x1 ``Conv1d`` (same parameters) computed as a matrix product, several times faster
    than the CPU convolution kernels at these sizes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.transpose(1, 2), self.weight[:, :, 0], self.bias).transpose(1, 2)


class LayerScale(nn.Module):
    """Per-channel residual scale (init ``init``) followed by drop-path with rate ``drop``."""

    def __init__(self, channels: int, drop: float = 0.0, init: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), init))
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale[:, None].to(x.dtype)
        if not self.training or self.drop == 0.0:
            return x
        keep = 1.0 - self.drop
        sample = torch.floor(keep + torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device))
        return x / keep * sample


class FeedForward(nn.Module):
    """``Dropout(fc2(Dropout(GELU(fc1(x)))))`` with 1x1 convs, ``expansion`` x wide."""

    def __init__(self, channels: int, expansion: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = Pointwise(channels, channels * expansion)
        self.fc2 = Pointwise(channels * expansion, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


def sinusoid(length: int, channels: int, device: torch.device | None = None) -> torch.Tensor:
    """``[channels, length]`` position encoding (module docstring), already divided by sqrt(C)."""
    half = channels // 2
    steps = torch.arange(length, dtype=torch.float32, device=device)
    freqs = 10000 ** torch.linspace(0, 1, half + 1, device=device)[:half]
    angles = steps[None, :] / freqs[:, None]
    return torch.cat([torch.sin(angles), torch.cos(angles)]) / channels**0.5


def masked_conv(conv: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``conv(x * mask)``."""
    return conv(x * mask.to(x.dtype))


def downsample_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """The mask after a stride-``stride`` conv of ``padding = 1``: positions ``0, s, 2s, ...``."""
    return mask[..., ::stride] if stride > 1 else mask


def masked_max_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max-pool (k3, s2, p1) over valid positions (padded ones count as the minimum), zero where
    the pooled window has no valid position."""
    low = x.amin(dim=-1, keepdim=True).detach()
    valid = mask.to(x.dtype)
    x = torch.where(mask, x, low)
    return F.max_pool1d(x, 3, 2, 1) * F.max_pool1d(valid, 3, 2, 1)


class MaskedAttention(nn.Module):
    """Multi-head attention (module docstring). ``window = 0``: global; odd ``window``: local."""

    def __init__(self, channels: int, kv_dim: int | None = None, out_dim: int | None = None, heads: int = 4,
                 window: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        if window and window % 2 == 0:
            raise ValueError(f"the local attention window must be odd, got {window}")
        kv_dim = kv_dim or channels
        self.heads = heads
        self.window = window
        self.scale = (channels // heads) ** -0.25
        self.query = Pointwise(channels, channels)
        self.key = Pointwise(kv_dim, channels)
        self.value = Pointwise(kv_dim, channels)
        self.out = Pointwise(channels, out_dim or channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, v: torch.Tensor, kv_mask: torch.Tensor) -> torch.Tensor:
        """``q [B, C, T1]``, keys ``kv`` and values ``v`` ``[B, C_kv, T2]``, ``kv_mask [B, 1, T2]``."""
        b, h = q.shape[0], self.heads
        query = self.query(q).view(b, h, -1, q.shape[-1]).transpose(2, 3) * self.scale  # [B, h, T1, d]
        key = self.key(kv).view(b, h, -1, kv.shape[-1]) * self.scale  # [B, h, d, T2]
        value = self.value(v).view(b, h, -1, v.shape[-1]).transpose(2, 3)  # [B, h, T2, d]
        scores = query @ key
        padded = ~kv_mask[:, :, None, :]  # [B, 1, 1, T2]
        if self.window:
            # padded keys get -1e4 (finite: a padded query may see only padded keys), keys outside
            # the window -inf; rows of padded queries are zeroed after the softmax
            steps = torch.arange(kv.shape[-1], device=kv.device)
            far = (steps[:, None] - steps[None, :]).abs() > self.window // 2
            scores = (scores + padded.to(scores.dtype) * -1e4).masked_fill(far, float("-inf"))
            attn = scores.softmax(-1).masked_fill(~kv_mask[:, :, :, None], 0.0)
        else:
            attn = scores.masked_fill(padded, float("-inf")).softmax(-1)
        out = (attn @ value).transpose(2, 3).reshape(b, -1, q.shape[-1])
        return self.dropout(self.out(out))


class EncoderBlock(nn.Module):
    """Pre-norm self-attention block (module docstring). ``stride`` 0: no convolutions (text);
    1 or 2: depthwise q/k/v convs of that stride."""

    def __init__(self, channels: int, heads: int, window: int = 0, stride: int = 1, dropout: float = 0.0,
                 path_dropout: float = 0.0) -> None:
        super().__init__()
        if stride not in (0, 1, 2):
            raise ValueError(f"encoder block stride must be 0, 1 or 2, got {stride}")
        self.stride = stride
        if stride:
            def depthwise() -> nn.Conv1d:
                return nn.Conv1d(channels, channels, 3, stride, 1, groups=channels, bias=False)

            self.conv_q, self.conv_k, self.conv_v = depthwise(), depthwise(), depthwise()
            self.norm_q, self.norm_k, self.norm_v = ChannelNorm(channels), ChannelNorm(channels), ChannelNorm(channels)
        self.attn = MaskedAttention(channels, heads=heads, window=window, dropout=dropout)
        self.norm_attn = ChannelNorm(channels)
        self.scale_attn = LayerScale(channels, path_dropout)
        self.ffn = FeedForward(channels, 4, dropout)
        self.norm_ffn = ChannelNorm(channels)
        self.scale_ffn = LayerScale(channels, path_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * mask.to(x.dtype)
        skip = masked_max_pool(x, mask) if self.stride == 2 else x
        h = self.norm_attn(x)
        if self.stride:
            q = self.norm_q(masked_conv(self.conv_q, h, mask))
            k = self.norm_k(masked_conv(self.conv_k, h, mask))
            v = self.norm_v(masked_conv(self.conv_v, h, mask))
            mask = downsample_mask(mask, self.stride)
        else:
            q = k = v = h
        valid = mask.to(x.dtype)
        x = skip * valid + self.scale_attn(self.attn(q, k, v, mask))
        return x + self.scale_ffn(self.ffn(self.norm_ffn(x)) * valid), mask


class VideoPyramid(nn.Module):
    """Video features ``[B, D_in, T]`` -> ``levels`` feature maps ``[B, C, T / 2**l]`` and masks
    (module docstring). ``T`` must be a multiple of ``2 ** (levels - 1)``."""

    def __init__(self, in_dim: int, channels: int, heads: int, window: int, embed_convs: int = 2, stem: int = 1,
                 levels: int = 6, dropout: float = 0.0, path_dropout: float = 0.0) -> None:
        super().__init__()
        self.channels = channels
        self.proj = Pointwise(in_dim, channels)
        self.embed = nn.ModuleList(nn.Conv1d(channels, channels, 3, 1, 1, bias=False) for _ in range(embed_convs))
        self.embed_norms = nn.ModuleList(ChannelNorm(channels) for _ in range(embed_convs))
        self.stem = nn.ModuleList(
            EncoderBlock(channels, heads, window, 1, dropout, path_dropout) for _ in range(stem)
        )
        self.levels = nn.ModuleList(
            EncoderBlock(channels, heads, window, 2 if i else 1, dropout, path_dropout) for i in range(levels)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        x = masked_conv(self.proj, x, mask)
        for conv, norm in zip(self.embed, self.embed_norms, strict=True):
            x = F.relu(norm(masked_conv(conv, x, mask)))
        x = x + sinusoid(x.shape[-1], self.channels, x.device).to(x.dtype) * mask.to(x.dtype)
        for block in self.stem:
            x, mask = block(x, mask)
        features, masks = [], []
        for block in self.levels:
            x, mask = block(x, mask)
            features.append(x)
            masks.append(mask)
        return features, masks


class TextEncoder(nn.Module):
    """Token features ``[B, D_in, T]`` -> ``[B, C, 1 + T]`` with the background token first, and
    its mask (module docstring)."""

    def __init__(self, in_dim: int, channels: int, heads: int, layers: int, dropout: float = 0.0,
                 path_dropout: float = 0.0) -> None:
        super().__init__()
        self.channels = channels
        self.proj = Pointwise(in_dim, channels)
        self.background = nn.Parameter(torch.empty(channels))
        nn.init.trunc_normal_(self.background, std=0.02)
        self.layers = nn.ModuleList(
            EncoderBlock(channels, heads, 0, 0, dropout, path_dropout) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = masked_conv(self.proj, x, mask)
        x = x + sinusoid(x.shape[-1], self.channels, x.device).to(x.dtype) * mask.to(x.dtype)
        background = self.background.to(x.dtype)[None, :, None].expand(x.shape[0], -1, 1)
        x = torch.cat([background, x], dim=-1)
        mask = torch.cat([mask[..., :1], mask], dim=-1)
        for layer in self.layers:
            x, _ = layer(x, mask)
        return x, mask


def pad_to_multiple(x: torch.Tensor, mask: torch.Tensor, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [B, C, T]`` and ``mask [B, 1, T]`` zero-padded on the right to a multiple of ``multiple``."""
    extra = (-x.shape[-1]) % multiple
    if extra:
        x = F.pad(x, (0, extra))
        mask = F.pad(mask, (0, extra), value=False)
    return x, mask


def pyramid_multiple(levels: int) -> int:
    """The length a ``levels``-level pyramid needs its input padded to a multiple of."""
    return int(math.pow(2, levels - 1))
