"""Helpers of the release-parity tests: the fixtures of ``../shared/reference/release_fixtures``
and their official inputs as an mrbench batch."""

from __future__ import annotations

import torch

from tests.conftest import require_shared


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_fixture(name: str) -> dict:
    """``<name>.pt`` of the release fixtures (skipped or failed as ``require_shared`` says)."""
    return torch.load(require_shared("reference", "release_fixtures", f"{name}.pt"), weights_only=True)


def release_batch(f: dict) -> dict[str, torch.Tensor]:
    """A fixture's official inputs and targets as an mrbench batch."""
    inputs, targets = f["inputs"], f["targets"]
    labels = targets["span_labels"]
    width = max(len(t["spans"]) for t in labels)
    spans = torch.zeros(len(labels), width, 2)
    span_mask = torch.zeros(len(labels), width, dtype=torch.bool)
    for b, t in enumerate(labels):
        spans[b, : len(t["spans"])] = t["spans"]
        span_mask[b, : len(t["spans"])] = True
    return {
        "video": inputs["src_vid"], "video_mask": inputs["src_vid_mask"].bool(),
        "text": inputs["src_txt"], "text_mask": inputs["src_txt_mask"].bool(),
        "spans": spans, "span_mask": span_mask, "saliency_pos": targets["saliency_pos_labels"],
        "saliency_neg": targets["saliency_neg_labels"], "saliency_all": targets["saliency_all_labels"],
    }
