"""Transformer blocks and heads shared by the DETR-family models.

All layers are batch-first (``[B, L, D]``) and post-norm; masks are True at *valid* tokens.

* :class:`InputProjection`: ``n`` x [LayerNorm -> Dropout -> Linear (-> ReLU except the last)].
* :class:`T2VEncoderLayer`: QD-DETR's text-to-video layer; video tokens query the text::

      a = MHA(q = x + pos, k = t, v = t)               (text padding masked)
      h = r(x) + Dropout(a)                            r = identity, or a ``temporal`` module
      out = LN2(h + Dropout(FFN(LN1(h))))              FFN: D -> F -> D with the activation

  ``temporal`` (e.g. TD-DETR's TDEM) is called as ``temporal(x, video_mask, text, text_mask,
  pos=pos or None, attn_mask=attn_mask)`` and returns the tokens that replace ``x`` on the
  residual path. ``attn_mask`` (optional, ``[B * nhead, L, T]``, True = blocked) is an extra
  attention mask; :func:`head_major_mask` builds the release's.
* :class:`EncoderLayer`: standard post-norm self-attention layer (pos added to queries and keys).
* :class:`AnchorDecoder` / :class:`AnchorDecoderLayer`: DAB-DETR-style decoder on (center, width)
  anchors with conditional spatial queries, width-modulated attention and iterative refinement.
* :class:`MLP`: k linear layers with ReLU between them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference_models.core.position import anchor_sine
from reference_models.core.span import inverse_sigmoid


def activation_module(name: str) -> nn.Module:
    """``relu``, ``gelu`` or ``prelu`` (one learnable slope, as QD-DETR)."""
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "prelu": nn.PReLU}
    if name not in table:
        raise ValueError(f"unknown activation {name!r} (choose from {', '.join(table)})")
    return table[name]()


class MLP(nn.Module):
    """``layers`` linear maps ``in -> hidden -> ... -> out`` with ReLU between them."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class InputProjection(nn.Sequential):
    """``layers`` x [LayerNorm -> Dropout -> Linear], ReLU after every one but the last."""

    def __init__(self, in_dim: int, out_dim: int, layers: int = 2, dropout: float = 0.5) -> None:
        blocks: list[nn.Module] = []
        for i in range(layers):
            dim = in_dim if i == 0 else out_dim
            blocks += [nn.LayerNorm(dim), nn.Dropout(dropout), nn.Linear(dim, out_dim)]
            if i < layers - 1:
                blocks.append(nn.ReLU())
        super().__init__(*blocks)


class FeedForward(nn.Module):
    """``Linear(D, F) -> activation -> Dropout -> Linear(F, D)``."""

    def __init__(self, d_model: int, dim_ff: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_ff)
        self.activation = activation_module(activation)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


def head_major_mask(video_mask: torch.Tensor, text_mask: torch.Tensor, nhead: int, groups: int = 1) -> torch.Tensor:
    """The release's text-to-video attention mask ``[B * nhead, L, T]`` (True = blocked).

    The release blocks (padded clip, padded token) pairs and expands the ``[B, L, T]`` mask with
    ``.repeat(nhead, 1, 1)``, i.e. head-major, where attention reads index ``b * nhead + h``: head
    h of sample b gets the mask of sample ``(b * nhead + h) mod B``, so valid clips lose the text
    tokens that are padded in a batch-mate. ``groups`` splits the batch into that many equal
    parts expanded separately (the release ran its positive and negative passes as separate
    batches)."""
    blocked = (~video_mask.bool())[:, :, None] & (~text_mask.bool())[:, None, :]
    return torch.cat([part.repeat(nhead, 1, 1) for part in blocked.chunk(groups)])


