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
discarded) and only when training (or when ``forward(batch, negatives=True)``); it is batched
with the positive pass as one 2B encoder call. The text-to-video attention masks only the text
padding; ``model.t2v_head_major_mask = true`` reproduces the release's head-major mask (a
sample's outputs then depend on its batch-mates, see
:func:`~reference_models.core.layers.head_major_mask`).

With TD-DETR's strategies (``--with tddetr``) QD-DETR is the registered model ``tddetr``
(:mod:`reference_models.tddetr`: TDEM in these text-to-video layers, VSDC, TD-DETR's depths and
losses); ``resolve_config("qd_detr", preset, strategies=("tddetr",))`` resolves to it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reference_models import ModelInfo, register_model, temporal_modules
from reference_models.core.config import Config
from reference_models.core.layers import (
    MLP,
    AnchorDecoder,
    EncoderLayer,
    InputProjection,
    T2VEncoderLayer,
    head_major_mask,
)
from reference_models.core.losses import SetCriterion
from reference_models.core.matcher import HungarianMatcher
from reference_models.core.position import sine_1d
from reference_models.core.release import (
    DETR_RULES,
    TEXT_POSITION_TABLE,
    ReleaseFormat,
    detr_overrides,
    detr_preset,
    register_release,
)
from reference_models.core.span import cxw_to_xx, inverse_sigmoid


class QDDETR(nn.Module):
    """QD-DETR on the shared core (module docstring). ``forward(batch) -> outputs``;
    ``criterion(outputs, batch) -> losses``; ``decode(outputs) -> scores, spans, saliency``."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        m = config.model
        d = m.hidden
        self.hidden = d
        self.nheads = m.nheads
        self.head_major_mask = m.t2v_head_major_mask
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
        text_mask: torch.Tensor, groups: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip memory ``[B, L, d]`` and saliency token ``[B, d]`` of projected inputs; ``groups``
        equal parts of the batch are separate passes for the release's head-major mask."""
        attn_mask = None
        if self.head_major_mask:
            attn_mask = head_major_mask(video_mask, text_mask, self.nheads, groups)
        for layer in self.t2v:
            video = layer(video, video_mask, text, text_mask, pos, attn_mask)
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

    def forward(self, batch: dict[str, torch.Tensor], negatives: bool | None = None) -> dict[str, torch.Tensor]:
        """Outputs (``docs/models.md``); ``negatives`` (default: in training) adds
        ``saliency_neg``, the scores with the batch's texts rolled by one."""
        negatives = self.training if negatives is None else negatives
        video_mask = batch["video_mask"].bool()
        text_mask = batch["text_mask"].bool()
        video = self.input_video(batch["video"])
        text = self.input_text(batch["text"])
        pos = sine_1d(video_mask, self.hidden).to(video.dtype)
        batch_size = video.shape[0]
        if negatives:
            memory, token = self.encode(
                video.repeat(2, 1, 1), video_mask.repeat(2, 1), pos.repeat(2, 1, 1),
                torch.cat([text, text.roll(-1, dims=0)], dim=0),
                torch.cat([text_mask, text_mask.roll(-1, dims=0)], dim=0), groups=2,
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
        if negatives:
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


@register_model("qd_detr", ModelInfo("QD-DETR", "https://arxiv.org/abs/2303.13874", 2023))
def build(config: Config) -> QDDETR:
    return QDDETR(config)


def _is_qd_detr(keys: frozenset[str], args: object) -> bool:
    return ({"global_rep_token", "class_embed.weight", "transformer.t2v_encoder.layers.0.self_attn.in_proj_weight"} <= keys
            and "video_embed.weight" not in keys and "global_rep_token_txt" not in keys)


#: wjun0830/QD-DETR release checkpoints (``enc_layers`` sets both the T2V stack and the encoder)
RELEASE = register_release(ReleaseFormat(
    name="qd_detr", model="qd_detr", detect=_is_qd_detr,
    overrides=lambda args: {**detr_overrides(args), "model.t2v_layers": int(args["enc_layers"]),
                            "model.enc_layers": int(args["enc_layers"])},
    rules=DETR_RULES, preset=detr_preset, unused=TEXT_POSITION_TABLE,
))
