"""An experiment spec (``experiments/*.yaml``): the grid of cells the runner computes.

A spec names synthetic datasets (``SynthConfig`` settings over a shared base), the masked
variants made of each dataset's evaluation split, how models are trained, the query-blind
baselines, and a grid: blocks of datasets x models x seeds. Every (dataset, model, seed) of a
block is one *cell*; every (dataset, baseline) is one too. Cells are independent, and
``--shard K/N`` takes every N-th of them in a fixed order. Example::

    name: validity-cpu
    title: Does the spurious metric measure what it names?
    synth: {n_train: 2000, n_val: 500, n_ood: 500}
    train: {preset: tiny, set: [train.epochs=5, "train.eval_split="]}
    evaluate: {split: val, ood_split: val_ood}
    mask_sets:
      main: [noise@3]
      sweep: [noise@0, noise@3, noise@6, zero@3, recontext@3]
    datasets:
      - {name: nocue, synth: {rho_scene: 0, rho_flank: 0, rho_position: 0}, masks: sweep}
    baselines: [position_prior, uniform_random, mask_detector]
    grid:
      - {datasets: [nocue], models: [qd_detr, tddetr], seeds: [0, 1]}

Errors name the spec file and the field, and exit 2 from the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mrbench.errors import MrbenchError
from mrbench.io import read_text
from mrbench.masking.strategies import STRATEGIES

#: query-blind baselines a spec may list: the registry's, and the mask detector
MASK_DETECTOR = "mask_detector"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MASK = re.compile(r"([a-z]+)@(\d+(?:\.\d+)?)")
_TOP_KEYS = {"name", "title", "description", "synth", "train", "evaluate", "mask_sets", "datasets", "baselines",
             "grid"}


@dataclass(frozen=True)
class MaskSpec:
    """One masked variant of the evaluation split: a strategy and a margin in seconds."""

    strategy: str
    margin: float

    @property
    def name(self) -> str:
        """``noise-m3``, ``zero-m0``, ``noise-m1.5`` (folder and column name)."""
        return f"{self.strategy}-m{self.margin:g}"

    @classmethod
    def parse(cls, text: str, where: str) -> MaskSpec:
        match = _MASK.fullmatch(str(text).strip())
        if not match or match.group(1) not in STRATEGIES:
            raise MrbenchError(f"{where}: a mask is STRATEGY@MARGIN with a strategy of {', '.join(STRATEGIES)} "
                               f"(e.g. noise@3), got {text!r}")
        return cls(match.group(1), float(match.group(2)))


@dataclass(frozen=True)
class DatasetSpec:
    """One synthetic dataset of the experiment and the masked variants evaluated on it."""

    name: str
    synth: Mapping[str, Any]
    masks: tuple[MaskSpec, ...]
    label: str = ""


@dataclass(frozen=True)
class Cell:
    """One unit of work: a model trained with one seed on one dataset, or one baseline on it."""

    dataset: str
    kind: str  # "model" or "baseline"
    name: str  # the model spec (``cg_detr+tddetr``) or the baseline's name
    seed: int = 0

    @property
    def slug(self) -> str:
        """The cell's folder inside ``cells/<dataset>/``."""
        if self.kind == "baseline":
            return f"baseline-{self.name.replace('_', '-')}"
        return f"{'-w-'.join(self.name.split('+')).replace('_', '-')}-seed{self.seed}"

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.slug}"


