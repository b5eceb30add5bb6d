"""Training under bf16 autocast on CUDA (the trainer's "auto" there): autocast refuses
``binary_cross_entropy`` on probabilities, which CG-DETR's alignment loss and the clip BCE use,
so they run with autocast off. CPU autocast does not refuse it, hence a GPU-only test (it ran on
an H200: one CG-DETR epoch under bf16)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.torch,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (autocast refuses BCE there only)")]


@pytest.mark.parametrize("model", ["cg_detr", "tddetr"])
def test_one_bf16_epoch_on_cuda(model: str, tmp_path: Path) -> None:
    from mrbench.data.synth import SynthConfig, generate
    from reference_models import resolve_config
    from reference_models.core.config import parse_overrides
    from reference_models.train import train

    data = generate(SynthConfig(n_train=32, n_val=8, n_ood=2, n_clips=20, dims="16,8"), tmp_path / "d", progress=False)
    config = resolve_config(model, "tiny", parse_overrides(["train.epochs=1", "train.amp=bf16", "train.progress=false"]))
    train(config, data, tmp_path / "run", device="cuda")
    assert (tmp_path / "run" / "best.pt").is_file()
