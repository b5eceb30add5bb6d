"""Losses of the DETR-style moment retrieval models.

Set-prediction loss (per decoder layer; the layers before the last are the auxiliary copies),
with the matched pairs ``(b, q) <-> (b, w)`` from :class:`~reference_models.core.matcher.HungarianMatcher`:

* ``loss_span``  = mean over matched pairs and both coordinates of ``|cxw_pred - cxw_gt|``;
* ``loss_giou``  = mean over matched pairs of ``1 - gIoU``;
* ``loss_label`` = plain mean over all B x Q queries of the 2-way cross-entropy with class
  weights ``[1, eos_coef]`` (target 0 = foreground for matched queries, 1 = background).

Saliency losses on clip scores ``s [B, L]`` (and ``s_neg``, the scores of the same videos paired
with another sample's text), valid clips given by ``mask [B, L]``:

* :func:`margin_loss` = ``2 / (B * P) * sum max(0, margin + s[neg] - s[pos])`` over P pairs;
* :func:`rank_contrastive_loss` = ``1 / 12 * sum_{r=1..11} mean_b -mean_{t: y_bt >= r} log
  softmax_t([s ; s_neg] / tau)`` over the valid clips of both halves (``s_neg`` labelled 0;
  samples without positives contribute 0; ranks without any positive in the batch are skipped);
* :func:`negative_pair_loss` = ``mean_b sum_t -log(1 - sigmoid(s_neg[b, t]))`` over valid clips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference_models.core.matcher import HungarianMatcher
from reference_models.core.span import cxw_to_xx, paired_giou


def margin_loss(scores: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Hinge on (positive, negative) clip pairs, indices ``pos``/``neg [B, P]``."""
    pos_scores = scores.gather(1, pos)
    neg_scores = scores.gather(1, neg)
    return (margin + neg_scores - pos_scores).clamp(min=0).sum() / pos.numel() * 2


def rank_contrastive_loss(
    scores: torch.Tensor, scores_neg: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
    tau: float = 0.5, ranks: int = 11, divisor: float = 12.0,
) -> torch.Tensor:
    """Rank-contrastive loss (module docstring); ``labels [B, L]`` are the per-clip scores."""
    valid = torch.cat([mask, mask], dim=1).to(scores.dtype)
    logits = torch.cat([scores, scores_neg], dim=1).float()
    logits = (logits * valid + (1.0 - valid) * -1e3) / tau
    log_prob = logits.log_softmax(dim=1)
    labels = torch.cat([labels, torch.zeros_like(labels)], dim=1)
    thresholds = torch.arange(1, ranks + 1, device=scores.device, dtype=labels.dtype)
    positive = (labels[None] >= thresholds[:, None, None]).to(log_prob.dtype)  # [R, B, 2L]
    per_sample = (positive * log_prob[None] * valid[None]).sum(2) / (positive.sum(2) + 1e-6)  # [R, B]
    present = (positive.sum((1, 2)) > 0).to(log_prob.dtype)  # ranks with any positive
    return -(per_sample.mean(1) * present).sum() / divisor


def negative_pair_loss(scores_neg: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``-log(1 - sigmoid(s_neg))`` summed over valid clips, averaged over the batch."""
    return (F.softplus(scores_neg.float()) * mask.to(torch.float32)).sum(1).mean()


class SetCriterion(torch.nn.Module):
    """The set loss over all decoder layers plus the three saliency losses (module docstring).

    ``__call__(outputs, batch)`` returns a dict of scalar tensors: the weighted total under
    ``"loss"`` and each unweighted term (``loss_span``, ``loss_giou``, ``loss_label``,
    ``loss_saliency``; auxiliary layers as ``loss_span_0`` ...).

    ``outputs``: ``all_logits [D, B, Q, 2]``, ``all_spans [D, B, Q, 2]`` (last = final layer),
    ``saliency [B, L]``, optionally ``saliency_neg [B, L]``. ``batch``: ``spans [B, W, 2]``,
    ``span_mask [B, W]``, ``video_mask [B, L]``, ``saliency_pos/neg [B, P]``, ``saliency_all [B, L]``.
    """

    def __init__(
        self, matcher: HungarianMatcher, span: float = 10.0, giou: float = 1.0, label: float = 4.0,
        saliency: float = 1.0, eos_coef: float = 0.1, margin: float = 0.2, tau: float = 0.5,
        aux: bool = True,
    ) -> None:
        super().__init__()
        self.matcher = matcher
        self.weights = {"loss_span": span, "loss_giou": giou, "loss_label": label, "loss_saliency": saliency}
        self.margin = margin
        self.tau = tau
        self.aux = aux
        self.register_buffer("class_weight", torch.tensor([1.0, eos_coef]), persistent=False)

    def set_losses(
        self, logits: torch.Tensor, spans: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Span, gIoU and label losses for each layer: values ``[D]``."""
        layers, batch, queries, _ = spans.shape
        flat_logits = logits.reshape(layers * batch, queries, 2)
        flat_spans = spans.reshape(layers * batch, queries, 2)
        flat_targets = targets.repeat(layers, 1, 1)
        flat_mask = target_mask.repeat(layers, 1)
        b, q, w = self.matcher(flat_logits, flat_spans, flat_targets, flat_mask)
        pred = flat_spans[b, q].float()
        gold = flat_targets[b, w].float()
        layer_of = b // batch
        n_matched = torch.zeros(layers, device=spans.device).index_add_(0, layer_of, torch.ones_like(layer_of, dtype=torch.float32)).clamp(min=1)
        l1 = torch.zeros(layers, device=spans.device).index_add_(0, layer_of, (pred - gold).abs().mean(1))
        giou = torch.zeros(layers, device=spans.device).index_add_(
            0, layer_of, 1.0 - paired_giou(cxw_to_xx(pred), cxw_to_xx(gold))
        )
        classes = torch.ones(layers * batch, queries, dtype=torch.long, device=spans.device)
        classes[b, q] = 0
        ce = F.cross_entropy(flat_logits.float().transpose(1, 2), classes, weight=self.class_weight, reduction="none")
        return {
            "loss_span": l1 / n_matched,
            "loss_giou": giou / n_matched,
            "loss_label": ce.reshape(layers, batch * queries).mean(1),
        }

    def saliency_loss(self, outputs: dict, batch: dict) -> torch.Tensor:
        """Margin + rank-contrastive + negative-pair loss on the final clip scores."""
        scores = outputs["saliency"].float()
        mask = batch["video_mask"]
        loss = margin_loss(scores, batch["saliency_pos"], batch["saliency_neg"], self.margin)
        if "saliency_neg" in outputs:
            scores_neg = outputs["saliency_neg"].float()
            labels = batch["saliency_all"].float()
            loss = loss + rank_contrastive_loss(scores, scores_neg, labels, mask, self.tau)
            loss = loss + negative_pair_loss(scores_neg, mask)
        return loss

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        logits, spans = outputs["all_logits"], outputs["all_spans"]
        if not self.aux:
            logits, spans = logits[-1:], spans[-1:]
        per_layer = self.set_losses(logits, spans, batch["spans"], batch["span_mask"])
        last = logits.shape[0] - 1
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=spans.device)
        for name, values in per_layer.items():
            for layer in range(last + 1):
                key = name if layer == last else f"{name}_{layer}"
                parts[key] = values[layer]
            total = total + self.weights[name] * values.sum()
        # computed even at weight 0, so every parameter gets a gradient (DDP expects that)
        parts["loss_saliency"] = self.saliency_loss(outputs, batch)
        total = total + self.weights["loss_saliency"] * parts["loss_saliency"]
        parts["loss"] = total
        return parts
