"""The library pipeline: synth -> mask -> baselines -> train -> predict -> entries -> leaderboard.

Each stage is a function over folders, so that ``mrbench demo`` (a thin command over
:func:`run_demo`) and the experiment runner chain the same steps. Torch is imported only by the
training and prediction stages.

Layout of a pipeline folder::

    data/  masked/<split>/  runs/<model>-seed<k>/  submissions/  leaderboards/

``submissions/`` has the entry layout of the repository's ``submissions/`` (docs/leaderboard.md).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrbench.errors import MrbenchError
from mrbench.io import folder_lock

#: Video features the reference models read from a synthetic dataset.
FEATURES = ("slowfast_features", "clip_features", "clip_text_features")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model and the strategies it is trained with (``"cg_detr+tddetr"``)."""

    name: str
    strategies: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """``NAME`` or ``NAME+STRATEGY[+...]``; the name must be registered."""
        try:
            from reference_models import list_models, with_strategies

            list_models()
        except (ImportError, OSError) as exc:
            raise MrbenchError(f"the reference models need torch ({exc}): pip install 'mrbench[models]'") from None
        name, *strategies = [part.strip() for part in text.split("+")]
        if name not in list_models():
            raise MrbenchError(f"unknown model {name!r} (models: {', '.join(list_models())})")
        # unknown or repeated strategies are refused here; qd_detr+tddetr is the model tddetr
        model, carried = with_strategies(name, strategies)
        return cls(model, tuple(s for s in carried if s != model))

    @property
    def key(self) -> str:
        """The spec as written: ``cg_detr`` or ``cg_detr+tddetr``."""
        return "+".join((self.name, *self.strategies))

    @property
    def slug(self) -> str:
        """File-name form: ``cg-detr``, ``cg-detr-w-tddetr``."""
        return "-w-".join((self.name, *self.strategies)).replace("_", "-")

    def title(self) -> str:
        """Display name: ``CG-DETR``, ``CG-DETR w/ TD-DETR``."""
        from reference_models import display_name

        return display_name(self.name, self.strategies)

    def recorded_strategies(self) -> tuple[str, ...]:
        """The strategies a run records (``tddetr`` carries its own: QD-DETR w/ TD-DETR)."""
        from reference_models import with_strategies

        return with_strategies(self.name, self.strategies)[1]

    def paper(self) -> str:
        from reference_models import model_info

        return model_info(self.name).paper


class Stages:
    """Reports ``[i/n] stage`` headers and the seconds each stage took through ``echo``."""

    def __init__(self, total: int, echo: Callable[[str], None]) -> None:
        self.total = total
        self.echo = echo
        self.index = 0
        self.start = time.perf_counter()
        self.times: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.index += 1
        self.echo(f"[{self.index}/{self.total}] {title}")
        begin = time.perf_counter()
        yield
        seconds = time.perf_counter() - begin
        self.times.append((title, seconds))
        self.echo(f"      done in {seconds:.1f} s")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- stages -----------------------------------------------------------------------------------------
def make_dataset(data: Path, synth_overrides: dict[str, Any] | None = None, *, resume: bool = False) -> None:
    """The synthetic dataset of ``SynthConfig(**synth_overrides)`` in ``data`` (replaced unless
    ``resume``, which completes an interrupted one with the same settings)."""
    from mrbench.data.synth import SynthConfig, generate

    generate(SynthConfig(**(synth_overrides or {})), data, progress=True, force=not resume, resume=resume)


def make_masked(data: Path, split: str, target: Path, *, strategy: str = "noise", margin: float = 3.0,
                seeds: Sequence[int] = (0,), resume: bool = False) -> None:
    """The masked-target variant of ``split`` in ``target``: an earlier result is replaced, or
    completed when ``resume`` (same settings required; :func:`mrbench.io.staged_output`)."""
    from mrbench.masking.build import build as build_mask
    from mrbench.masking.build import source_from_dir

    build_mask(source_from_dir(data, split), target, strategy=strategy, margin=margin, seeds=list(seeds),
               progress=True, resume=resume, force=not resume)


