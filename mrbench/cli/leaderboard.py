"""``mrbench submission`` (check entries, write baseline entries) and ``mrbench leaderboard``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mrbench.cli.options import parse_seeds, size_limit_option
from mrbench.scoring.keys import COLUMN_PROFILES


@click.group()
def submission() -> None:
    """Leaderboard entries: check them, write the blind baselines."""


@submission.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@size_limit_option
def check(path: Path) -> None:
    """Validate PATH: one entry (a directory with submission.yaml) or a whole submissions
    directory. Checks the yaml schema, the files, the dataset, and scores every prediction file
    against the ground truth."""
    from mrbench.leaderboard.runs import check_path

    for sub in check_path(path):
        masked = "standard + masked" if sub.masked_predictions else "standard only"
        click.echo(f"ok  {sub.entry_id}: {sub.name} — {sub.dataset}/{sub.split}, "
                   f"{len(sub.seeds)} seed(s), {masked}")


@submission.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Dataset directory (e.g. from `mrbench synth`) holding the training and evaluated splits.")
@click.option("--dataset", required=True, help="Dataset name the entries refer to (under SUBMISSIONS/_datasets).")
@click.option("--split", default="val", show_default=True, help="Evaluated split.")
@click.option("--masked", "masked_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Masked variant of the split (from `mrbench mask`): also write masked predictions.")
@click.option("--seeds", default="0,1,2", show_default=True, callback=parse_seeds,
              help="Seeds of the uniform random baseline.")
@click.option("--submissions", "root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("submissions"), show_default=True)
@click.option("--export-gt/--no-export-gt", default=True, show_default=True,
              help="Also copy the split's ground truth (and the variant's manifest) into SUBMISSIONS/_datasets.")
@click.option("--title", default=None, help="Dataset title for the leaderboard (with --export-gt).")
@click.option("--columns", type=click.Choice(COLUMN_PROFILES), default=COLUMN_PROFILES[0],
              show_default=True, help="Column profile of the dataset (with --export-gt).")
@click.option("--date", default=None, help="Date to record (YYYY-MM-DD; default today).")
def baselines(data_dir: Path, dataset: str, split: str, masked_dir: Path | None, seeds: list[int], root: Path,
              export_gt: bool, title: str | None, columns: str, date: str | None) -> None:
    """Write the blind-baseline entries (every registered one: position prior, length prior, whole
    video, uniform random), fitted on the training split of DATA only."""
    from mrbench.io import folder_lock, refuse_overwrite, safe_name

    safe_name(dataset, "--dataset")
    safe_name(split, "--split")
    refuse_overwrite(root, [data_dir, masked_dir], "--submissions")
    with folder_lock(root):
        _write_baselines(data_dir, dataset, split, masked_dir, seeds, root, export_gt, title, columns, date)


def _write_baselines(data_dir: Path, dataset: str, split: str, masked_dir: Path | None, seeds: list[int], root: Path,
                     export_gt: bool, title: str | None, columns: str, date: str | None) -> None:
    """``submission baselines`` while holding the lock of the submissions folder."""
    from mrbench.leaderboard.entries import export_dataset, make_baseline_entries

    if export_gt:
        target = export_dataset(root, dataset, data_dir, [split],
                                variants={"masked": masked_dir} if masked_dir else None,
                                title=title or dataset, columns=columns,
                                provenance={"data": str(data_dir), "masked": str(masked_dir) if masked_dir else None})
        click.echo(f"ground truth -> {target}")
    for entry in make_baseline_entries(root, data_dir=data_dir, dataset=dataset, split=split,
                                       masked_dir=masked_dir, seeds=seeds, date=date):
        click.echo(f"wrote {entry}")


@click.group()
def leaderboard() -> None:
    """Leaderboards built from scored submissions."""


@leaderboard.command()
@click.option("--submissions", "root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("submissions"), show_default=True, help="Submissions directory.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboards"),
              show_default=True, help="Output directory.")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Score cache file (default OUT/.cache/scores.json).")
@click.option("--no-cache", is_flag=True, help="Rescore every run and re-render.")
@size_limit_option
def build(root: Path, out: Path, cache: Path | None, no_cache: bool) -> None:
    """Score every entry (cached by content hash), aggregate seeds (mean ± std) and write
    Markdown, CSV, Parquet, HTML and PNG plots per dataset and split."""
    from mrbench.leaderboard.build import build as run_build

    start = time.perf_counter()
    result = run_build(root, out, cache=cache, use_cache=not no_cache, progress=True)
    seconds = time.perf_counter() - start
    entries = sum(len(g.rows) for g in result.groups)
    state = "rendered" if result.rendered else "up to date"
    click.echo(f"{entries} entries in {len(result.groups)} leaderboard(s): {result.scored} run(s) scored, "
               f"{result.cached} cached; outputs {state} in {out} ({seconds:.2f} s)")


@leaderboard.command()
@click.option("--entries", "root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("submissions/_real"), show_default=True, help="Real-data entries directory.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboards/real"),
              show_default=True, help="Output directory.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data home: one folder per catalog dataset (default $MRBENCH_DATA or ~/.cache/mrbench/data).")
@click.option("--predictions", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of published prediction files (default $MRBENCH_PREDICTIONS or "
                   "~/.cache/mrbench/predictions).")
@click.option("--fetch", is_flag=True, help="Download absent prediction files from their declared URLs.")
@size_limit_option
def real(root: Path, out: Path, data: Path | None, predictions: Path | None, fetch: bool) -> None:
    """Score the real-data entries (blind baselines generated from the catalog splits, published
    prediction files checked by sha256) against the downloaded annotations and write one
    leaderboard per dataset and split. Nothing derived from the annotations is written but the
    tables."""
    from mrbench.leaderboard.real import build_real

    start = time.perf_counter()
    result = build_real(root, out, data=data, predictions=predictions, fetch=fetch)
    entries = sum(len(g.rows) for g in result.groups)
    click.echo(f"{entries} entries in {len(result.groups)} leaderboard(s) written to {out} "
               f"({time.perf_counter() - start:.2f} s)")
