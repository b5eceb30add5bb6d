"""``mrbench demo``: the whole pipeline on a fresh machine, in one command, on the CPU.

Stages (each reports its progress):

1. ``synth``: the default synthetic dataset (train / val / val_ood / test_ood);
2. ``mask``: masked-target variants of the evaluated splits (noise, 3 s margin, seed 0);
3. ``baselines``: the blind baselines, fitted on the training split;
4. ``train``: the tiny QD-DETR and TD-DETR presets, one run per seed;
5. ``predict``: every run on every evaluated split and on its masked variant;
6. ``leaderboard``: scores everything and writes the leaderboards; the final table is printed.

Layout of ``--out`` (a temporary directory, removed at the end, without it)::

    data/  masked/<split>/  runs/<model>-seed<k>/  submissions/  leaderboards/

``submissions/`` has the entry layout of the repository's ``submissions/`` (see
docs/leaderboard.md), so committing a demo run is copying it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click

from mrbench.cli.options import parse_seeds
from mrbench.io import check_output_dir, folder_lock

DATASET = "synth-default"
TITLE = "mrbench synthetic dataset (default settings)"
SPLITS = ("val", "test_ood")
MODELS = {
    "qd_detr": ("QD-DETR (tiny preset)", "https://arxiv.org/abs/2303.13874"),
    "tddetr": ("TD-DETR (tiny preset)", "https://arxiv.org/abs/2501.07305"),
    "bam_detr": ("BAM-DETR (tiny preset)", "https://arxiv.org/abs/2312.00083"),
    "moment_detr": ("Moment-DETR (tiny preset)", "https://arxiv.org/abs/2107.09609"),
    "cg_detr": ("CG-DETR (tiny preset)", "https://arxiv.org/abs/2311.08835"),
}
FEATURES = ["slowfast_features", "clip_features", "clip_text_features"]
SELECTION_SPLIT = "val"
#: Training epochs of the demo's runs: what fits the 10-minute budget on 2 CPU cores.
DEMO_EPOCHS = 5


class Stages:
    """Prints ``[i/n] stage`` headers and the seconds each stage took."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.index = 0
        self.start = time.perf_counter()
        self.times: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.index += 1
        click.echo(f"[{self.index}/{self.total}] {title}", err=True)
        begin = time.perf_counter()
        yield
        seconds = time.perf_counter() - begin
        self.times.append((title, seconds))
        click.echo(f"      done in {seconds:.1f} s", err=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _run_cli(args: list[str]) -> None:
    """Run an mrbench command in this process (errors propagate as MrbenchError)."""
    from mrbench.cli import cli

    cli.main(args=args, prog_name="mrbench", standalone_mode=False)


def _checkpoint(run: Path) -> Path:
    """The checkpoint the trainer selected on the validation split (``RUN/best.pt``)."""
    from mrbench.errors import MrbenchError

    path = run / "best.pt"
    if not path.is_file():
        raise MrbenchError(f"{run} has no best.pt: the training run did not finish")
    return path


def _selected_on_training_data(run: Path) -> bool:
    """Whether the run's best checkpoint was selected on a split overlapping its training data
    (the trainer's ``split_overlap`` record, in every line of ``RUN/log.jsonl``)."""
    lines = (run / "log.jsonl").read_text(encoding="utf-8").splitlines() if (run / "log.jsonl").is_file() else []
    return bool(lines) and bool(json.loads(lines[-1]).get("best", {}).get("split_overlap"))


def run_demo(
    out: Path,
    *,
    seeds: list[int],
    models: list[str],
    synth_overrides: dict[str, object] | None = None,
    train_sets: list[str] | None = None,
    date: str | None = None,
    resume: bool = False,
) -> dict:
    """Run every stage into ``out``; returns the leaderboard groups and the stage times.

    ``resume`` keeps what an earlier, interrupted run in ``out`` finished or began: the dataset
    and masked variants are completed (same settings required), training runs continue from
    their last checkpoint; the fast stages (baselines, predictions, leaderboard) are redone.
    """
    from mrbench.data.synth import SynthConfig, generate
    from mrbench.leaderboard.build import build
    from mrbench.leaderboard.entries import export_dataset, make_baseline_entries, write_entry
    from mrbench.masking.build import PARTIAL_SUFFIX, source_from_dir
    from mrbench.masking.build import build as build_mask
    from mrbench.scoring.predictions import read_records

    date = date or _dt.date.today().isoformat()
    data, submissions, runs = out / "data", out / "submissions", out / "runs"
    stages = Stages(6)

    with stages.stage("synth: the default synthetic dataset"):
        config = SynthConfig(**(synth_overrides or {}))
        generate(config, data, progress=True, force=not resume, resume=resume)

    masked = {split: out / "masked" / split for split in SPLITS}
    with stages.stage(f"mask: masked-target variants of {', '.join(SPLITS)} (noise, margin 3 s, seed 0)"):
        for split, target in masked.items():
            if not resume:
                for stale in (target, target.with_name(target.name + PARTIAL_SUFFIX)):
                    if stale.exists():
                        shutil.rmtree(stale)
            build_mask(source_from_dir(data, split), target, seeds=[0], progress=True, resume=resume)

    with stages.stage("baselines: blind baselines fitted on the training split"):
        if submissions.exists():
            shutil.rmtree(submissions)
        provenance = {
            "generator": "mrbench.data.synth (mrbench synth)",
            "config": {k: v for k, v in (synth_overrides or {}).items()},
            "masked": "mrbench mask --strategy noise --margin 3 --seeds 0",
            "note": "ground truth generated by the commands above; features are not stored",
        }
        export_dataset(submissions, DATASET, data, SPLITS, variants={_variant(s): masked[s] for s in SPLITS},
                       title=TITLE, columns="qvhighlights", provenance=provenance)
        for split in SPLITS:
            make_baseline_entries(submissions, data_dir=data, dataset=DATASET, split=split, masked_dir=masked[split],
                                  masked_variant=_variant(split), seeds=[0, 1, 2], date=date,
                                  suffix=_slug(split))

    checkpoints: dict[tuple[str, int], Path] = {}
    with stages.stage(f"train: {', '.join(models)} (tiny preset, CPU), seeds {', '.join(map(str, seeds))}"):
        for model in models:
            for seed in seeds:
                run = runs / f"{model}-seed{seed}"
                continued = resume and (run / "last.pt").is_file()
                if run.exists() and not continued:
                    shutil.rmtree(run)
                sets = [f"train.seed={seed}", *(train_sets or [])]
                args = ["train-reference", model, "--data", str(data), "--out", str(run), "--preset", "tiny",
                        *(["--resume"] if continued else [])]
                for item in sets:
                    args += ["--set", item]
                click.echo(f"      {model} seed {seed}", err=True)
                _run_cli(args)
                checkpoints[(model, seed)] = _checkpoint(run)

    with stages.stage("predict: standard and masked predictions of every run"):
        for model in models:
            for split in SPLITS:
                standard, on_masked = {}, {}
                for seed in seeds:
                    run = runs / f"{model}-seed{seed}"
                    files = {"standard": run / f"preds_{split}.jsonl", "masked": run / f"preds_{split}_masked.jsonl"}
                    _run_cli(["predict", "--checkpoint", str(checkpoints[(model, seed)]), "--data", str(data),
                              "--split", split, "--out", str(files["standard"])])
                    _run_cli(["predict", "--checkpoint", str(checkpoints[(model, seed)]), "--data", str(data),
                              "--split", split, "--variant", str(masked[split]), "--out", str(files["masked"])])
                    standard[seed] = [obj for _, obj in read_records(files["standard"])[1]]
                    on_masked[seed] = [obj for _, obj in read_records(files["masked"])[1]]
                name, paper = MODELS[model]
                selected = split == SELECTION_SPLIT
                meta = {
                    "name": name, "model": model, "kind": "model", "paper": paper, "code": None,
                    "features": FEATURES, "dataset": DATASET, "split": split, "date": date,
                    "submitted_by": "mrbench demo", "test_answers_used": selected, "self_scored": False,
                    "masked_variant": _variant(split),
                    **({"selected_on_training_data": True}
                       if any(_selected_on_training_data(runs / f"{model}-seed{seed}") for seed in seeds) else {}),
                    "notes": (f"mrbench reference implementation, preset tiny ({_setting(train_sets, 'train.epochs')} "
                              f"epochs), trained on 'train' on the CPU; "
                              f"checkpoint selected on '{SELECTION_SPLIT}'"
                              + (" (this split, hence flag T)." if selected else ".")),
                }
                write_entry(submissions, f"{_slug(model)}-tiny-{_slug(split)}", meta,
                            standard, on_masked)

    with stages.stage("leaderboard: score every entry and render"):
        result = build(submissions, out / "leaderboards", progress=True)
    return {"groups": result.groups, "stages": stages.times, "elapsed": stages.elapsed}


def _setting(sets: list[str] | None, key: str) -> str:
    """The last ``key=value`` override of ``key`` in ``sets`` ('preset default' when absent)."""
    values = [item.split("=", 1)[1] for item in sets or [] if item.split("=", 1)[0].strip() == key]
    return values[-1] if values else "preset default"


def _slug(split: str) -> str:
    return split.replace("_", "-")


def _variant(split: str) -> str:
    """Name of a split's masked variant in the ground-truth store."""
    return f"masked-{_slug(split)}"


def final_table(groups: list) -> str:  # noqa: ANN001 (Group, imported lazily)
    """A compact text table per leaderboard: entry, R1@0.7, mAP, spurious mAP, ratio."""
    from mrbench.leaderboard.render import fmt_cell, sorted_rows

    cols = [("R1@0.7", "MR-full-R1@0.7"), ("mAP", "MR-full-mAP"), ("HL mAP", "HL-min-VeryGood-mAP"),
            ("Sp R1@0.7", "Spurious-R1@0.7"), ("Sp mAP", "Spurious-mAP"), ("Ratio", "Ratio-mAP")]
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
    model_list = [m.strip() for m in models.split(",") if m.strip() and m.strip() != "none"]
    unknown = [m for m in model_list if m not in MODELS]
    if unknown:
        raise click.BadParameter(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}", param_hint="--models")
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
        result = run_demo(work, seeds=seeds, models=model_list, synth_overrides=overrides,
                          train_sets=[f"train.epochs={epochs}", *train_sets], resume=resume)
        click.echo(final_table(result["groups"]))
        click.echo("")
        click.echo("stage times: " + ", ".join(f"{t.split(':')[0]} {s:.1f} s" for t, s in result["stages"]))
        click.echo(f"total: {result['elapsed']:.1f} s")
        if out is not None:
            click.echo(f"leaderboards: {work / 'leaderboards'} (README.md, HTML, CSV, Parquet, PNG)")
