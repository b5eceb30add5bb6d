"""Saliency losses on arbitrary rows of clip scores (the core's
:func:`~reference_models.core.losses.rank_contrastive_loss` fixes the ``[s ; s_neg]`` layout).

* :func:`rank_contrastive` = ``1 / 12 * sum_{r=1..11} mean_rows -mean_{t: y_t >= r} log
  softmax_t(s / tau)`` over the valid entries of each row (invalid entries get the score -1e3
  before the softmax, as the releases do; rows without a positive contribute 0; ranks without
  any positive are skipped). Used with ``[s ; s_neg]`` rows (labels ``[y ; 0]``) or plain ``s``.
* :func:`clip_bce` = binary cross-entropy of probabilities (log clamped at -100, as
  ``nn.BCELoss``), averaged over the valid entries or, with ``padded_mean``, over all of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rank_contrastive(
    scores: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, tau: float = 0.5, ranks: int = 11,
    divisor: float = 12.0,
) -> torch.Tensor:
    """Rank-contrastive loss (module docstring) of ``scores``, ``labels`` and ``valid`` ``[N, M]``."""
    valid = valid.to(torch.float32)
    logits = (scores.float() * valid + (1.0 - valid) * -1e3) / tau
    log_prob = logits.log_softmax(dim=1)
    thresholds = torch.arange(1, ranks + 1, device=scores.device, dtype=torch.float32)
    positive = (labels.float()[None] >= thresholds[:, None, None]).to(log_prob.dtype)  # [R, N, M]
    per_row = (positive * log_prob[None] * valid[None]).sum(2) / (positive.sum(2) + 1e-6)  # [R, N]
    present = (positive.sum((1, 2)) > 0).to(log_prob.dtype)
    return -(per_row.mean(1) * present).sum() / divisor


def clip_bce(probs: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, padded_mean: bool = False) -> torch.Tensor:
    """BCE of ``probs`` against ``targets`` ``[N, M]``: mean over ``valid`` entries, or with
    ``padded_mean`` the mean over every entry (the padded ones included, as the releases)."""
    with torch.autocast(probs.device.type, enabled=False):  # autocast refuses BCE on probabilities
        loss = F.binary_cross_entropy(probs.float(), targets.float(), reduction="none")
    if padded_mean:
        return loss.mean()
    valid = valid.to(loss.dtype)
    return (loss * valid).sum() / valid.sum().clamp(min=1.0)