class T2VEncoderLayer(nn.Module):
    """Text-to-video cross-attention layer (module docstring), with an optional ``temporal``
    module on the residual path; ``temporal_uses_pos`` passes the video position encoding to it."""

    def __init__(
        self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "prelu",
        temporal: nn.Module | None = None, temporal_uses_pos: bool = False,
    ) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(d_model, dim_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.temporal = temporal
        self.temporal_uses_pos = temporal_uses_pos

    def forward(
        self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
        pos: torch.Tensor, attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        attn = self.cross_attn(video + pos, text, text, key_padding_mask=~text_mask, attn_mask=attn_mask,
                               need_weights=False)[0]
        residual = video
        if self.temporal is not None:
            residual = self.temporal(video, video_mask, text, text_mask, pos=pos if self.temporal_uses_pos else None,
                                     attn_mask=attn_mask)
        h = residual + self.dropout1(attn)
        return self.norm2(h + self.dropout2(self.ffn(self.norm1(h))))


class EncoderLayer(nn.Module):
    """Post-norm self-attention layer: ``LN(x + MHA(x + pos, x + pos, x))`` then ``LN(. + FFN)``."""

    def __init__(self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "prelu") -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(d_model, dim_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = x + pos
        x = self.norm1(x + self.dropout1(self.self_attn(q, q, x, key_padding_mask=~mask, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


def multihead(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, nhead: int, key_mask: torch.Tensor | None,
    dropout: float,
) -> torch.Tensor:
    """Scaled dot-product attention over already-projected ``q [B, N, Dq]``, ``k [B, M, Dq]``,
    ``v [B, M, Dv]`` split into ``nhead`` heads; ``key_mask [B, M]`` True at valid keys."""
    b, n, _ = q.shape
    m = k.shape[1]
    q = q.view(b, n, nhead, -1).transpose(1, 2)
    k = k.view(b, m, nhead, -1).transpose(1, 2)
    v = v.view(b, m, nhead, -1).transpose(1, 2)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    return out.transpose(1, 2).reshape(b, n, -1)


class AnchorDecoderLayer(nn.Module):
    """DAB-DETR decoder layer: self-attention over the queries with projected content and
    position, then cross-attention whose per-head query is ``[content ; sine-pos]`` and key
    ``[content ; pos]`` (2D-dimensional), then the FFN; post-norm."""

    def __init__(
        self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "prelu",
        first: bool = False,
    ) -> None:
        super().__init__()
        self.nhead = nhead
        self.attn_dropout = dropout
        self.sa_q_content = nn.Linear(d_model, d_model)
        self.sa_q_pos = nn.Linear(d_model, d_model)
        self.sa_k_content = nn.Linear(d_model, d_model)
        self.sa_k_pos = nn.Linear(d_model, d_model)
        self.sa_v = nn.Linear(d_model, d_model)
        self.sa_out = nn.Linear(d_model, d_model)
        self.ca_q_content = nn.Linear(d_model, d_model)
        self.ca_q_pos = nn.Linear(d_model, d_model) if first else None
        self.ca_k_content = nn.Linear(d_model, d_model)
        self.ca_k_pos = nn.Linear(d_model, d_model)
        self.ca_v = nn.Linear(d_model, d_model)
        self.ca_q_sine = nn.Linear(d_model, d_model)
        self.ca_out = nn.Linear(d_model, d_model)
        self.ffn = FeedForward(d_model, dim_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor, pos: torch.Tensor,
        query_pos: torch.Tensor, query_sine: torch.Tensor,
    ) -> torch.Tensor:
        p = self.attn_dropout if self.training else 0.0
        q = self.sa_q_content(tgt) + self.sa_q_pos(query_pos)
        k = self.sa_k_content(tgt) + self.sa_k_pos(query_pos)
        attn = self.sa_out(multihead(q, k, self.sa_v(tgt), self.nhead, None, p))
        tgt = self.norm1(tgt + self.dropout1(attn))

        q = self.ca_q_content(tgt)
        k = self.ca_k_content(memory)
        k_pos = self.ca_k_pos(pos)
        if self.ca_q_pos is not None:
            q = q + self.ca_q_pos(query_pos)
            k = k + k_pos
        b, n, d = q.shape
        m = k.shape[1]
        h = self.nhead
        q = torch.cat([q.view(b, n, h, -1), self.ca_q_sine(query_sine).view(b, n, h, -1)], dim=3).view(b, n, 2 * d)
        k = torch.cat([k.view(b, m, h, -1), k_pos.view(b, m, h, -1)], dim=3).view(b, m, 2 * d)
        attn = self.ca_out(multihead(q, k, self.ca_v(memory), h, memory_mask, p))
        tgt = self.norm2(tgt + self.dropout2(attn))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))


class AnchorDecoder(nn.Module):
    """DAB-DETR-style decoder on learnable (center, width) anchors.

    Layer l: ``e = anchor_sine(ref_l)``, ``query_pos = MLP(e)``, ``e *= query_scale(h)`` (1 at
    layer 0), ``e *= sigmoid(ref_anchor_head(h)) / w_ref`` (width modulation), ``h = layer(h, ...)``,
    then ``ref_{l+1} = sigmoid(bbox_embed(h) + logit(ref_l))``, detached before the next layer.
    Returns the normalised outputs ``[D, B, Q, d]`` and each layer's input anchors ``[D, B, Q, 2]``
    (the refined anchors are passed on with their gradient; only the next layer's copy is detached).
    """

    def __init__(self, d_model: int, nhead: int, dim_ff: int, layers: int, dropout: float = 0.1,
                 activation: str = "prelu") -> None:
        super().__init__()
        self.d_model = d_model
        self.layers = nn.ModuleList(
            AnchorDecoderLayer(d_model, nhead, dim_ff, dropout, activation, first=i == 0) for i in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.query_scale = MLP(d_model, d_model, d_model, 2)
        self.ref_point_head = MLP(d_model, d_model, d_model, 2)
        self.bbox_embed = MLP(d_model, d_model, 2, 3)
        self.ref_anchor_head = MLP(d_model, d_model, 1, 2)

    def forward(
        self, memory: torch.Tensor, memory_mask: torch.Tensor, pos: torch.Tensor, anchors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``anchors [Q, 2]`` unsigmoided; memory ``[B, L, d]``."""
        batch = memory.shape[0]
        ref = anchors.sigmoid().unsqueeze(0).expand(batch, -1, -1)
        output = memory.new_zeros(batch, anchors.shape[0], self.d_model)
        hidden, refs = [], [ref]
        for i, layer in enumerate(self.layers):
            sine = anchor_sine(ref, self.d_model).to(memory.dtype)
            query_pos = self.ref_point_head(sine)
            if i > 0:
                sine = sine * self.query_scale(output)
            sine = sine * (self.ref_anchor_head(output).sigmoid() / ref[..., 1:2])
            output = layer(output, memory, memory_mask, pos, query_pos, sine)
            new_ref = (self.bbox_embed(output) + inverse_sigmoid(ref)).sigmoid()
            if i < len(self.layers) - 1:
                refs.append(new_ref)
            ref = new_ref.detach()
            hidden.append(self.norm(output))
        return torch.stack(hidden), torch.stack(refs)