@dataclass(frozen=True)
class ExperimentSpec:
    """A parsed, validated spec (module docstring)."""

    name: str
    title: str
    description: str
    datasets: tuple[DatasetSpec, ...]
    preset: str
    train_sets: tuple[str, ...]
    split: str
    ood_split: str
    baselines: tuple[str, ...]
    cells: tuple[Cell, ...]
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    def dataset(self, name: str) -> DatasetSpec:
        for item in self.datasets:
            if item.name == name:
                return item
        raise KeyError(name)

    def shard(self, index: int, count: int, cost: Callable[[Cell], float] | None = None) -> list[Cell]:
        """Shard ``index`` of ``count`` (1-based), in the spec's order. With ``cost``, cells are dealt
        longest first to the shard with the least total so far (ties: the lowest shard), which
        balances the shards' time; without it, every ``count``-th cell from ``index - 1``. Either
        way the assignment depends on the spec alone, so separate processes agree on it."""
        if cost is None:
            return [cell for i, cell in enumerate(self.cells) if i % count == index - 1]
        loads = [0.0] * count
        owner: dict[Cell, int] = {}
        for cell in sorted(self.cells, key=lambda c: (-cost(c), self.cells.index(c))):
            shard = min(range(count), key=lambda k: (loads[k], k))
            owner[cell] = shard
            loads[shard] += cost(cell)
        return [cell for cell in self.cells if owner[cell] == index - 1]


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> ``(K, N)`` with ``1 <= K <= N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise MrbenchError(f"--shard must be K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MrbenchError(f"{where} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise MrbenchError(f"{where} must be a non-empty list")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise MrbenchError(f"{where} must be a name of lower-case letters, digits, '_', '.', '-', got {value!r}")
    return value


def _synth_settings(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check ``values`` against :class:`SynthConfig` (known keys, valid values)."""
    from mrbench.data.synth import SynthConfig

    known = {f.name for f in fields(SynthConfig)} - {"annotations", "split"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise MrbenchError(f"{where}: unknown synth setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}).validate()
    except (TypeError, ValueError) as exc:
        raise MrbenchError(f"{where}: {exc}") from None
    except MrbenchError as exc:
        raise MrbenchError(f"{where}: {exc}") from None
    return dict(values)


def _seeds(value: Any, where: str) -> list[int]:
    seeds = _list(value, where)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise MrbenchError(f"{where} must be distinct integers >= 0, got {seeds!r}")
    return seeds


def _models(value: Any, where: str) -> list[str]:
    from mrbench.pipeline import ModelSpec

    keys = []
    for text in _list(value, where):
        if not isinstance(text, str):
            raise MrbenchError(f"{where}: a model is NAME or NAME+STRATEGY, got {text!r}")
        try:
            keys.append(ModelSpec.parse(text).key)
        except MrbenchError as exc:
            raise MrbenchError(f"{where}: {exc}") from None
    if len(set(keys)) != len(keys):
        raise MrbenchError(f"{where}: a model is listed twice")
    return keys


def parse_spec(data: Mapping[str, Any], source: str = "<spec>", *, check_models: bool = True) -> ExperimentSpec:
    """Validate a loaded spec; ``check_models`` resolves every model (needs torch)."""
    from mrbench.baselines import REGISTRY

    spec = _mapping(data, source)
    unknown = sorted(set(spec) - _TOP_KEYS)
    if unknown:
        raise MrbenchError(f"{source}: unknown field(s) {', '.join(unknown)}")
    name = _name(spec.get("name"), f"{source}: name")
    base = _synth_settings(_mapping(spec.get("synth"), f"{source}: synth"), f"{source}: synth")
    mask_sets: dict[str, tuple[MaskSpec, ...]] = {}
    for set_name, items in _mapping(spec.get("mask_sets"), f"{source}: mask_sets").items():
        where = f"{source}: mask_sets.{set_name}"
        masks = tuple(MaskSpec.parse(item, where) for item in _list(items, where))
        if len({m.name for m in masks}) != len(masks):
            raise MrbenchError(f"{where}: a mask is listed twice")
        mask_sets[_name(set_name, where)] = masks
    datasets: list[DatasetSpec] = []
    for index, item in enumerate(_list(spec.get("datasets"), f"{source}: datasets")):
        where = f"{source}: datasets[{index}]"
        item = _mapping(item, where)
        extra = sorted(set(item) - {"name", "synth", "masks", "label"})
        if extra:
            raise MrbenchError(f"{where}: unknown field(s) {', '.join(extra)}")
        dname = _name(item.get("name"), f"{where}.name")
        if any(d.name == dname for d in datasets):
            raise MrbenchError(f"{where}.name: dataset {dname!r} is listed twice")
        if item.get("masks") not in mask_sets:
            raise MrbenchError(f"{where}.masks must name one of mask_sets ({', '.join(mask_sets) or 'none defined'}), "
                               f"got {item.get('masks')!r}")
        synth = _synth_settings({**base, **_mapping(item.get("synth"), f"{where}.synth")}, f"{where}.synth")
        datasets.append(DatasetSpec(dname, synth, mask_sets[item["masks"]], str(item.get("label") or dname)))
    train = _mapping(spec.get("train"), f"{source}: train")
    preset = str(train.get("preset", "tiny"))
    sets = train.get("set", [])
    if not isinstance(sets, list) or not all(isinstance(s, str) and "=" in s for s in sets):
        raise MrbenchError(f"{source}: train.set must be a list of KEY=VALUE strings")
    if any(s.split("=", 1)[0].strip() == "train.seed" for s in sets):
        raise MrbenchError(f"{source}: train.set must not set train.seed (the grid's seeds do)")
    evaluate = _mapping(spec.get("evaluate"), f"{source}: evaluate")
    split, ood_split = str(evaluate.get("split", "val")), str(evaluate.get("ood_split", "val_ood"))
    baselines = [str(b) for b in spec.get("baselines") or []]
    for b in baselines:
        if b != MASK_DETECTOR and b not in REGISTRY:
            raise MrbenchError(f"{source}: baselines: unknown baseline {b!r} (known: "
                               f"{', '.join([*REGISTRY, MASK_DETECTOR])})")
    cells: list[Cell] = [Cell(d.name, "baseline", b) for d in datasets for b in baselines]
    names = {d.name for d in datasets}
    for index, block in enumerate(_list(spec.get("grid"), f"{source}: grid")):
        where = f"{source}: grid[{index}]"
        block = _mapping(block, where)
        extra = sorted(set(block) - {"datasets", "models", "seeds"})
        if extra:
            raise MrbenchError(f"{where}: unknown field(s) {', '.join(extra)}")
        block_sets = _list(block.get("datasets"), f"{where}.datasets")
        missing = [d for d in block_sets if d not in names]
        if missing:
            raise MrbenchError(f"{where}.datasets: unknown dataset(s) {', '.join(map(str, missing))}")
        models = _models(block.get("models"), f"{where}.models") if check_models else [
            str(m) for m in _list(block.get("models"), f"{where}.models")]
        for seed in _seeds(block.get("seeds", [0]), f"{where}.seeds"):
            for dname in block_sets:
                for model in models:
                    cell = Cell(dname, "model", model, seed)
                    if cell not in cells:
                        cells.append(cell)
    return ExperimentSpec(name=name, title=str(spec.get("title") or name), description=str(spec.get("description") or ""),
                          datasets=tuple(datasets), preset=preset, train_sets=tuple(sets), split=split,
                          ood_split=ood_split, baselines=tuple(baselines), cells=tuple(cells), source=source,
                          raw=spec)


def load_spec(path: str | os.PathLike[str], *, check_models: bool = True) -> ExperimentSpec:
    """Read and validate the YAML spec at ``path``."""
    import yaml

    text = read_text(path, what="experiment spec")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise MrbenchError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return parse_spec(data, str(path), check_models=check_models)


def cell_settings(spec: ExperimentSpec, cell: Cell) -> dict[str, Any]:
    """Everything a cell's result depends on (recorded in ``cell.json``; compared on resume)."""
    dataset = spec.dataset(cell.dataset)
    settings: dict[str, Any] = {
        "dataset": cell.dataset, "synth": dict(sorted(dataset.synth.items())), "kind": cell.kind, "name": cell.name,
        "seed": cell.seed, "split": spec.split, "ood_split": spec.ood_split,
        "masks": [m.name for m in dataset.masks],
    }
    if cell.kind == "model":
        settings.update({"preset": spec.preset, "train_sets": list(spec.train_sets)})
    return settings

