"""Blocks of the original DETR family that the QD-DETR core does not have.

* :class:`DETRDecoderLayer` / :class:`DETRDecoder`: the plain DETR decoder (Moment-DETR): learned
  query embeddings are the query positions, the content starts at zero; post-norm::

      t = LN1(t + Drop(MHA(q = t + qpos, k = t + qpos, v = t)))
      t = LN2(t + Drop(MHA(q = t + qpos, k = m + pos, v = m)))      memory padding masked
      t = LN3(t + Drop(FFN(t)))

  Every layer's output goes through the shared final LayerNorm (the auxiliary outputs too).
* :class:`DropPath`: stochastic depth per sample (CG-DETR's residual dropout), and
  :func:`use_drop_path`, which swaps the residual ``dropout1..3`` of the core's layers for it.

All tensors are batch-first; masks are True at valid tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.core.layers import FeedForward


class DETRDecoderLayer(nn.Module):
    """Post-norm DETR decoder layer (module docstring)."""

    def __init__(self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "relu") -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(d_model, dim_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                pos: torch.Tensor) -> torch.Tensor:
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, q, tgt, need_weights=False)[0]))
        attn = self.cross_attn(tgt + query_pos, memory + pos, memory, key_padding_mask=~memory_mask,
                               need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(attn))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))


class DETRDecoder(nn.Module):
    """``layers`` :class:`DETRDecoderLayer` s on ``queries [Q, d]`` learned query positions;
    returns every layer's normalised output ``[D, B, Q, d]``."""

    def __init__(self, d_model: int, nhead: int, dim_ff: int, layers: int, dropout: float = 0.1,
                 activation: str = "relu") -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DETRDecoderLayer(d_model, nhead, dim_ff, dropout, activation) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, memory: torch.Tensor, memory_mask: torch.Tensor, pos: torch.Tensor,
                queries: torch.Tensor) -> torch.Tensor:
        batch = memory.shape[0]
        query_pos = queries.to(memory.dtype).unsqueeze(0).expand(batch, -1, -1)
        tgt = torch.zeros_like(query_pos)
        hidden = []
        for layer in self.layers:
            tgt = layer(tgt, query_pos, memory, memory_mask, pos)
            hidden.append(self.norm(tgt))
        return torch.stack(hidden)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a whole sample's residual branch with probability
    ``p`` and scale the kept ones by ``1 / (1 - p)``; identity in eval."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = (keep + torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)).floor_()
        return x / keep * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_drop_path(module: nn.Module, p: float) -> nn.Module:
    """Replace the residual ``dropout1``, ``dropout2``, ``dropout3`` of every layer in ``module``
    by :class:`DropPath` (``p``); the FFN's inner dropout stays. Returns ``module``."""
    for layer in list(module.modules()):
        for name in ("dropout1", "dropout2", "dropout3"):
            if isinstance(getattr(layer, name, None), nn.Dropout):
                setattr(layer, name, DropPath(p))
    return module
