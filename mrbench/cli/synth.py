"""``mrbench synth``: write a controlled spurious-correlation dataset (docs/synth.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mrbench.cli.options import SEED, FiniteFloat, size_limit_option
from mrbench.errors import MrbenchError

_UNIT = FiniteFloat(0.0, 1.0)


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory to write (must be empty or absent; see --force).")
@click.option("--n-train", type=click.IntRange(min=0), default=None, help="Train queries [default: 2000].")
@click.option("--n-val", type=click.IntRange(min=0), default=None, help="Val queries [default: 500].")
@click.option("--n-ood", type=click.IntRange(min=0), default=None,
              help="Queries in each of val_ood and test_ood [default: 500].")
@click.option("--concepts", type=int, default=24, show_default=True, help="Number of concepts K.")
@click.option("--places", type=int, default=12, show_default=True, help="Number of places (scenes).")
@click.option("--dims", default="default", show_default=True,
              help="Feature dims: 'default' (256/128, text 128), 'qvh' (2304/512, text 512) or "
                   "'A,B[,C]' (slowfast, clip[, text]).")
@click.option("--clip-len", type=FiniteFloat(0, min_open=True), default=2.0, show_default=True,
              help="Clip length (s).")
@click.option("--n-clips", type=click.IntRange(min=1), default=None,
              help="Clips per video [default: 75] (not with --annotations: durations come from the file).")
@click.option("--content", type=FiniteFloat(0), default=0.5, show_default=True,
              help="Strength of the moment's content vector (the cues have strength 1).")
@click.option("--rho-scene", type=_UNIT, default=0.9, show_default=True,
              help="P(video place = the concept's place) in train/val.")
@click.option("--rho-flank", type=_UNIT, default=0.9, show_default=True,
              help="P(the concept's prelude/aftermath flank the moment) in train/val.")
@click.option("--flank-width", type=click.IntRange(min=0), default=4, show_default=True,
              help="Flank width in clips.")
@click.option("--flank-off", type=click.Choice(["decoy", "swap", "none"]), default="decoy",
              show_default=True, help="Unplanted flanks: a decoy pair away from the moment, "
                                      "another concept's flanks around it, or none.")
@click.option("--rho-position", type=_UNIT, default=0.5, show_default=True,
              help="P(the moment starts in the skewed prior's band) in train/val (0 = uniform).")
@click.option("--distractors", type=click.IntRange(min=0), default=1, show_default=True,
              help="Events of other concepts per video, away from the moment.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same seed, same bytes).")
@click.option("--annotations", "annotation_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Reuse a real annotation file's queries, videos and windows (repeatable; "
                   "each file becomes one split).")
@click.option("--split", default=None,
              help="Split name of a single --annotations file [default: train/val/test from its "
                   "file name, else its stem].")
@click.option("--name", default="synthetic", show_default=True, help="Dataset name in dataset.json.")
@click.option("--force", is_flag=True, help="Replace an existing synthetic dataset at --out.")
@click.option("--resume", is_flag=True,
              help="Finish an interrupted run at --out (same options; the result equals an uninterrupted run's).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@size_limit_option
def synth(out: Path, n_train: int | None, n_val: int | None, n_ood: int | None, concepts: int,
          places: int, dims: str, clip_len: float, n_clips: int | None, content: float, rho_scene: float,
          rho_flank: float, flank_width: int, flank_off: str, rho_position: float, distractors: int,
          seed: int, annotation_files: tuple[Path, ...], split: str | None, name: str,
          force: bool, resume: bool, quiet: bool) -> None:
    """Write a dataset whose spurious cues (scene, flank, position) are planted with known strengths.

    Splits: train and val carry the cues with the given strengths; val_ood and test_ood have every
    cue decorrelated. truth.parquet records, per query, the concept and where each cue was planted.
    """
    from mrbench.data.dataset import DatasetDir, is_dataset_dir
    from mrbench.data.synth import SynthConfig, generate

    if force and resume:
        raise click.UsageError("--force and --resume exclude each other")
    sizes = {"n_train": n_train, "n_val": n_val, "n_ood": n_ood, "n_clips": n_clips}
    given = {k: v for k, v in sizes.items() if v is not None}
    if annotation_files and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise MrbenchError(f"{flags} cannot be combined with --annotations (the files fix the queries)")
    config = SynthConfig(
        **given, concepts=concepts, places=places, dims=dims, clip_len=clip_len,
        content=content, rho_scene=rho_scene, rho_flank=rho_flank, rho_position=rho_position,
        flank_width=flank_width, flank_off=flank_off, distractors=distractors, seed=seed,
        annotations=tuple(str(p) for p in annotation_files), split=split, name=name,
    )
    start = time.perf_counter()
    was_complete = is_dataset_dir(out)
    generate(config, out, progress=not quiet, force=force, resume=resume)
    if resume and was_complete:
        click.echo(f"{out} is complete already (same settings): nothing to do")
        return
    info = DatasetDir(out).info()
    counts = ", ".join(f"{s} {info.extra['queries'][s]}" for s in info.splits)
    click.echo(f"wrote {out}: {counts} queries, {info.extra['videos']} videos, "
               f"features {info.video_features} in {time.perf_counter() - start:.1f} s")
