"""TDEM: the Temporal Dynamics Enhancement Module of TD-DETR, as a plug-in for any
text-to-video (T2V) cross-attention encoder layer.

Definitions (tddetr.md §3), for the video tokens ``x`` [B, L, D] of one T2V layer, the text
tokens ``t`` [B, T, D] and a learnable start token ``s`` [D]::

    dyn_1 = x_1 - s,   dyn_i = x_i - x_{i-1}   (i = 2..L)      first-order temporal differences
    dyn   = MLP(dyn)                           2 x [LayerNorm -> Dropout -> Linear(D, D) -> ReLU]
    a_dyn = MHA(query=dyn, key=t, value=t)     its own attention over the text (text padding masked)
    TDEM(x) = beta * x + (1 - beta) * a_dyn

The T2V layer then uses ``TDEM(x)`` in place of its residual input ``x``:
``h = TDEM(x) + Dropout(MHA_vid(x + pos, t, t))``, followed by the layer's usual norm/FFN. With
``beta = 1`` the module returns ``x`` unchanged, so the layer is exactly the plain T2V layer.

Convention for the differences (tddetr.md pitfall 17): the original release differences the
tokens *after* adding the length-normalised sine position encoding, so the difference also
carries a position-encoding term that changes with the video length. Here the differences are
taken on the video tokens themselves (the paper's description) by default; pass ``pos`` to
``forward`` to reproduce the original release (differences of ``x + pos``). Differences are
causal, so the output at valid positions does not depend on how far a sample is padded.
"""

from __future__ import annotations

import torch
from torch import nn


class TDEM(nn.Module):
    """Temporal Dynamics Enhancement Module (see the module docstring for the formula).

    ``start_token`` lets several layers share one start token (the original shares a single
    ``nn.Embedding(1, D)`` across all T2V layers); when ``None`` the module owns its token.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dropout: float = 0.1,
        beta: float = 0.7,
        start_token: nn.Parameter | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"TDEM beta must lie in [0, 1], got {beta}")
        self.beta = beta
        self.start_token = start_token if start_token is not None else new_start_token(d_model)
        self.flow_mlp = nn.Sequential(
            nn.LayerNorm(d_model), nn.Dropout(dropout), nn.Linear(d_model, d_model), nn.ReLU(),
            nn.LayerNorm(d_model), nn.Dropout(dropout), nn.Linear(d_model, d_model), nn.ReLU(),
        )
        self.attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)

    def dynamics(self, video: torch.Tensor) -> torch.Tensor:
        """First-order temporal differences [B, L, D], the first against the start token."""
        previous = torch.cat([self.start_token.view(1, 1, -1).expand(video.shape[0], 1, -1), video[:, :-1]], dim=1)
        return video - previous

    def forward(
        self,
        video: torch.Tensor,
        video_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        pos: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``beta * video + (1 - beta) * a_dyn`` [B, L, D]; masks are 1/True at valid tokens;
        ``attn_mask`` is an optional extra mask of the text attention (``[B * nhead, L, T]``,
        True = blocked, e.g. the release's head-major mask).

        Padded video positions are set to ``video`` itself (their dynamics are meaningless).
        """
        if self.beta == 1.0:
            return video
        source = video if pos is None else video + pos
        dyn = self.flow_mlp(self.dynamics(source))
        a_dyn = self.attn(dyn, text, text, key_padding_mask=~text_mask.bool(), attn_mask=attn_mask,
                          need_weights=False)[0]
        mixed = self.beta * video + (1.0 - self.beta) * a_dyn
        return torch.where(video_mask.bool().unsqueeze(-1), mixed, video)


def new_start_token(d_model: int) -> nn.Parameter:
    """A fresh learnable start token, initialised like ``nn.Embedding`` (standard normal)."""
    return nn.Parameter(torch.randn(d_model))
