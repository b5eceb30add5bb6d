"""CG-DETR (Moon et al.): correlation-guided DETR for moment retrieval and highlight detection.

Forward pass (competitors.md §3), masks True at valid tokens, ``nd = model.num_dummies``:

1. ``v = P_v(video) + type[1]``, ``t = P_t(text) + type[0]`` (input projections, token types);
2. **dummy tokens**: ``nd`` learnable tokens (own learnable positions) go with the words through
   ``dummy_layers`` self-attention layers; their outputs ``u`` are kept, the words keep their
   projected features. Keys ``K = [u ; t]`` with positions ``[dummy_pos ; 0]``;
3. **correlation-guided T2V layers** (:class:`CorrelationT2VLayer`, ``t2v_layers``): clips (+ sine
   position) attend to ``K + pos`` with no q/k/v projections (``nheads`` heads, scaled dot product,
   one softmax over dummies and words), only the word columns carry values, then ``out_proj``,
   residual, LN, PReLU FFN, LN. The head-averaged attention ``A [B, L, nd + T]`` is averaged
   over the layers; a clip's text engagement ``e = clamp(sum_words A, 0, 1)``;
4. **moment-adaptive saliency token**: ``ctx`` = mean projected clip (detached); each clip's
   softmax over the cosine similarities of ``v - ctx`` with ``total_prompts`` prototypes, weighted
   by the (detached) word attention mass of the clip; the top ``num_prompts`` prototypes weighted
   by their scores, plus ``ctx``, give ``g``; ``g`` passes the T2V layers with an empty key set
   (residual + ``out_proj`` bias, LN, FFN, LN);
5. ``enc_layers`` self-attention layers on ``[g ; v']`` (positions ``[g_pos ; sine]``), then
   ``M = v'' + g*``; the core's DAB anchor decoder (``dec_layers``) on ``M``; heads as QD-DETR;
   saliency ``<W1 M_t, W2 g*> / sqrt(d)``;
6. negatives (training, or ``negatives=True``): the same videos with the batch's keys rolled by one
   (sample i gets the dummies and words of i + 1), only for *real* negatives, i.e. when the rolled
   sample comes from another video (``batch["video_id"]``); gives ``saliency_neg`` and
   ``attn_saliency_neg`` (rows of other samples are zero and ``real_neg`` is False);
7. with labels (training, or ``targets=True``): the moment encoder (``moment_layers``) on
   ``[moment token ; clips]`` restricted to the relevant clips (``m``) and to the others (``n``);
   the sentence encoder (``sent_layers``) on ``[sentence token ; words]`` (``s``) and on
   ``[sentence token ; dummies]`` (``s_d``); clip-word similarity = moment-encoder clips times
   ``[encoded dummies ; encoded words]``.

Losses (:class:`CGCriterion`): the set loss; ``loss_saliency`` = hinge + rank-contrastive (real
negatives appended; false negatives ranked alone) + negative-pair, plus ``loss.wattn`` x the same
on ``e`` (hinge, rank-contrastive with real negatives, ``-log(1 - e_neg)``) + BCE(e, relevant);
``loss_ms_align`` (cosine CE of m against the sentences and n, the dummy variant, BCE of
``sigmoid(m . clip)`` against relevance); ``loss_distill`` = KL(softmax(clip-word similarity),
detached || A) on relevant clips; ``loss_orthogonal_dummy`` = mean |cos| between distinct dummies
(per sample) + between distinct prototypes, weighted by ``loss.distill`` as the release.

Parameters: 12,474,411 on the QVHighlights preset. The release builds 12,632,875 (the 12.62 M of
competitors.md): mrbench leaves out its text position table (``use_txt_pos`` off; 26,112 with
``max_q_l`` 100) and ``txt_proj_linear`` (132,352), neither of which the release's forward uses.

Release pitfalls (competitors.md §8) and what mrbench does:

* spans normalised by ``n_clips * clip_len`` but scaled by ``duration`` at inference: the dataset
  presets copy the release (``train.span_scale=duration``), ``tiny`` uses ``clips``;
* the T2V ``attn_mask`` (padded clip AND padded key) is expanded head-major in the release, so a
  sample's outputs depend on its batch-mates: off by default (plain key padding, batch-major);
  ``model.t2v_head_major_mask=true`` reproduces it (positive and negative passes expanded
  separately, as the release ran them). The global token's empty-key T2V pass is reproduced
  (it only adds ``out_proj``'s bias before the FFN);
* rank-contrastive: the no-op "drop higher ranks" mask is left out (no effect) and the sum over 11
  thresholds is divided by 12, as the release;
* the attention copy's false-negative rank term is added to the wrong variable in the release and
  has no effect: mrbench leaves it out (the same training signal);
* the dummy ``ms_align`` target is ``argmax`` of a 0/1 row, i.e. column 1 for row 0 and column 0
  for the others: copied (it is what trained the released weights; the intended target is not
  recoverable from the code);
* the distillation target softmax over padded text columns, and the other means over padding
  (attention BCE over padded clips, alignment BCE divided by the padded length), plus a lone false
  negative's vanishing rank term (the release's ``unsqueeze`` of an already 2-d row): these make
  the losses depend on the batch's padding; mrbench uses valid entries only by default and
  ``loss.cg_release_losses=true`` reproduces the release;
* real negatives: the release compares YouTube ids on QVHighlights (``vid`` without its time
  suffix) and whole ``vid`` s elsewhere; mrbench compares ``video_id`` (one per ``vid``), so on
  QVHighlights two windows of one YouTube video count as real negatives here;
* relevant clips for the moment encoder come from ``batch["relevant"]`` (the release clamps the
  summed saliency scores, which drops a relevant clip whose three scores are all 0);
* the saliency-label clamp ``min(id, n - 1)`` and the split used for selection: as every model
  (the shared data pipeline; Charades selects on a ``val`` split carved from train).

Presets (competitors.md §7; the release's ``scripts/train.sh`` and ``charades_sta/train.sh``):
``qvhighlights``: 2 T2V / 3 encoder / 3 decoder layers, 45 dummies (2 layers), 10 prototypes of
which 1 is used, sentence and moment encoders of 1 layer, loss weights 10 / 1 / 4, saliency 1,
``wattn`` / ``ms_align`` / ``distill`` 1; ``charades_sta``: the same with 2 prototypes used,
saliency weight 4, lr 2e-4, 200 epochs, 1-s clips, no length cap; ``tiny``: the base tiny model
(1 T2V / 1 encoder / 2 decoder layers, hidden 64) with 8 dummies (1 layer) and 5 prototypes.

With TD-DETR's strategies (``--with tddetr``, ``model.temporal = "tdem"``): a TDEM in every
correlation-guided T2V layer replaces the clips on the residual path, ``h = TDEM(v, words) +
Dropout(out_proj(attention))``; TDEM's own attention reads the projected words only (the
dummies draw attention mass in CG-DETR's softmax but carry no values), under the same padding
and head-major mask; the saliency token's keyless pass has none. VSDC synthesizes the training
batch before the dummies, so the real-negative test compares the query's ``video_id`` (a
synthesized sample carries its target query's).

Numerical guard: ``-log(1 - e_neg)`` uses ``e_neg`` clamped to ``1 - 1e-6`` (the release gives
``inf`` when a clip's attention goes entirely to the words).

As the release: the dummy and sentence encoders use 8 heads and dropout 0.1 whatever the model's
settings (``nheads`` when ``hidden`` is not a multiple of 8), and every residual branch of the
transformer layers has DropPath (per sample) instead of dropout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reference_models import ModelInfo, register_model, temporal_modules
from reference_models.core.config import Config
from reference_models.core.detr_blocks import use_drop_path
from reference_models.core.layers import (
    MLP,
    AnchorDecoder,
    EncoderLayer,
    FeedForward,
    InputProjection,
    head_major_mask,
)
from reference_models.core.losses import SetCriterion, margin_loss
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
from reference_models.core.saliency import clip_bce, rank_contrastive
from reference_models.core.span import cxw_to_xx, inverse_sigmoid

#: heads and dropout of the dummy and sentence encoders (hard-coded in the release)
AUX_HEADS = 8
AUX_DROPOUT = 0.1


class CorrelationT2VLayer(nn.Module):
    """CG-DETR's text-to-video layer (module docstring, step 3), with an optional ``temporal``
    module (e.g. TDEM, ``--with tddetr``) on the clips' residual path, which attends to the words
    (``temporal_uses_pos``: it also gets the clip positions)."""

    def __init__(self, d_model: int, nhead: int, dim_ff: int, dropout: float = 0.1, activation: str = "prelu",
                 temporal: nn.Module | None = None, temporal_uses_pos: bool = False) -> None:
        super().__init__()
        self.temporal = temporal
        self.temporal_uses_pos = temporal_uses_pos
        self.nhead = nhead
        self.attn_dropout = dropout
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.zeros_(self.out_proj.bias)
        self.ffn = FeedForward(d_model, dim_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _finish(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        h = x + self.dropout1(attn)
        return self.norm2(h + self.dropout2(self.ffn(self.norm1(h))))

    def forward(
        self, video: torch.Tensor, video_mask: torch.Tensor, pos: torch.Tensor, keys: torch.Tensor,
        key_pos: torch.Tensor, key_mask: torch.Tensor, n_dummies: int, attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Updated clips ``[B, L, d]`` and the head-averaged attention ``[B, L, K]``; ``attn_mask``
        ``[B * nhead, L, K]`` (True = blocked) is read batch-major (``b * nhead + h``). The
        temporal module, if any, replaces the clips on the residual path: ``h =
        temporal(clips, words) + Dropout(attention)``."""
        b, n, d = video.shape
        k_len = keys.shape[1]
        h = self.nhead
        q = ((video + pos) * (d // h) ** -0.5).view(b, n, h, -1).transpose(1, 2)
        k = (keys + key_pos).view(b, k_len, h, -1).transpose(1, 2)
        v = keys[:, n_dummies:].reshape(b, k_len - n_dummies, h, -1).transpose(1, 2)
        logits = q @ k.transpose(-1, -2)  # [B, h, L, K]
        if attn_mask is not None:
            logits = logits.masked_fill(attn_mask.view(b, h, n, k_len), float("-inf"))
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = logits.softmax(-1)
        dropped = F.dropout(weights, self.attn_dropout, self.training)
        out = (dropped[..., n_dummies:] @ v).transpose(1, 2).reshape(b, n, d)
        residual = video
        if self.temporal is not None:
            residual = self.temporal(video, video_mask, keys[:, n_dummies:], key_mask[:, n_dummies:],
                                     pos=pos if self.temporal_uses_pos else None,
                                     attn_mask=None if attn_mask is None else attn_mask[..., n_dummies:])
        return self._finish(residual, self.out_proj(out)), weights.mean(1)

    def forward_empty(self, token: torch.Tensor) -> torch.Tensor:
        """The release's pass of the saliency token ``[B, 1, d]`` with no keys: the attention
        output is ``out_proj`` of zeros (its bias). The temporal module stays out: one token has
        no temporal differences and there are no words to attend to."""
        return self._finish(token, self.out_proj(torch.zeros_like(token)))


def _stack(layers: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x, mask, pos)
    return x


class CGDETR(nn.Module):
    """CG-DETR on the shared core (module docstring). ``forward(batch) -> outputs``;
    ``criterion(outputs, batch) -> losses``; ``decode(outputs) -> scores, spans, saliency``."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        m = config.model
        d = m.hidden
        self.hidden = d
        self.nheads = m.nheads
        self.n_dummies = m.num_dummies
        self.num_prompts = m.num_prompts
        self.head_major_mask = m.t2v_head_major_mask
        aux_heads = AUX_HEADS if d % AUX_HEADS == 0 else m.nheads
        self.input_video = InputProjection(m.video_dim, d, m.input_layers, m.input_dropout)
        self.input_text = InputProjection(m.text_dim, d, m.input_layers, m.input_dropout)
        self.token_type = nn.Embedding(2, d)
        nn.init.normal_(self.token_type.weight, std=0.02)
        self.dummy_tokens = nn.Parameter(torch.randn(m.num_dummies, d))
        self.dummy_pos = nn.Parameter(torch.randn(m.num_dummies, d))
        self.dummy_encoder = nn.ModuleList(
            EncoderLayer(d, aux_heads, m.dim_ff, AUX_DROPOUT, "prelu") for _ in range(m.dummy_layers))
        self.sent_token = nn.Parameter(torch.randn(d))
        self.sent_pos = nn.Parameter(torch.randn(d))
        self.sentence_encoder = nn.ModuleList(
            EncoderLayer(d, aux_heads, m.dim_ff, AUX_DROPOUT, "prelu") for _ in range(m.sent_layers))
        self.moment_token = nn.Parameter(torch.randn(d))
        self.moment_pos = nn.Parameter(torch.randn(d))
        self.moment_encoder = nn.ModuleList(
            EncoderLayer(d, m.nheads, m.dim_ff, m.dropout, m.activation) for _ in range(m.moment_layers))
        temporal = temporal_modules(m.temporal, m, m.t2v_layers) if m.temporal else [None] * m.t2v_layers
        self.t2v = nn.ModuleList(
            CorrelationT2VLayer(d, m.nheads, m.dim_ff, m.dropout, m.activation, temporal[i], m.temporal_uses_pos)
            for i in range(m.t2v_layers))
        self.encoder = nn.ModuleList(
            EncoderLayer(d, m.nheads, m.dim_ff, m.dropout, m.activation) for _ in range(m.enc_layers))
        self.decoder = AnchorDecoder(d, m.nheads, m.dim_ff, m.dec_layers, m.dropout, m.activation)
        for module in (self.moment_encoder, self.t2v, self.encoder, self.decoder):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        nn.init.zeros_(self.decoder.bbox_embed.layers[-1].bias)
        for module in (self.moment_encoder, self.t2v, self.encoder, self.decoder):
            use_drop_path(module, m.dropout)
        for module in (self.dummy_encoder, self.sentence_encoder):
            use_drop_path(module, AUX_DROPOUT)
        self.prototypes = nn.Parameter(torch.randn(m.total_prompts, d))
        self.global_pos = nn.Parameter(torch.randn(1, d))
        self.anchors = nn.Embedding(m.num_queries, 2)
        self.span_head = MLP(d, d, 2, 3)
        self.class_head = nn.Linear(d, 2)
        self.saliency_video = nn.Linear(d, d)
        self.saliency_global = nn.Linear(d, d)
        self.criterion = CGCriterion(config)

    # ------------------------------------------------------------------------------------------
    def encode(
        self, video: torch.Tensor, video_mask: torch.Tensor, pos: torch.Tensor, keys: torch.Tensor,
        key_mask: torch.Tensor, key_pos: torch.Tensor, sizes: list[int],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clip memory ``M [B, L, d]`` (``+ g*``), saliency token ``g* [B, d]`` and the layer-averaged
        T2V attention ``[B, L, K]``; ``sizes`` are the batch parts expanded separately by the
        head-major mask option."""
        attn_mask = None
        if self.head_major_mask:
            parts = zip(video_mask.split(sizes), key_mask.split(sizes), strict=True)
            attn_mask = torch.cat([head_major_mask(vm, km, self.nheads) for vm, km in parts])
        x = video
        total = None
        for layer in self.t2v:
            x, attn = layer(x, video_mask, pos, keys, key_pos, key_mask, self.n_dummies, attn_mask)
            total = attn if total is None else total + attn
        attn = total / len(self.t2v)
        valid = video_mask.to(video.dtype)
        ctx = ((video * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)).detach()
        sim = (F.normalize(video - ctx[:, None], dim=2) @ F.normalize(self.prototypes, dim=1).T).softmax(-1)
        importance = attn[:, :, self.n_dummies:].sum(2).detach() * valid
        score = (sim * importance[..., None]).sum(1) / importance.sum(1, keepdim=True)
        top, index = score.topk(self.num_prompts, dim=1)
        token = (top[..., None] * self.prototypes[index]).sum(1) + ctx
        token = token[:, None]
        for layer in self.t2v:
            token = layer.forward_empty(token)
        batch = video.shape[0]
        seq = torch.cat([token, x], dim=1)
        seq_pos = torch.cat([self.global_pos.to(pos.dtype).expand(batch, 1, -1), pos], dim=1)
        seq_mask = torch.cat([video_mask.new_ones(batch, 1), video_mask], dim=1)
        seq = _stack(self.encoder, seq, seq_mask, seq_pos)
        token = seq[:, 0]
        return seq[:, 1:] + token[:, None], token, attn

    def saliency(self, memory: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """``<W1 M_t, W2 g> / sqrt(d)`` ``[B, L]``."""
        return (self.saliency_video(memory) * self.saliency_global(token).unsqueeze(1)).sum(-1) / math.sqrt(self.hidden)

    @staticmethod
    def real_negatives(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B]`` True where the rolled sample (i + 1) comes from another video."""
        size = batch["video_mask"].shape[0]
        if "video_id" not in batch:
            return torch.full((size,), size > 1, dtype=torch.bool, device=batch["video_mask"].device)
        ids = batch["video_id"]
        return ids != ids.roll(-1, dims=0)

    def forward(self, batch: dict[str, torch.Tensor], negatives: bool | None = None,
                targets: bool | None = None) -> dict[str, torch.Tensor]:
        """Outputs (``docs/models.md``, plus CG-DETR's own for its losses). ``negatives`` (default:
        in training) adds the real-negative pass; ``targets`` (default: in training, when the batch
        has ``relevant``) adds the moment / sentence encoders' outputs."""
        negatives = self.training if negatives is None else negatives
        targets = (self.training and "relevant" in batch) if targets is None else targets
        video_mask = batch["video_mask"].bool()
        text_mask = batch["text_mask"].bool()
        video = self.input_video(batch["video"]) + self.token_type.weight[1]
        text = self.input_text(batch["text"]) + self.token_type.weight[0]
        pos = sine_1d(video_mask, self.hidden).to(video.dtype)
        size, nd = video.shape[0], self.n_dummies
        dummy_pos = self.dummy_pos.to(video.dtype).expand(size, -1, -1)
        dummy_mask = text_mask.new_ones(size, nd)
        dummies = _stack(self.dummy_encoder, torch.cat([self.dummy_tokens.to(video.dtype).expand(size, -1, -1), text], 1),
                         torch.cat([dummy_mask, text_mask], 1),
                         torch.cat([dummy_pos, torch.zeros_like(text)], 1))[:, :nd]
        keys = torch.cat([dummies, text], 1)
        key_mask = torch.cat([dummy_mask, text_mask], 1)
        key_pos = torch.cat([dummy_pos, torch.zeros_like(text)], 1)
        out: dict[str, torch.Tensor] = {}
        if negatives:
            real = self.real_negatives(batch)
            rows = real.nonzero().squeeze(1)
            n_neg = int(rows.numel())
            memory, token, attn = self.encode(
                torch.cat([video, video[rows]]), torch.cat([video_mask, video_mask[rows]]),
                torch.cat([pos, pos[rows]]), torch.cat([keys, keys.roll(-1, 0)[rows]]),
                torch.cat([key_mask, key_mask.roll(-1, 0)[rows]]), torch.cat([key_pos, key_pos[rows]]),
                [size, n_neg] if n_neg else [size],
            )
            memory, memory_neg = memory[:size], memory[size:]
            token, token_neg = token[:size], token[size:]
            attn, attn_neg = attn[:size], attn[size:]
            words_neg = text_mask.roll(-1, 0)[rows].to(attn.dtype)
            saliency_neg = self.saliency(memory_neg, token_neg)
            engagement_neg = (attn_neg[:, :, nd:] * words_neg[:, None]).sum(2).clamp(0, 1)
            out["real_neg"] = real
            out["saliency_neg"] = saliency_neg.new_zeros(size, video.shape[1]).index_copy(0, rows, saliency_neg)
            out["attn_saliency_neg"] = engagement_neg.new_zeros(size, video.shape[1]).index_copy(0, rows, engagement_neg)
        else:
            memory, token, attn = self.encode(video, video_mask, pos, keys, key_mask, key_pos, [size])
        hidden, refs = self.decoder(memory, video_mask, pos, self.anchors.weight)
        out["all_logits"] = self.class_head(hidden)
        out["all_spans"] = (self.span_head(hidden) + inverse_sigmoid(refs)).sigmoid()
        out["saliency"] = self.saliency(memory, token)
        out["attn"] = attn
        out["attn_saliency"] = (attn[:, :, nd:] * text_mask[:, None].to(attn.dtype)).sum(2).clamp(0, 1)
        out["dummies"] = dummies
        out["prototypes"] = self.prototypes
        if targets:
            out.update(self.correlation(batch, video, video_mask, pos, text, text_mask, dummies, dummy_pos))
        return out

    def correlation(
        self, batch: dict[str, torch.Tensor], video: torch.Tensor, video_mask: torch.Tensor, pos: torch.Tensor,
        text: torch.Tensor, text_mask: torch.Tensor, dummies: torch.Tensor, dummy_pos: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The clip-word correlation learner's outputs (module docstring, step 7)."""
        size = video.shape[0]
        relevant = batch["relevant"].bool() & video_mask
        one = video_mask.new_ones(size, 1)
        moment = self.moment_token.to(video.dtype).expand(size, 1, -1)
        seq = torch.cat([moment, video], 1).repeat(2, 1, 1)
        seq_pos = torch.cat([self.moment_pos.to(pos.dtype).expand(size, 1, -1), pos], 1).repeat(2, 1, 1)
        seq_mask = torch.cat([torch.cat([one, relevant], 1), torch.cat([one, video_mask & ~relevant], 1)])
        encoded = _stack(self.moment_encoder, seq, seq_mask, seq_pos)
        in_moment, off_moment = encoded[:size], encoded[size:]
        sent = self.sent_token.to(video.dtype).expand(size, 1, -1)
        sent_pos = self.sent_pos.to(pos.dtype).expand(size, 1, -1)
        words = _stack(self.sentence_encoder, torch.cat([sent, text], 1), torch.cat([one, text_mask], 1),
                       torch.cat([sent_pos, torch.zeros_like(text)], 1))
        words_dummy = _stack(self.sentence_encoder, torch.cat([sent, dummies], 1),
                             video_mask.new_ones(size, 1 + dummies.shape[1]), torch.cat([sent_pos, dummy_pos], 1))
        projected = torch.cat([words_dummy[:, 1:], words[:, 1:]], 1)
        return {
            "moment": in_moment[:, 0], "nonmoment": off_moment[:, 0],
            "sentence": words[:, 0], "sentence_dummy": words_dummy[:, 0],
            "moment_to_text": in_moment[:, 1:] @ projected.transpose(1, 2),
            "clip_features": torch.where(relevant[..., None], in_moment[:, 1:], off_moment[:, 1:]),
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


class CGCriterion(SetCriterion):
    """The set loss plus CG-DETR's saliency, alignment, distillation and orthogonality losses
    (module docstring). Returns the unweighted terms and the weighted total under ``"loss"``."""

    def __init__(self, config: Config) -> None:
        loss = config.loss
        super().__init__(
            HungarianMatcher(loss.cost_span, loss.cost_giou, loss.cost_class),
            span=loss.span, giou=loss.giou, label=loss.label, saliency=loss.saliency,
            eos_coef=loss.eos_coef, margin=loss.margin, tau=loss.tau, aux=loss.aux,
        )
        self.wattn = loss.wattn
        self.release = loss.cg_release_losses
        self.weights.update({"loss_ms_align": loss.ms_align, "loss_distill": loss.distill,
                             "loss_orthogonal_dummy": loss.distill})

    def _rank(self, scores: torch.Tensor, scores_neg: torch.Tensor | None, labels: torch.Tensor,
              mask: torch.Tensor) -> torch.Tensor:
        if scores_neg is None:
            return rank_contrastive(scores, labels, mask, self.tau)
        return rank_contrastive(torch.cat([scores, scores_neg], 1), torch.cat([labels, torch.zeros_like(labels)], 1),
                                torch.cat([mask, mask], 1), self.tau)

    def saliency_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        scores = outputs["saliency"].float()
        attn = outputs["attn_saliency"].float()
        mask = batch["video_mask"].bool()
        labels = batch["saliency_all"].float()
        pos, neg = batch["saliency_pos"], batch["saliency_neg"]
        real = outputs.get("real_neg")
        loss = margin_loss(scores, pos, neg, self.margin)
        attn_loss = margin_loss(attn, pos, neg, self.margin)
        attn_loss = attn_loss + clip_bce(attn, labels.clamp(0, 1), mask, padded_mean=self.release)
        if real is not None and bool(real.any()):
            fmask = mask.float()
            scores_neg = outputs["saliency_neg"].float()[real]
            attn_neg = outputs["attn_saliency_neg"].float()[real]
            loss = loss + self._rank(scores[real], scores_neg, labels[real], mask[real])
            false = ~real
            if bool(false.any()) and not (self.release and int(false.sum()) == 1):
                loss = loss + self._rank(scores[false], None, labels[false], mask[false])
            loss = loss + (F.softplus(scores_neg) * fmask[real]).sum(1).mean()
            attn_loss = attn_loss + self._rank(attn[real], attn_neg, labels[real], mask[real])
            attn_loss = attn_loss + (-torch.log1p(-attn_neg.clamp(max=1 - 1e-6)) * fmask[real]).sum(1).mean()
        else:
            loss = loss + self._rank(scores, None, labels, mask)
            attn_loss = attn_loss + self._rank(attn, None, labels, mask)
        return loss + self.wattn * attn_loss

    def ms_align_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        """Moment-sentence alignment (module docstring)."""
        moment = F.normalize(outputs["moment"].float(), dim=1)
        other = F.normalize(outputs["nonmoment"].float(), dim=1)
        sentence = F.normalize(outputs["sentence"].float(), dim=1)
        dummy = F.normalize(outputs["sentence_dummy"].float(), dim=1)
        size = moment.shape[0]
        target = torch.arange(size, device=moment.device)
        loss = F.cross_entropy(torch.cat([moment @ sentence.T, other @ sentence.T], 1), target)
        # the release's dummy target: argmax of a 0/1 row (column 1 for row 0, else column 0)
        dummy_target = torch.zeros_like(target)
        dummy_target[0] = 1
        loss = loss + F.cross_entropy(torch.cat([moment @ dummy.T, other @ dummy.T], 1), dummy_target)
        mask = batch["video_mask"].float()
        logits = (outputs["moment"].float()[:, None] * outputs["clip_features"].float()).sum(-1)
        with torch.autocast(logits.device.type, enabled=False):  # autocast refuses BCE on probabilities
            bce = F.binary_cross_entropy(logits.sigmoid(), (batch["relevant"].bool() & batch["video_mask"].bool()).float(),
                                         reduction="none") * mask
        return loss + (bce.mean() if self.release else bce.sum() / mask.sum().clamp(min=1.0))

    def distill_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        """KL(softmax(clip-word similarity) || T2V attention) on relevant clips."""
        attn = outputs["attn"].float()
        similarity = outputs["moment_to_text"].float()
        size = attn.shape[0]
        relevant = (batch["relevant"].bool() & batch["video_mask"].bool()).float()
        keys = torch.cat([batch["text_mask"].new_ones(size, attn.shape[2] - batch["text_mask"].shape[1]),
                          batch["text_mask"]], 1).bool()
        if not self.release:
            similarity = similarity.masked_fill(~keys[:, None], float("-inf"))
        target = similarity.softmax(-1).detach()
        kl = torch.special.xlogy(target, target) - target * torch.log(attn + 1e-6)
        if self.release:
            per_clip = kl.mean(-1)
        else:
            per_clip = (kl * keys[:, None]).sum(-1) / keys.sum(1, keepdim=True)
        return (per_clip * relevant).sum() / relevant.sum().clamp(min=1.0)

    @staticmethod
    def orthogonal_loss(outputs: dict, prototypes: torch.Tensor) -> torch.Tensor:
        """Mean |cos| between distinct dummies (per sample) and between distinct prototypes."""
        def off_diagonal(x: torch.Tensor) -> torch.Tensor:
            x = F.normalize(x.float(), dim=-1)
            sim = x @ x.detach().transpose(-1, -2)
            eye = torch.eye(sim.shape[-1], dtype=torch.bool, device=sim.device)
            return sim.masked_fill(eye, 0.0).abs().mean()

        dummies = outputs["dummies"]
        loss = off_diagonal(dummies) if dummies.shape[1] != 1 else dummies.new_zeros(())
        return loss + off_diagonal(prototypes)

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        parts = super().forward(outputs, batch)
        zero = parts["loss"].new_zeros(())
        if "moment" in outputs:
            parts["loss_ms_align"] = self.ms_align_loss(outputs, batch)
            parts["loss_distill"] = self.distill_loss(outputs, batch)
        else:
            parts["loss_ms_align"] = parts["loss_distill"] = zero
        parts["loss_orthogonal_dummy"] = self.orthogonal_loss(outputs, outputs["prototypes"])
        total = parts["loss"]
        for name in ("loss_ms_align", "loss_distill", "loss_orthogonal_dummy"):
            total = total + self.weights[name] * parts[name]
        parts["loss"] = total
        return parts


# official settings (competitors.md §3, §7; the release's scripts/train.sh and charades_sta/train.sh)
_COMMON = {"model.t2v_layers": 2, "model.enc_layers": 3, "model.dec_layers": 3, "model.num_dummies": 45,
           "model.total_prompts": 10, "model.dummy_layers": 2, "model.sent_layers": 1, "model.moment_layers": 1}
PRESETS = {
    "qvhighlights": {**_COMMON, "model.num_prompts": 1},
    "charades_sta": {**_COMMON, "model.num_prompts": 2, "loss.saliency": 4.0, "train.epochs": 200},
    # the base tiny model (1 T2V, 1 self-attention, 2 decoder layers) with few dummies / prototypes
    "tiny": {"model.num_dummies": 8, "model.total_prompts": 5, "model.num_prompts": 1, "model.dummy_layers": 1,
             "model.sent_layers": 1, "model.moment_layers": 1},
}


@register_model("cg_detr", ModelInfo("CG-DETR", "https://arxiv.org/abs/2311.08835", 2023), presets=PRESETS)
def build(config: Config) -> CGDETR:
    return CGDETR(config)


def _is_cg_detr(keys: frozenset[str], args: object) -> bool:
    return {"dummy_rep_token", "global_rep_token", "transformer.t2v_encoder.layers.0.self_attn.out_proj.weight"} <= keys


def _overrides(args: dict) -> dict:
    names = ("t2v_layers", "enc_layers", "num_dummies", "total_prompts", "num_prompts", "dummy_layers",
             "sent_layers", "moment_layers")
    return {**detr_overrides(args), **{f"model.{n}": int(args[n]) for n in names},
            "data.max_v_l": max(0, int(args["max_v_l"])), "loss.wattn": float(args["lw_wattn"]),
            "loss.ms_align": float(args["lw_ms_align"]), "loss.distill": float(args["lw_distill"])}


def _encoder_rules(mine: str, official: str) -> tuple[Rule, ...]:
    return (
        Rule(rf"{mine}\.(\d+)\.self_attn\.(.+)", rf"{official}.layers.\1.self_attn.\2"),
        Rule(rf"{mine}\.(\d+)\.ffn\.(linear1|linear2|activation)\.(.+)", rf"{official}.layers.\1.\2.\3"),
        Rule(rf"{mine}\.(\d+)\.(norm1|norm2)\.(.+)", rf"{official}.layers.\1.\2.\3"),
    )


#: wjun0830/CGDETR release checkpoints
RELEASE = register_release(ReleaseFormat(
    name="cg_detr", model="cg_detr", detect=_is_cg_detr, overrides=_overrides,
    rules=(
        *_encoder_rules("dummy_encoder", "txtproj_encoder"),
        *_encoder_rules("sentence_encoder", "scls_encoder"),
        *_encoder_rules("moment_encoder", "transformer.mcls_encoder"),
        Rule(r"t2v\.(\d+)\.out_proj\.(.+)", r"transformer.t2v_encoder.layers.\1.self_attn.out_proj.\2"),
        Rule(r"token_type\.weight", "token_type_embeddings.weight"),
        Rule(r"dummy_tokens", "dummy_rep_token"),
        Rule(r"dummy_pos", "dummy_rep_pos"),
        Rule(r"sent_token", "sent_rep_token"),
        Rule(r"sent_pos", "sent_rep_pos"),
        Rule(r"moment_token", "moment_rep_token"),
        Rule(r"moment_pos", "moment_rep_pos"),
        Rule(r"prototypes", "global_rep_token"),
        *DETR_RULES,
    ),
    preset=detr_preset, unused=(*TEXT_POSITION_TABLE, r"txt_proj_linear\..+"),
))
