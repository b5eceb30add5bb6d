"""Moment-DETR (Lei et al., NeurIPS 2021): DETR over a joint video + text sequence.

Forward pass (competitors.md §1), masks True at valid tokens:

1. ``v = P_v(video)``, ``t = P_t(text)`` (the core's two-layer input projections to ``hidden``);
2. ``enc_layers`` post-norm self-attention layers over ``[v ; t]`` (key padding on both parts),
   positions ``[sine_v ; 0]`` added to queries and keys (the text position table of the release
   is off there, ``use_txt_pos=False``, and is not built);
3. a plain DETR decoder (:class:`~reference_models.core.detr_blocks.DETRDecoder`): ``num_queries``
   learned query embeddings as query positions, content starting at zero, cross-attention to the
   whole memory (video and text); the final LayerNorm on every layer's output;
4. heads on each decoder layer: logits ``Linear(d, 2)`` (class 0 = foreground), spans
   ``sigmoid(MLP_3(h))`` as (center, width) with no reference points;
5. saliency ``s_t = Linear(d, 1)(M_t)`` on the video part of the encoder memory.

Loss: the core's set loss (span L1 10, gIoU 1, CE 4 with eos 0.1, auxiliary copies) and the hinge
saliency loss only (``margin_loss``, margin 0.2, weight ``loss.saliency``): the model returns no
``saliency_neg``, so the criterion adds neither rank-contrastive nor negative-pair terms. ReLU in
every layer (``model.activation``). The optional contrastive alignment loss and the ``ce`` span
type of the release are off there by default; they are not built (a release checkpoint with
either is refused by name).

Parameters: 4,814,601 on the QVHighlights preset (2818-d video with TEF, 512-d text), i.e. the
4.82 M of competitors.md, which counts the release's unused 8,704-parameter text position table
(4,823,305). The released checkpoint (``run_on_video/moment_detr_ckpt``) is CLIP-only: 512 + 2
TEF video dims, so its input projection is 2304 x 258 = 594,432 parameters smaller: 4,228,873
with the table, 4,220,169 built here.

Presets: ``qvhighlights`` and ``charades_sta`` are the base presets (QD-DETR's official settings,
which are Moment-DETR's: 2 / 2 layers, hidden 256, 8 heads, 10 queries, lr 1e-4 (2e-4 on
Charades), batch 32) with ReLU; ``tiny`` is the base tiny model with two joint encoder layers (the
depth of the tiny QD-DETR's T2V + self-attention layers).

Release pitfalls (competitors.md §8) and what mrbench does:

* spans normalised by ``n_clips * clip_len`` in training but scaled by ``duration`` at inference:
  the dataset presets copy the release (``train.span_scale=duration``); ``tiny`` uses ``clips``;
* T2V ``attn_mask`` (head-major): not applicable, Moment-DETR has no T2V layer and its key
  padding masks are batch-major, so a sample's outputs never depend on its batch-mates;
* rank-contrastive ``/ 12`` and the no-op rank drop: not applicable (hinge loss only);
* the saliency-label clamp ``min(id, n - 1)``: the shared data pipeline keeps it, as the release;
* model selection on the test split (Charades): mrbench's ``charades_sta`` preset selects on a
  ``val`` split carved from train and trains on the rest (as for every model);
* CG-DETR / BAM-DETR-only pitfalls: not applicable.

With TD-DETR's strategies (``--with tddetr``, ``model.temporal = "tdem"``): Moment-DETR has no
separate text-to-video layer; its joint encoder layers are where the clips read the text, so
each of them (:class:`JointEncoderLayer`, ``enc_layers`` TDEMs sharing one start token) puts a
TDEM on the video part of its residual path: ``[v ; t] <- LN([TDEM(v, t) ; t] + Dropout(SA([v ;
t])))``, TDEM differencing the layer's clip tokens (``+ sine`` with ``model.temporal_uses_pos``)
and attending to the layer's current word tokens. VSDC synthesizes the training batches.
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models import ModelInfo, register_model, temporal_modules
from reference_models.core.config import Config
from reference_models.core.detr_blocks import DETRDecoder
from reference_models.core.layers import MLP, EncoderLayer, InputProjection
from reference_models.core.losses import SetCriterion
from reference_models.core.matcher import HungarianMatcher
from reference_models.core.position import sine_1d
from reference_models.core.release import (
    DETR_RULES,
    TEXT_POSITION_TABLE,
    ReleaseFormat,
    Rule,
    detr_overrides,
    detr_preset,
    register_release,
)
from reference_models.core.span import cxw_to_xx


class JointEncoderLayer(EncoderLayer):
    """The post-norm self-attention layer over ``[v ; t]`` (:class:`EncoderLayer`) with an
    optional ``temporal`` module that replaces the video part of the residual path (module
    docstring; ``temporal_uses_pos`` also passes it the clip positions)."""

    def __init__(self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "relu",
                 temporal: nn.Module | None = None, temporal_uses_pos: bool = False) -> None:
        super().__init__(d_model, nhead, dim_ff, dropout, activation)
        self.temporal = temporal
        self.temporal_uses_pos = temporal_uses_pos

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, length: int) -> torch.Tensor:
        """``x [B, L + T, d]`` with the ``length`` clips first; ``mask`` True at valid tokens."""
        q = x + pos
        attn = self.self_attn(q, q, x, key_padding_mask=~mask, need_weights=False)[0]
        residual = x
        if self.temporal is not None:
            clips = self.temporal(x[:, :length], mask[:, :length], x[:, length:], mask[:, length:],
                                  pos=pos[:, :length] if self.temporal_uses_pos else None)
            residual = torch.cat([clips, x[:, length:]], dim=1)
        x = self.norm1(residual + self.dropout1(attn))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class MomentDETR(nn.Module):
    """Moment-DETR on the shared core (module docstring). ``forward(batch) -> outputs``;
    ``criterion(outputs, batch) -> losses``; ``decode(outputs) -> scores, spans, saliency``."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        m = config.model
        d = m.hidden
        self.hidden = d
        self.input_video = InputProjection(m.video_dim, d, m.input_layers, m.input_dropout)
        self.input_text = InputProjection(m.text_dim, d, m.input_layers, m.input_dropout)
        temporal = temporal_modules(m.temporal, m, m.enc_layers) if m.temporal else [None] * m.enc_layers
        self.encoder = nn.ModuleList(
            JointEncoderLayer(d, m.nheads, m.dim_ff, m.dropout, m.activation, temporal[i], m.temporal_uses_pos)
            for i in range(m.enc_layers)
        )
        self.decoder = DETRDecoder(d, m.nheads, m.dim_ff, m.dec_layers, m.dropout, m.activation)
        for module in (self.encoder, self.decoder):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        self.queries = nn.Embedding(m.num_queries, d)
        self.span_head = MLP(d, d, 2, 3)
        self.class_head = nn.Linear(d, 2)
        self.saliency_head = nn.Linear(d, 1)
        loss = config.loss
        self.criterion = SetCriterion(
            HungarianMatcher(loss.cost_span, loss.cost_giou, loss.cost_class),
            span=loss.span, giou=loss.giou, label=loss.label, saliency=loss.saliency,
            eos_coef=loss.eos_coef, margin=loss.margin, tau=loss.tau, aux=loss.aux,
        )

    def forward(self, batch: dict[str, torch.Tensor], negatives: bool | None = None) -> dict[str, torch.Tensor]:
        """Outputs (``docs/models.md``); ``negatives`` is accepted for the common contract but
        Moment-DETR has no negative pass (its saliency loss is the hinge alone)."""
        video_mask = batch["video_mask"].bool()
        text_mask = batch["text_mask"].bool()
        video = self.input_video(batch["video"])
        text = self.input_text(batch["text"])
        pos = sine_1d(video_mask, self.hidden).to(video.dtype)
        length = video.shape[1]
        seq = torch.cat([video, text], dim=1)
        seq_mask = torch.cat([video_mask, text_mask], dim=1)
        seq_pos = torch.cat([pos, torch.zeros_like(text)], dim=1)
        for layer in self.encoder:
            seq = layer(seq, seq_mask, seq_pos, length)
        hidden = self.decoder(seq, seq_mask, seq_pos, self.queries.weight)
        return {
            "all_logits": self.class_head(hidden),
            "all_spans": self.span_head(hidden).sigmoid(),
            "saliency": self.saliency_head(seq[:, :length]).squeeze(-1),
        }

    @staticmethod
    def decode(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Final-layer ``scores [B, Q]`` (foreground probability), ``spans [B, Q, 2]`` (xx,
        normalised) and clip ``saliency [B, L]``."""
        return {
            "scores": outputs["all_logits"][-1].float().softmax(-1)[..., 0],
            "spans": cxw_to_xx(outputs["all_spans"][-1].float()),
            "saliency": outputs["saliency"].float(),
        }


# the official settings (competitors.md §1, §7): QD-DETR's with ReLU and no T2V stack; tiny:
# two joint encoder layers (the depth of the tiny QD-DETR's T2V + self-attention layers)
_COMMON = {"model.activation": "relu", "model.t2v_layers": 0}
PRESETS = {
    "qvhighlights": {**_COMMON},
    "charades_sta": {**_COMMON},
    "tiny": {**_COMMON, "model.enc_layers": 2},
}


@register_model("moment_detr", ModelInfo("Moment-DETR", "https://arxiv.org/abs/2107.09609", 2021), presets=PRESETS)
def build(config: Config) -> MomentDETR:
    return MomentDETR(config)


def _is_moment_detr(keys: frozenset[str], args: object) -> bool:
    return ({"query_embed.weight", "saliency_proj.weight", "transformer.decoder.layers.0.multihead_attn.in_proj_weight"}
            <= keys and "global_rep_token" not in keys)


#: jayleicn/moment_detr release checkpoints
RELEASE = register_release(ReleaseFormat(
    name="moment_detr", model="moment_detr", detect=_is_moment_detr,
    overrides=lambda args: {**detr_overrides(args), "model.enc_layers": int(args["enc_layers"]),
                            "model.activation": "relu", "model.t2v_layers": 0},
    rules=(
        Rule(r"decoder\.layers\.(\d+)\.self_attn\.(.+)", r"transformer.decoder.layers.\1.self_attn.\2"),
        Rule(r"decoder\.layers\.(\d+)\.cross_attn\.(.+)", r"transformer.decoder.layers.\1.multihead_attn.\2"),
        Rule(r"decoder\.layers\.(\d+)\.ffn\.(linear1|linear2)\.(.+)", r"transformer.decoder.layers.\1.\2.\3"),
        Rule(r"decoder\.layers\.(\d+)\.(norm1|norm2|norm3)\.(.+)", r"transformer.decoder.layers.\1.\2.\3"),
        Rule(r"decoder\.norm\.(.+)", r"transformer.decoder.norm.\1"),
        Rule(r"queries\.weight", "query_embed.weight"),
        Rule(r"saliency_head\.(.+)", r"saliency_proj.\1"),
        *DETR_RULES,
    ),
    preset=detr_preset, unused=TEXT_POSITION_TABLE,
))
