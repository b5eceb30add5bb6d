"""Hungarian matching of predicted spans to ground-truth windows.

Cost of prediction q against target w (one sample)::

    C[q, w] = cost_span * |cxw_q - cxw_w|_1 - cost_giou * gIoU(xx_q, xx_w) - cost_class * p_fg(q)

with ``p_fg = softmax(logits)[..., 0]`` (index 0 = foreground). The cost of every sample of a
batch (and of every decoder layer, stacked along the batch axis) is computed in one pass on the
predictions' device, moved to the host once, and each sample's valid block is solved with
``scipy.optimize.linear_sum_assignment``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from reference_models.core.span import cxw_to_xx, pairwise_giou


class HungarianMatcher:
    """One-to-one assignment minimising the cost above (see the module docstring)."""

    def __init__(self, cost_span: float = 10.0, cost_giou: float = 1.0, cost_class: float = 4.0) -> None:
        self.cost_span = cost_span
        self.cost_giou = cost_giou
        self.cost_class = cost_class

    def cost(self, logits: torch.Tensor | None, spans: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``[B, Q, W]`` cost of predicted cxw ``spans [B, Q, 2]`` (and ``logits [B, Q, 2]``)
        against padded target cxw windows ``targets [B, W, 2]``."""
        spans = spans.float()
        targets = targets.float()
        cost = self.cost_span * torch.cdist(spans, targets, p=1)
        cost = cost - self.cost_giou * pairwise_giou(cxw_to_xx(spans), cxw_to_xx(targets))
        if logits is not None and self.cost_class:
            cost = cost - self.cost_class * logits.float().softmax(-1)[..., :1]
        return cost

    @torch.no_grad()
    def __call__(
        self, logits: torch.Tensor | None, spans: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Matched ``(batch_index, query_index, target_index)``, each ``[K]`` on the input device.

        ``target_mask [B, W]`` marks real windows (they must come first in each row). Every real
        window gets exactly one prediction (``Q >= W`` required)."""
        counts = target_mask.sum(1).tolist()
        cost = self.cost(logits, spans, targets).cpu().numpy()
        batch, query, target = [], [], []
        for b, n in enumerate(counts):
            if n == 0:
                continue
            rows, cols = linear_sum_assignment(cost[b, :, :n])
            batch.append(np.full(len(rows), b))
            query.append(rows)
            target.append(cols)
        device = spans.device
        if not batch:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty, empty
        return tuple(torch.from_numpy(np.concatenate(p).astype(np.int64)).to(device) for p in (batch, query, target))
