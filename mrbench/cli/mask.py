"""``mrbench mask``: build masked-target variants of a dataset split; ``mrbench mask verify DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from mrbench.cli.options import FiniteFloat, parse_seeds, size_limit_option
from mrbench.masking.strategies import STRATEGIES

_DIR = click.Path(file_okay=False, path_type=Path)



@click.group(invoke_without_command=True)
@click.option("--dataset", help="Catalog dataset (qvhighlights, charades_sta, tacos, activitynet).")
@click.option("--root", type=_DIR, default=None,
              help="With --dataset: directory of its downloaded annotation files (default: data home).")
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A custom annotation JSONL file instead of --dataset (needs --clip-len).")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="An mrbench dataset directory (e.g. `mrbench synth` output) instead of --dataset.")
@click.option("--split", help="Split to mask (with --annotations: default the file's stem).")
@click.option("--features", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Per-file feature root <root>/<type>/<vid>.npz (default with --data: DIR/features).")
@click.option("--clip-len", type=FiniteFloat(0, min_open=True), default=None,
              help="Clip length in seconds (required with --annotations; overrides the dataset's).")
@click.option("--out", type=_DIR, help="Output directory (several seeds: OUT/seed<k>/).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="noise", show_default=True)
@click.option("--margin", type=FiniteFloat(0), default=3.0, show_default=True,
              help="Seconds added on both sides of every ground-truth window.")
@click.option("--seeds", default="0", show_default=True, callback=parse_seeds, help="Comma-separated seeds.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run (same bytes as an uninterrupted one).")
@click.option("--force", is_flag=True,
              help="Start over: discard an interrupted run and replace an existing variant (swapped in when complete).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@size_limit_option
@click.pass_context
def mask(ctx: click.Context, dataset: str | None, root: Path | None, annotations: Path | None,
         data_dir: Path | None, split: str | None, features: Path | None, clip_len: float | None,
         out: Path | None, strategy: str, margin: float, seeds: list[int], workers: int, resume: bool,
         force: bool, quiet: bool) -> None:
    """Mask every query's ground-truth moment (widened by --margin) in every video feature source.

    Each query gets its own masked copy `<vid>__mask_q<qid>`; the annotation file keeps the
    original windows; text features are linked; manifest.json records what was masked.
    Run `mrbench mask verify OUT` to check the result.
    """
    if ctx.invoked_subcommand is not None:
        return
    from mrbench.data.catalog import resolve_split
    from mrbench.masking.build import build

    given = [name for name, value in (("--dataset", dataset), ("--annotations", annotations),
                                      ("--data", data_dir)) if value is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --dataset, --annotations or --data")
    if out is None:
        raise click.UsageError("--out is required")
    if force and resume:
        raise click.UsageError("--force and --resume exclude each other")
    if dataset is not None and (not split or features is None):
        raise click.UsageError("--dataset needs --split and --features")
    if annotations is not None and (clip_len is None or features is None):
        raise click.UsageError("--annotations needs --clip-len and --features")
    if data_dir is not None and not split:
        raise click.UsageError("--data needs --split")
    kind = "catalog" if dataset is not None else "file" if annotations is not None else "folder"
    source = resolve_split(dataset or annotations or data_dir, split, root=root, features=features,
                           clip_len=clip_len, kind=kind)
    results = build(source, out, strategy=strategy, margin=margin, seeds=seeds, workers=workers,
                    resume=resume, force=force, progress=not quiet)
    for result in results:
        resumed = f", {result.resumed} already done" if result.resumed else ""
        click.echo(f"wrote {result.path}: {result.queries} queries, {result.clips_masked} clips masked "
                   f"(strategy {strategy}, seed {result.seed}, margin {margin:g} s, "
                   f"clip {source.clip_len:g} s{resumed})")


@mask.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--features", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Source feature root, if it moved since masking (default: the manifest's).")
@size_limit_option
def verify_command(directory: Path, features: Path | None) -> None:
    """Check a masked variant (or OUT with seed*/ variants): checksums, masked and unmasked clips."""
    from mrbench.masking.verify import verify

    for report in verify(directory, features):
        click.echo(report.summary())
