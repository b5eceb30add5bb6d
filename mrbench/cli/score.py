"""``mrbench score``: score a prediction file, a submission entry or a bundle against its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mrbench.cli.options import SEED, FiniteFloat, size_limit_option


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
@click.option("--clip-len", type=FiniteFloat(0, min_open=True), default=None, metavar="SECONDS",
              help="Clip length of the ground truth's saliency labels (default: the dataset's or the variant's; "
                   "2 s, QVHighlights', for --gt FILE alone).")
@click.option("--allow-missing", is_flag=True, help="Score queries without a prediction as zero instead of failing.")
@click.option("--entry-seed", type=SEED, default=None,
              help="With an entry folder: the training seed whose predictions to score (needed when it has several).")
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
    clip_len: float | None,
    allow_missing: bool,
    entry_seed: int | None,
) -> None:
    """Score PRED (community JSONL, a submission entry folder, or a legacy bundle) against the
    ground truth.

    An entry folder (submission.yaml and its prediction files, as in submissions/) is scored as
    `mrbench leaderboard build` scores it: against its dataset store, with its masked predictions.
    Prints the headline metrics first (as papers report them), then the reference evaluator's
    per-bucket and highlight numbers, mrbench's additions and, with --masked, the spurious block.

    \b
    mrbench score preds.jsonl --dataset qvhighlights --split val --json metrics.json
    mrbench score preds.jsonl --gt val.jsonl --masked m0.jsonl --masked m1.jsonl --variant masked/
    mrbench score submissions/qd-detr-tiny-val --entry-seed 0
    """
    from mrbench.io import atomic_write_text, check_output_dir, refuse_overwrite

    options: dict[str, Any] = {"allow_missing": allow_missing, "ci": ci, "seed": seed, "n_boot": n_boot}
    folders = [*variant, root, *(p for p in (pred,) if Path(p).is_dir())]  # an entry or bundle folder too
    entry = Path(pred).is_dir() and _is_entry(Path(pred))
    if entry:
        if gt or dataset or split or root or masked or variant or clip_len is not None:
            raise click.UsageError("an entry folder brings its ground truth, masked predictions and variant: "
                                   "drop --gt, --dataset, --split, --root, --masked, --variant and --clip-len")
        from mrbench.leaderboard.runs import load_entry, score_entry_run

        sub, ref = load_entry(pred)
        if entry_seed is None and len(sub.seeds) > 1:
            raise click.UsageError(f"the entry has seeds {', '.join(map(str, sub.seeds))}: choose one with --entry-seed")
        run = sub.seeds[0] if entry_seed is None else entry_seed
        if run not in sub.seeds:
            raise click.UsageError(f"--entry-seed {run}: the entry has seeds {', '.join(map(str, sub.seeds))}")
        folders.append(ref.root)
        inputs = [pred]
    else:
        if entry_seed is not None:
            raise click.UsageError("--entry-seed applies to an entry folder (one holding submission.yaml)")
        inputs = [pred, gt, *masked]
    if json_out and json_out != "-":
        refuse_overwrite(json_out, inputs, "--json", read_whole=folders)
        check_output_dir(Path(json_out).parent, "--json")
    if entry:
        report = score_entry_run(sub, ref, run, **options)
    else:
        from mrbench.scoring import score as run_score

        report = run_score(pred, gt, dataset=dataset, split=split, root=root, masked=masked,
                           variant=list(variant) or None, clip_len=clip_len, **options)
    if json_out == "-":
        click.echo(report.to_json())
        return
    click.echo(report.format_table())
    if json_out:
        atomic_write_text(json_out, report.to_json() + "\n")
        click.echo(f"report written to {json_out}")


def _is_entry(folder: Path) -> bool:
    """Whether a folder is a submission entry (it holds ``submission.yaml``)."""
    from mrbench.leaderboard.submission import SUBMISSION_FILE

    return (folder / SUBMISSION_FILE).is_file()
