"""QD-DETR (Moon et al., CVPR 2023): query-dependent video representations for moment retrieval.

Forward pass (competitors.md §2), masks True at valid tokens:

1. ``v = P_v(video)``, ``t = P_t(text)`` (two-layer input projections to ``hidden``);
2. ``t2v_layers`` text-to-video layers update the clips (video queries, text keys/values; each
   layer may carry a temporal module, e.g. TD-DETR's TDEM);
3. ``enc_layers`` self-attention layers over ``[g ; v]`` (g = learnable saliency token with its
   own learnable position; video positions = length-normalised sine);
4. a DAB-style anchor decoder with ``num_queries`` learnable (center, width) anchors over the clip
   memory ``M``; spans ``sigmoid(MLP(h_l) + logit(anchor_l))``, logits ``Linear(h_l)`` (0 = fg);
5. saliency ``s_t = <W1 M_t, W2 g*> / sqrt(hidden)``; in training also ``s_neg``: the same
   videos encoded with the batch's texts rolled by one (sample i gets text i + 1).

Differences from the release: the negative pass runs only the encoders (its decoder output was
discarded) and only when training; it is batched with the positive pass as one 2B encoder call.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reference_models import register_model, temporal_modules
from reference_models.core.config import Config
from reference_models.core.layers import (
    MLP,
    AnchorDecoder,
    EncoderLayer,
    InputProjection,
    T2VEncoderLayer,
)
from reference_models.core.losses import SetCriterion
from reference_models.core.matcher import HungarianMatcher
from reference_models.core.position import sine_1d
from reference_models.core.span import cxw_to_xx, inverse_sigmoid


class QDDETR(nn.Module):
    """QD-DETR on the shared core (module docstring). ``forward(batch) -> outputs``;
    ``criterion(outputs, batch) -> losses``; ``decode(outputs) -> scores, spans, saliency``."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        m = config.model
        d = m.hidden
        self.hidden = d
        self.input_video = InputProjection(m.video_dim, d, m.input_layers, m.input_dropout)
        self.input_text = InputProjection(m.text_dim, d, m.input_layers, m.input_dropout)
        temporal = temporal_modules(m.temporal, m, m.t2v_layers) if m.temporal else [None] * m.t2v_layers
        self.t2v = nn.ModuleList(
            T2VEncoderLayer(d, m.nheads, m.dim_ff, m.dropout, m.activation, temporal[i], m.temporal_uses_pos)
            for i in range(m.t2v_layers)
        )
        self.encoder = nn.ModuleList(
            EncoderLayer(d, m.nheads, m.dim_ff, m.dropout, m.activation) for _ in range(m.enc_layers)
        )
        self.decoder = AnchorDecoder(d, m.nheads, m.dim_ff, m.dec_layers, m.dropout, m.activation)
        for module in (self.t2v, self.encoder, self.decoder):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        nn.init.zeros_(self.decoder.bbox_embed.layers[-1].bias)
        self.anchors = nn.Embedding(m.num_queries, 2)
        self.global_token = nn.Parameter(torch.randn(d))
        self.global_pos = nn.Parameter(torch.randn(d))
        self.span_head = MLP(d, d, 2, 3)
        self.class_head = nn.Linear(d, 2)
        self.saliency_video = nn.Linear(d, d)
        self.saliency_global = nn.Linear(d, d)
        loss = config.loss
        self.criterion = SetCriterion(
            HungarianMatcher(loss.cost_span, loss.cost_giou, loss.cost_class),
            span=loss.span, giou=loss.giou, label=loss.label, saliency=loss.saliency,
            eos_coef=loss.eos_coef, margin=loss.margin, tau=loss.tau, aux=loss.aux,
        )

    def encode(
        self, video: torch.Tensor, video_mask: torch.Tensor, pos: torch.Tensor, text: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip memory ``[B, L, d]`` and saliency token ``[B, d]`` of projected inputs."""
        for layer in self.t2v:
            video = layer(video, video_mask, text, text_mask, pos)
        batch = video.shape[0]
        seq = torch.cat([self.global_token.to(video.dtype).expand(batch, 1, -1), video], dim=1)
        seq_pos = torch.cat([self.global_pos.to(pos.dtype).expand(batch, 1, -1), pos], dim=1)
        seq_mask = torch.cat([video_mask.new_ones(batch, 1), video_mask], dim=1)
        for layer in self.encoder:
            seq = layer(seq, seq_mask, seq_pos)
        return seq[:, 1:], seq[:, 0]

    def saliency(self, memory: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """``<W1 M_t, W2 g> / sqrt(d)`` ``[B, L]``."""
        return (self.saliency_video(memory) * self.saliency_global(token).unsqueeze(1)).sum(-1) / math.sqrt(self.hidden)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        video_mask = batch["video_mask"].bool()
        text_mask = batch["text_mask"].bool()
        video = self.input_video(batch["video"])
        text = self.input_text(batch["text"])
        pos = sine_1d(video_mask, self.hidden).to(video.dtype)
        batch_size = video.shape[0]
        if self.training:
            memory, token = self.encode(
                video.repeat(2, 1, 1), video_mask.repeat(2, 1), pos.repeat(2, 1, 1),
                torch.cat([text, text.roll(-1, dims=0)], dim=0),
                torch.cat([text_mask, text_mask.roll(-1, dims=0)], dim=0),
            )
            memory, memory_neg = memory[:batch_size], memory[batch_size:]
            token, token_neg = token[:batch_size], token[batch_size:]
        else:
            memory, token = self.encode(video, video_mask, pos, text, text_mask)
        hidden, refs = self.decoder(memory, video_mask, pos, self.anchors.weight)
        spans = (self.span_head(hidden) + inverse_sigmoid(refs)).sigmoid()
        out = {
            "all_logits": self.class_head(hidden),
            "all_spans": spans,
            "saliency": self.saliency(memory, token),
        }
        if self.training:
            out["saliency_neg"] = self.saliency(memory_neg, token_neg)
        return out

    @staticmethod
    def decode(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Final-layer ``scores [B, Q]`` (foreground probability), ``spans [B, Q, 2]`` (xx,
        normalised) and clip ``saliency [B, L]``."""
        return {
            "scores": outputs["all_logits"][-1].float().softmax(-1)[..., 0],
            "spans": cxw_to_xx(outputs["all_spans"][-1].float()),
            "saliency": outputs["saliency"].float(),
        }


@register_model("qd_detr")
def build(config: Config) -> QDDETR:
    return QDDETR(config)
