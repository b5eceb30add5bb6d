"""``mrbench score``: score a prediction file or bundle against its ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from mrbench.cli.options import SEED, size_limit_option


@click.command("score")
@click.argument("pred", metavar="PRED")
@click.option("--gt", "gt", metavar="FILE", help="Ground-truth annotation JSONL.")
@click.option("--dataset", metavar="NAME", help="Catalog dataset (with --split), e.g. qvhighlights.")
@click.option("--split", metavar="SPLIT", help="Split of --dataset, e.g. val.")
@click.option("--root", metavar="DIR", help="Where --dataset's files live (default: the data home).")
@click.option("--masked", multiple=True, metavar="PRED",
              help="Predictions on a masked-target variant; repeat once per mask seed.")
@click.option("--variant", multiple=True, metavar="DIR",
              help="Masked variant directory (manifest.json, or seed*/ variants): masked regions for the "
                   "center-in-mask diagnostic, and the ground truth when no --gt/--dataset is given.")
@click.option("--json", "json_out", metavar="OUT", help="Write the full report as JSON ('-': stdout, no table).")
@click.option("--ci", is_flag=True, help="Add bootstrap 95% confidence intervals over queries.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--n-boot", type=click.IntRange(1, 1_000_000), default=1000, show_default=True,
              help="Bootstrap replicates.")
@click.option("--allow-missing", is_flag=True, help="Score queries without a prediction as zero instead of failing.")
@size_limit_option
def score(
    pred: str,
    gt: str | None,
    dataset: str | None,
    split: str | None,
    root: str | None,
    masked: tuple[str, ...],
    variant: tuple[str, ...],
    json_out: str | None,
    ci: bool,
    seed: int,
    n_boot: int,
    allow_missing: bool,
) -> None:
    """Score PRED (community JSONL, or a submission bundle) against the ground truth.

    Prints the headline metrics first (as papers report them), then the reference evaluator's
    per-bucket and highlight numbers, mrbench's additions and, with --masked, the spurious block.

    \b
    mrbench score preds.jsonl --dataset qvhighlights --split val --json metrics.json
    mrbench score preds.jsonl --gt val.jsonl --masked m0.jsonl --masked m1.jsonl --variant masked/
    """
    from mrbench.io import atomic_write_text, check_output_dir, refuse_overwrite
    from mrbench.scoring import score as run_score

    if json_out and json_out != "-":
        folders = [*variant, root, *(p for p in (pred,) if Path(p).is_dir())]  # a bundle folder too
        refuse_overwrite(json_out, [pred, gt, *masked], "--json", read_whole=folders)
        check_output_dir(Path(json_out).parent, "--json")
    report = run_score(
        pred,
        gt,
        dataset=dataset,
        split=split,
        root=root,
        masked=masked,
        variant=list(variant) or None,
        allow_missing=allow_missing,
        ci=ci,
        seed=seed,
        n_boot=n_boot,
    )
    if json_out == "-":
        click.echo(report.to_json())
        return
    click.echo(report.format_table())
    if json_out:
        atomic_write_text(json_out, report.to_json() + "\n")
        click.echo(f"report written to {json_out}")
