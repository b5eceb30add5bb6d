"""``mrbench synth``: write a controlled spurious-correlation dataset (docs/synth.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from mrbench.cli.options import SEED, FiniteFloat, size_limit_option
from mrbench.errors import MrbenchError

_UNIT = FiniteFloat(0.0, 1.0)
#: sizes that --annotations fixes: refused there when given on the command line
_SIZES = ("n_train", "n_val", "n_ood", "n_clips")


class _Knob(click.Option):
    """An option whose default is :class:`~mrbench.data.synth.SynthConfig`'s field of the same
    name (the one source of the defaults), read when needed so that the CLI imports fast."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, show_default=True, **kwargs)  # type: ignore[arg-type]

    def get_default(self, ctx: click.Context, call: bool = True) -> object:
        from mrbench.data.synth import SynthConfig

        return getattr(SynthConfig, self.name or "")


def knob(*decls: str, **kwargs: object) -> Callable:
    """``click.option`` for a generator knob (default and its display from SynthConfig)."""
    return click.option(*decls, cls=_Knob, **kwargs)  # type: ignore[arg-type]


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory to write (must be empty or absent; see --force).")
@knob("--n-train", type=click.IntRange(min=0), help="Train queries.")
@knob("--n-val", type=click.IntRange(min=0), help="Val queries.")
@knob("--n-ood", type=click.IntRange(min=0), help="Queries in each of val_ood and test_ood.")
@knob("--concepts", type=int, help="Number of concepts K.")
@knob("--places", type=int, help="Number of places (scenes).")
@knob("--dims", help="Feature dims: 'default' (256/128, text 128), 'qvh' (2304/512, text 512) or "
                     "'A,B[,C]' (slowfast, clip[, text]).")
@knob("--clip-len", type=FiniteFloat(0, min_open=True), help="Clip length (s).")
@knob("--n-clips", type=click.IntRange(min=1),
      help="Clips per video (not with --annotations: durations come from the file).")
@knob("--content", type=FiniteFloat(0), help="Strength of the moment's content vector (the cues have strength 1).")
@knob("--rho-scene", type=_UNIT, help="P(video place = the concept's place) in train/val.")
@knob("--rho-flank", type=_UNIT, help="P(the concept's prelude/aftermath flank the moment) in train/val.")
@knob("--flank-width", type=click.IntRange(min=0), help="Flank width in clips.")
@knob("--flank-off", type=click.Choice(["decoy", "swap", "none"]),
      help="Unplanted flanks: a decoy pair away from the moment, another concept's flanks around it, or none.")
@knob("--rho-position", type=_UNIT,
      help="P(the moment starts in the skewed prior's band) in train/val (0 = uniform).")
@knob("--distractors", type=click.IntRange(min=0), help="Events of other concepts per video, away from the moment.")
@knob("--seed", type=SEED, help="Random seed (same seed, same bytes).")
@click.option("--annotations", "annotation_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Reuse a real annotation file's queries, videos and windows (repeatable; "
                   "each file becomes one split).")
@click.option("--split", default=None,
              help="Split name of a single --annotations file [default: train/val/test from its "
                   "file name, else its stem].")
@knob("--name", help="Dataset name in dataset.json.")
@click.option("--force", is_flag=True, help="Replace an existing synthetic dataset at --out.")
@click.option("--resume", is_flag=True,
              help="Finish an interrupted run at --out (same options; the result equals an uninterrupted run's).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@size_limit_option
@click.pass_context
def synth(ctx: click.Context, out: Path, annotation_files: tuple[Path, ...], force: bool, resume: bool, quiet: bool,
          **knobs: object) -> None:
    """Write a dataset whose spurious cues (scene, flank, position) are planted with known strengths.

    Splits: train and val carry the cues with the given strengths; val_ood and test_ood have every
    cue decorrelated. truth.parquet records, per query, the concept and where each cue was planted.
    """
    from click.core import ParameterSource

    from mrbench.data.dataset import DatasetDir, is_dataset_dir
    from mrbench.data.synth import SynthConfig, generate

    if force and resume:
        raise click.UsageError("--force and --resume exclude each other")
    given = [k for k in _SIZES if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE]
    if annotation_files and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise MrbenchError(f"{flags} cannot be combined with --annotations (the files fix the queries)")
    config = SynthConfig(**knobs, annotations=tuple(str(p) for p in annotation_files))  # type: ignore[arg-type]
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
