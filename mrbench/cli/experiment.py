"""``mrbench experiment``: run a grid of cells from a spec, and report on the results; thin
commands over :mod:`mrbench.experiment.runner` and :mod:`mrbench.experiment.report`."""

from __future__ import annotations

from pathlib import Path

import click

from mrbench.errors import MrbenchError


@click.group()
def experiment() -> None:
    """Experiments over synthetic datasets with planted cues (specs in experiments/)."""


@experiment.command("run")
@click.argument("spec_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder (datasets, masked variants, training runs, cells/); run again to resume.")
@click.option("--shard", default="1/1", show_default=True,
              help="K/N: the K-th of N parts of the cells, balanced by estimated cost (one per process, SLURM "
                   "array task or node; shards may share --out).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(spec_file: Path, out: Path, shard: str, quiet: bool) -> None:
    """Compute the cells of SPEC_FILE that --out does not hold yet (resumable)."""
    from mrbench.experiment.runner import run_experiment
    from mrbench.experiment.spec import load_spec, parse_shard
    from mrbench.io import check_output_dir

    index = parse_shard(shard)
    spec = load_spec(spec_file)
    check_output_dir(out, "--out")
    summary = run_experiment(spec, out, shard=index, progress=not quiet)
    click.echo(f"{out}: {summary.computed} cells computed, {summary.skipped} already done "
               f"(shard {index[0]}/{index[1]}, {summary.seconds / 60:.1f} min)")
    if summary.failed:
        raise MrbenchError(f"{len(summary.failed)} cells failed ({', '.join(summary.failed)}); their tracebacks "
                           f"are in {out / 'errors'}; run again to retry them")


@experiment.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Report folder (e.g. leaderboards/experiments/NAME): tables (md, csv), cells.parquet, plots, README.md.")
def report(run_dir: Path, out: Path) -> None:
    """Tables, plots and the findings page of the cells in RUN_DIR (a run folder, or committed results)."""
    from mrbench.experiment.report import build_report
    from mrbench.io import check_output_dir, refuse_overwrite

    check_output_dir(out, "--out")
    refuse_overwrite(out, [run_dir], "--out", read_whole=[run_dir / "cells"])
    written = build_report(run_dir, out)
    click.echo(f"wrote {len(written)} files to {out}")