def train_run(spec: ModelSpec, data: Path, run: Path, *, preset: str, overrides: Sequence[str] = (),
              resume: bool = False) -> Path:
    """Train ``spec`` on ``data`` into ``run`` (continued from ``run/last.pt`` when ``resume``
    finds it, else from scratch); returns the checkpoint selected on the validation split."""
    from reference_models import resolve_config
    from reference_models.core.config import parse_overrides
    from reference_models.train import train

    config = resolve_config(spec.name, preset, parse_overrides(list(overrides)), strategies=spec.strategies)
    continued = resume and (run / "last.pt").is_file()
    if run.exists() and not continued:
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    with folder_lock(run):
        train(config, data, run, resume=continued)
    checkpoint = run / "best.pt"
    if not checkpoint.is_file():
        raise MrbenchError(f"{run} has no best.pt: the training run did not finish")
    return checkpoint


def predict_run(checkpoint: Path, data: Path, split: str, out: Path, *, variant: Path | None = None) -> list[dict]:
    """Predictions of ``checkpoint`` on ``split`` (or on the masked ``variant`` of it), written to
    ``out`` and returned as prediction dicts."""
    from mrbench.scoring.predictions import read_records
    from reference_models.predict import predict

    for _ in predict(checkpoint, data, split, out, variant=variant):
        pass
    return [obj for _, obj in read_records(out)[1]]


def selected_on_training_data(run: Path) -> bool:
    """Whether the run's best checkpoint was selected on a split overlapping its training data
    (the trainer's ``split_overlap`` record, in the last line of ``RUN/log.jsonl``)."""
    log = run / "log.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    return bool(lines) and bool(json.loads(lines[-1]).get("best", {}).get("split_overlap"))


# --- the demo ---------------------------------------------------------------------------------------
@dataclass
class DemoSettings:
    """What :func:`run_demo` makes: the dataset, the evaluated splits, models, seeds, training."""

    seeds: list[int] = field(default_factory=lambda: [0])
    models: list[ModelSpec] = field(default_factory=list)
    synth_overrides: dict[str, Any] = field(default_factory=dict)
    train_sets: list[str] = field(default_factory=list)
    date: str | None = None
    resume: bool = False
    dataset: str = "synth-default"
    title: str = "mrbench synthetic dataset (default settings)"
    splits: tuple[str, ...] = ("val", "test_ood")
    selection_split: str = "val"
    preset: str = "tiny"
    baseline_seeds: tuple[int, ...] = (0, 1, 2)


@dataclass
class DemoResult:
    groups: list[Any]
    stages: list[tuple[str, float]]
    elapsed: float


def variant_name(split: str) -> str:
    """Name of a split's masked variant in the ground-truth store."""
    return f"masked-{_slug(split)}"


def _slug(text: str) -> str:
    return text.replace("_", "-")


def _setting(sets: Sequence[str], key: str) -> str:
    """The last ``key=value`` override of ``key`` in ``sets`` ('preset default' when absent)."""
    values = [item.split("=", 1)[1] for item in sets if item.split("=", 1)[0].strip() == key]
    return values[-1] if values else "preset default"


