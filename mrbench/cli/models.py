"""``mrbench train-reference`` and ``mrbench predict``: thin layers over ``reference_models``
(torch is imported inside the commands only)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mrbench.errors import MrbenchError
from mrbench.io import check_output_dir, folder_lock, refuse_overwrite


def _need_torch() -> None:
    """A one-line error when torch is absent or cannot be loaded (e.g. a broken CUDA library)."""
    try:
        import torch  # noqa: F401
    except (ImportError, OSError) as exc:
        raise MrbenchError(f"the reference models need torch ({exc}): pip install 'mrbench[models]'") from None


@click.command("train-reference")
@click.argument("model")
@click.option("--data", "data", required=True, type=click.Path(exists=True, file_okay=False), help="dataset directory")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="run directory")
@click.option("--preset", default="qvhighlights", show_default=True, help="qvhighlights, charades_sta or tiny")
@click.option("--with", "strategies", multiple=True, metavar="STRATEGY",
              help="train with a method's strategies, e.g. tddetr (TDEM in the text-to-video layers, VSDC)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="config override, e.g. train.epochs=50")
@click.option("--resume", is_flag=True, help="continue from RUN/last.pt")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
def train_reference(model: str, data: str, out: str, preset: str, strategies: tuple[str, ...],
                    overrides: tuple[str, ...], resume: bool, device: str | None) -> None:
    """Train reference MODEL (qd_detr, tddetr, ...) on dataset directory DATA into RUN.

    --with tddetr trains MODEL w/ TD-DETR (qd_detr --with tddetr is tddetr). The resolved config,
    strategies included, is written to RUN/config.json, a checkpoint every epoch to RUN/last.pt,
    the best one on the validation split to RUN/best.pt, one log line per epoch to RUN/log.jsonl;
    the last line printed names the run. Multi-GPU: torchrun --nproc_per_node N -m
    reference_models.train MODEL DATA RUN [...].
    """
    _need_torch()
    from reference_models import display_name, resolve_config
    from reference_models.core.config import parse_overrides
    from reference_models.train import train

    config = resolve_config(model, preset, parse_overrides(list(overrides)), strategies)
    check_output_dir(out, "--out")
    refuse_overwrite(out, [], "--out", read_whole=[data])
    if resume and not (Path(out) / "last.pt").is_file():
        raise MrbenchError(f"--resume: {Path(out) / 'last.pt'} does not exist")
    with folder_lock(out):
        best = train(config, data, out, device=device, resume=resume)
    click.echo(json.dumps({"run": out, "name": display_name(config.model_name, config.strategies),
                           "model": config.model_name, "strategies": config.strategies, "best": best}))


@click.command("predict")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False), help="RUN/best.pt")
@click.option("--data", "data", required=True, type=click.Path(exists=True, file_okay=False), help="dataset directory")
@click.option("--split", required=True, help="split to predict, e.g. val")
@click.option("--variant", default=None, type=click.Path(exists=True, file_okay=False),
              help="masked-target variant directory (mrbench mask); predicts its queries instead")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="predictions JSONL")
@click.option("--device", default=None, help="cpu, cuda or cuda:N")
@click.option("--batch-size", default=None, type=click.IntRange(min=1), help="default: the run's eval batch size")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="config override, e.g. model.t2v_head_major_mask=true")
def predict(checkpoint: str, data: str, split: str, variant: str | None, out: str, device: str | None,
            batch_size: int | None, overrides: tuple[str, ...]) -> None:
    """Write community-format predictions (top-10 windows, per-clip saliency) for SPLIT.

    CHECKPOINT is a run's best.pt/last.pt or a release checkpoint of Moment-DETR, QD-DETR,
    TD-DETR, CG-DETR or BAM-DETR (the official .ckpt: {"model": state_dict, "opt": args}); its
    config is built from the official arguments (docs/models.md, "Release checkpoints"). The
    run's name (e.g. "CG-DETR w/ TD-DETR") goes to stderr, the files written to stdout.
    """
    refuse_overwrite(out, [checkpoint], "--out", read_whole=[data, variant])
    check_output_dir(Path(out).parent, "--out")
    _need_torch()
    from reference_models import display_name
    from reference_models.core.config import Config, parse_overrides
    from reference_models.predict import predict as run

    def name(config: Config) -> None:
        click.echo(f"{display_name(config.model_name, config.strategies)}: {checkpoint}", err=True)

    for path in run(checkpoint, data, split, out, variant=variant, device=device, batch_size=batch_size,
                    overrides=parse_overrides(list(overrides)), on_config=name):
        click.echo(str(path))
