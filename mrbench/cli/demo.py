"""``mrbench demo``: the whole pipeline on a fresh machine, in one command, on the CPU; a thin
command over :func:`mrbench.pipeline.run_demo`.

Stages (each reports its progress):

1. ``synth``: the default synthetic dataset (train / val / val_ood / test_ood);
2. ``mask``: masked-target variants of the evaluated splits (noise, 3 s margin, seed 0);
3. ``baselines``: the blind baselines, fitted on the training split;
4. ``train``: the tiny presets of the chosen models (``NAME`` or ``NAME+tddetr``), one run per seed;
5. ``predict``: every run on every evaluated split and on its masked variant;
6. ``leaderboard``: scores everything and writes the leaderboards; the final table is printed.

Layout of ``--out`` (a temporary directory, removed at the end, without it)::

    data/  masked/<split>/  runs/<model>-seed<k>/  submissions/  leaderboards/

``submissions/`` has the entry layout of the repository's ``submissions/`` (see
docs/leaderboard.md), so committing a demo run is copying it.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import click

from mrbench.cli.options import parse_seeds
from mrbench.errors import MrbenchError
from mrbench.io import check_output_dir, folder_lock
from mrbench.pipeline import DemoSettings, ModelSpec, run_demo

#: Training epochs of the demo's runs: what fits the 10-minute budget on 2 CPU cores.
DEMO_EPOCHS = 5


def final_table(groups: list) -> str:  # noqa: ANN001 (Group, imported lazily)
    """A compact text table per leaderboard: entry, R1@0.7, mAP, spurious mAP, ratio."""
    from mrbench.leaderboard.render import fmt_cell
    from mrbench.leaderboard.table import sorted_rows
    from mrbench.scoring import keys as K

    cols = [("R1@0.7", K.mr_r1(0.7)), ("mAP", K.MR_MAP), ("HL mAP", K.hl_map("VeryGood")),
            ("Sp R1@0.7", K.spurious("R1@0.7")), ("Sp mAP", K.SPURIOUS_MAP), ("Ratio", K.RATIO_MAP)]
    blocks = []
    for group in groups:
        rows = sorted_rows(group)
        cells = [["Entry", "Seeds", *(c for c, _ in cols)]]
        for row in rows:
            cells.append([row.meta["name"], str(len(row.meta["seeds"])),
                          *(fmt_cell(row.stats.get(key)) for _, key in cols)])
        widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
        lines = [f"{group.dataset.name} / {group.split}"]
        for n, r in enumerate(cells):
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)



@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep everything here (default: a temporary directory, removed at the end).")
@click.option("--seeds", default="0", show_default=True, callback=parse_seeds,
              help="Training seeds of the reference models (comma-separated).")
@click.option("--models", default="qd_detr,tddetr", show_default=True,
              help="Reference models to train, comma-separated ('none': baselines only).")
@click.option("--queries", type=click.IntRange(1, 1_000_000), default=None,
              help="Training queries of the synthetic dataset (default: the generator's default).")
@click.option("--epochs", type=click.IntRange(1, 100_000), default=DEMO_EPOCHS, show_default=True,
              help="Training epochs per run (the tiny preset's 30 take far longer than the demo's 10 minutes).")
@click.option("--set", "train_sets", multiple=True, help="Training override key=value (repeatable), e.g. train.lr=5e-4.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted demo in --out (same options): keep its dataset, masked variants "
                   "and training runs.")
def demo(out: Path | None, seeds: list[int], models: str, queries: int | None, epochs: int,
         train_sets: tuple[str, ...], resume: bool) -> None:
    """Make the default synthetic dataset and its masked variants, train the tiny QD-DETR and
    TD-DETR presets on the CPU, predict, score, and build a leaderboard; print the table."""
    if resume and out is None:
        raise click.UsageError("--resume needs --out (the directory of the interrupted demo)")
    names = [m.strip() for m in models.split(",") if m.strip() and m.strip() != "none"]
    try:
        specs = [ModelSpec.parse(name) for name in names]
    except MrbenchError as exc:
        raise click.BadParameter(str(exc), param_hint="--models") from None
    overrides: dict[str, object] = {}
    if queries is not None:
        overrides = {"n_train": queries, "n_val": max(queries // 4, 8), "n_ood": max(queries // 4, 8)}
    with contextlib.ExitStack() as stack:
        if out is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mrbench-demo-")))
        else:
            work = check_output_dir(out, "--out")
            stack.enter_context(folder_lock(work))  # one demo per folder (its stages lock their own)
            work.mkdir(parents=True, exist_ok=True)
        settings = DemoSettings(seeds=seeds, models=specs, synth_overrides=overrides,
                                train_sets=[f"train.epochs={epochs}", *train_sets], resume=resume)
        result = run_demo(work, settings, echo=lambda line: click.echo(line, err=True))
        click.echo(final_table(result.groups))
        click.echo("")
        click.echo("stage times: " + ", ".join(f"{t.split(':')[0]} {s:.1f} s" for t, s in result.stages))
        click.echo(f"total: {result.elapsed:.1f} s")
        if out is not None:
            click.echo(f"leaderboards: {work / 'leaderboards'} (README.md, HTML, CSV, Parquet, PNG)")