def run_demo(out: Path, settings: DemoSettings, echo: Callable[[str], None] = _stderr) -> DemoResult:
    """Run every stage into ``out``; returns the leaderboard groups and the stage times.

    ``settings.resume`` keeps what an earlier, interrupted run in ``out`` finished or began: the
    dataset and masked variants are completed (same settings required), training runs continue
    from their last checkpoint; the fast stages (baselines, predictions, leaderboard) are redone.
    """
    from mrbench.leaderboard.build import build
    from mrbench.leaderboard.entries import export_dataset, make_baseline_entries, write_entry

    s = settings
    date = s.date or _dt.date.today().isoformat()
    data, submissions, runs = out / "data", out / "submissions", out / "runs"
    stages = Stages(6, echo)

    with stages.stage("synth: the default synthetic dataset"):
        make_dataset(data, s.synth_overrides, resume=s.resume)

    masked = {split: out / "masked" / split for split in s.splits}
    with stages.stage(f"mask: masked-target variants of {', '.join(s.splits)} (noise, margin 3 s, seed 0)"):
        for split, target in masked.items():
            make_masked(data, split, target, resume=s.resume)

    with stages.stage("baselines: blind baselines fitted on the training split"):
        if submissions.exists():
            shutil.rmtree(submissions)
        provenance = {
            "generator": "mrbench.data.synth (mrbench synth)",
            "config": dict(s.synth_overrides),
            "masked": "mrbench mask --strategy noise --margin 3 --seeds 0",
            "note": "ground truth generated by the commands above; features are not stored",
        }
        export_dataset(submissions, s.dataset, data, s.splits, variants={variant_name(x): masked[x] for x in s.splits},
                       title=s.title, columns="qvhighlights", provenance=provenance)
        for split in s.splits:
            make_baseline_entries(submissions, data_dir=data, dataset=s.dataset, split=split, masked_dir=masked[split],
                                  masked_variant=variant_name(split), seeds=list(s.baseline_seeds), date=date,
                                  suffix=_slug(split))

    def run_dir(spec: ModelSpec, seed: int) -> Path:
        return runs / f"{spec.key}-seed{seed}"

    checkpoints: dict[tuple[ModelSpec, int], Path] = {}
    names = ", ".join(spec.key for spec in s.models)
    with stages.stage(f"train: {names} ({s.preset} preset, CPU), seeds {', '.join(map(str, s.seeds))}"):
        for spec in s.models:
            for seed in s.seeds:
                echo(f"      {spec.key} seed {seed}")
                checkpoints[(spec, seed)] = train_run(spec, data, run_dir(spec, seed), preset=s.preset,
                                                      overrides=[f"train.seed={seed}", *s.train_sets],
                                                      resume=s.resume)

    with stages.stage("predict: standard and masked predictions of every run"):
        for spec in s.models:
            for split in s.splits:
                standard, on_masked = {}, {}
                for seed in s.seeds:
                    run = run_dir(spec, seed)
                    standard[seed] = predict_run(checkpoints[(spec, seed)], data, split, run / f"preds_{split}.jsonl")
                    on_masked[seed] = predict_run(checkpoints[(spec, seed)], data, split,
                                                  run / f"preds_{split}_masked.jsonl", variant=masked[split])
                selected = split == s.selection_split
                strategies = list(spec.recorded_strategies())
                meta = {
                    "name": f"{spec.title()} ({s.preset} preset)", "model": spec.name, "kind": "model",
                    "paper": spec.paper(), "code": None, "features": list(FEATURES), "dataset": s.dataset,
                    "split": split, "date": date, "submitted_by": "mrbench demo", "test_answers_used": selected,
                    "self_scored": False, "masked_variant": variant_name(split),
                    **({"strategies": strategies} if strategies else {}),
                    **({"selected_on_training_data": True}
                       if any(selected_on_training_data(run_dir(spec, seed)) for seed in s.seeds) else {}),
                    "notes": (f"mrbench reference implementation, preset {s.preset} "
                              f"({_setting(s.train_sets, 'train.epochs')} epochs), trained on 'train' on the CPU; "
                              f"checkpoint selected on '{s.selection_split}'"
                              + (" (this split, hence flag T)." if selected else ".")),
                }
                write_entry(submissions, f"{spec.slug}-{s.preset}-{_slug(split)}", meta, standard, on_masked)

    with stages.stage("leaderboard: score every entry and render"):
        result = build(submissions, out / "leaderboards", progress=True)
    return DemoResult(result.groups, stages.times, stages.elapsed)
