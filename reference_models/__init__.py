"""Reference models of mrbench on one shared core (``reference_models.core``).

Registry::

    create_model("qd_detr", preset="qvhighlights", t2v_layers=4)   # -> nn.Module
    list_models()                                                 # ["qd_detr", "tddetr", ...]
    resolve_config("tddetr", "charades_sta", {"train.lr": 1e-4})  # -> Config
    resolve_config("cg_detr", "tiny", strategies=("tddetr",))     # CG-DETR w/ TD-DETR
    display_name("cg_detr", ["tddetr"])                           # "CG-DETR w/ TD-DETR"
    load_release_checkpoint("qd_detr_official.ckpt")             # -> (nn.Module, Config)

A model registers a builder ``Config -> nn.Module`` with :func:`register_model`, with its metadata
(:class:`ModelInfo`: display name, paper, year) and optionally per-preset overrides applied on top
of the base presets of :mod:`reference_models.core.config`; :func:`model_info` reads the metadata.
A temporal module for the text-to-video layers (``model.temporal`` in the config, e.g. TD-DETR's
``"tdem"``) registers a factory with :func:`register_temporal`.

A strategy (:func:`register_strategy`; ``mrbench train-reference NAME --with STRATEGY``) is a
method's ideas that any model can take: settings per preset, applied after the model's own, and
optionally a training batch augmentation. A strategy is named after the registered model that is
its ``base`` model with it (``tddetr`` = QD-DETR w/ TD-DETR), so ``qd_detr`` with ``tddetr``
resolves to the model ``tddetr``; a run's config records its strategies (``config.strategies``)
and :func:`display_name` names the run ("CG-DETR w/ TD-DETR").
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mrbench.errors import MrbenchError
from reference_models.core.config import PRESETS, Config, ModelConfig, apply_overrides

#: modules imported to register their models; absent optional ones are skipped
MODEL_MODULES = ("reference_models.qd_detr", "reference_models.tddetr", "reference_models.moment_detr",
                 "reference_models.cg_detr", "reference_models.bam_detr", "reference_models.snag")


@dataclass(frozen=True)
class ModelInfo:
    """What a table says about a model: its display name, paper link and publication year."""

    title: str
    paper: str
    year: int


@dataclass
class ModelEntry:
    builder: Callable[[Config], Any]
    info: ModelInfo
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Strategy:
    """A method's ideas for any model (module docstring): ``base`` is the model that, with the
    strategy, is the registered model of the strategy's name; ``presets`` maps a preset to the
    settings the strategy brings; ``augment(dataset, config)`` gives the training batch
    augmentation (``None``: none)."""

    base: str
    presets: dict[str, dict[str, Any]]
    augment: Callable[[Any, Config], Callable[[dict], dict]] | None = None


_MODELS: dict[str, ModelEntry] = {}
#: name -> factory(model_config, n_layers) -> one module per text-to-video layer
_TEMPORAL: dict[str, Callable[[ModelConfig, int], list[Any]]] = {}
_STRATEGIES: dict[str, Strategy] = {}
#: every module a temporal factory made, to check that a built model holds the ones it asked for
_TEMPORAL_MADE: weakref.WeakSet = weakref.WeakSet()
_loaded = False


def register_model(name: str, info: ModelInfo, presets: dict[str, dict[str, Any]] | None = None) -> Callable:
    """Decorator registering ``builder(config) -> nn.Module`` under ``name`` with its metadata;
    ``presets`` maps a preset name to overrides applied after the base preset."""

    def wrap(builder: Callable[[Config], Any]) -> Callable[[Config], Any]:
        _MODELS[name] = ModelEntry(builder, info, dict(presets or {}))
        return builder

    return wrap


def register_temporal(name: str) -> Callable:
    """Decorator registering ``factory(model_config, n_layers) -> [module per T2V layer]``."""

    def wrap(factory: Callable[[ModelConfig, int], list[Any]]) -> Callable[[ModelConfig, int], list[Any]]:
        _TEMPORAL[name] = factory
        return factory

    return wrap


def register_strategy(name: str, strategy: Strategy) -> Strategy:
    """Register ``strategy`` as ``name``, the name of the registered model that is
    ``strategy.base`` with it (e.g. ``tddetr``)."""
    _STRATEGIES[name] = strategy
    return strategy


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in MODEL_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    _loaded = True


def list_models() -> list[str]:
    """Names of the registered models."""
    _load()
    return sorted(_MODELS)


def _entry(name: str) -> ModelEntry:
    """The registry entry of model ``name`` (one-line error when unknown)."""
    _load()
    if name not in _MODELS:
        raise MrbenchError(f"unknown model {name!r} (models: {', '.join(sorted(_MODELS))})")
    return _MODELS[name]


def model_info(name: str) -> ModelInfo:
    """The registered metadata (display name, paper, year) of model ``name``."""
    return _entry(name).info


def list_presets() -> list[str]:
    return sorted(PRESETS)


def list_strategies() -> list[str]:
    """Names of the registered strategies (``--with``)."""
    _load()
    return sorted(_STRATEGIES)


def temporal_modules(name: str, config: ModelConfig, layers: int) -> list[Any]:
    """One temporal module per text-to-video layer from the factory registered as ``name``."""
    _load()
    if name not in _TEMPORAL:
        raise MrbenchError(f"unknown temporal module {name!r} (registered: {', '.join(sorted(_TEMPORAL)) or 'none'})")
    modules = _TEMPORAL[name](config, layers)
    _TEMPORAL_MADE.update(modules)
    return modules


def with_strategies(name: str, strategies: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """``(model, strategies)`` that ``name`` with ``strategies`` resolves to: a strategy's base
    model with it becomes the strategy's model (``qd_detr`` + ``tddetr`` -> ``tddetr``), and a
    model named like a strategy carries that strategy (``tddetr`` -> ``("tddetr",)``). A single
    name may be given as a string."""
    _entry(name)
    strategies = (strategies,) if isinstance(strategies, str) else tuple(strategies)
    for strategy in strategies:
        if strategy not in _STRATEGIES:
            raise MrbenchError(f"unknown strategy {strategy!r} (strategies: {', '.join(sorted(_STRATEGIES)) or 'none'})")
    if len(set(strategies)) < len(strategies):
        raise MrbenchError(f"a strategy is given twice: {', '.join(strategies)}")
    name = next((s for s in strategies if _STRATEGIES[s].base == name), name)
    carried = (name,) if name in _STRATEGIES else ()
    return name, carried + tuple(s for s in strategies if s not in carried)


def resolve_config(
    name: str, preset: str = "qvhighlights", overrides: dict[str, Any] | None = None, strategies: Sequence[str] = (),
) -> Config:
    """The config of model ``name`` with ``strategies`` (:func:`with_strategies`): base preset,
    the model's preset changes, each strategy's settings for the preset, then ``overrides``."""
    name, strategies = with_strategies(name, strategies)
    if preset not in PRESETS:
        raise MrbenchError(f"unknown preset {preset!r} (presets: {', '.join(sorted(PRESETS))})")
    config = Config(model_name=name, preset=preset, strategies=list(strategies))
    config = apply_overrides(config, PRESETS[preset])
    config = apply_overrides(config, _MODELS[name].presets.get(preset, {}))
    for strategy in strategies:
        config = apply_overrides(config, _STRATEGIES[strategy].presets.get(preset, {}))
    return apply_overrides(config, overrides or {})


def display_name(name: str, strategies: Sequence[str] = ()) -> str:
    """What a table calls model ``name`` with ``strategies``: "CG-DETR w/ TD-DETR", "TD-DETR"
    (``tddetr``, or ``qd_detr`` with ``tddetr``), "QD-DETR"."""
    name, strategies = with_strategies(name, strategies)
    extra = [model_info(s).title for s in strategies if s != name]
    return model_info(name).title + (f" w/ {' + '.join(extra)}" if extra else "")


def strategy_augment(dataset: Any, config: Config) -> Callable[[dict], dict] | None:
    """The training batch augmentation that ``config.strategies`` bring (``None``: none)."""
    _load()
    makers = [_STRATEGIES[s].augment for s in config.strategies if _STRATEGIES[s].augment is not None]
    if len(makers) > 1:
        raise MrbenchError(f"strategies {', '.join(config.strategies)} each bring a batch augmentation; "
                           "one run takes one")
    return makers[0](dataset, config) if makers else None


def build_model(config: Config) -> Any:
    """The ``nn.Module`` for a resolved config (``config.model_name``). A model that puts none of
    the modules of ``model.temporal`` into its layers is refused."""
    model = _entry(config.model_name).builder(config)
    temporal = config.model.temporal
    if temporal and not any(module in _TEMPORAL_MADE for module in model.modules()):
        wanted = f" (strategies: {', '.join(config.strategies)})" if config.strategies else ""
        raise MrbenchError(f"model {config.model_name!r} has no layer that takes the temporal module {temporal!r} "
                           f"(model.temporal){wanted}")
    model.config = config
    return model


def load_release_checkpoint(
    path: str | os.PathLike[str], device: str = "cpu", overrides: dict[str, Any] | None = None,
) -> tuple[Any, Config]:
    """``(model, config)`` of an official release checkpoint (QD-DETR or TD-DETR ``.ckpt``:
    ``{"model": state_dict, "opt": args, ...}``), in eval mode on ``device``; ``overrides``
    change the config built from the official arguments. See :mod:`reference_models.core.release`."""
    _load()
    from reference_models.core.release import load_release_checkpoint as load

    return load(path, device, overrides)


def create_model(name: str, preset: str = "qvhighlights", strategies: Sequence[str] = (), **overrides: Any) -> Any:
    """Build model ``name`` with ``preset``, ``strategies`` and overrides (``field=value`` or
    ``**{"section.field": v}``)."""
    return build_model(resolve_config(name, preset, overrides, strategies))


__all__ = [
    "Config",
    "ModelInfo",
    "Strategy",
    "build_model",
    "create_model",
    "display_name",
    "list_models",
    "list_presets",
    "list_strategies",
    "load_release_checkpoint",
    "model_info",
    "register_model",
    "register_strategy",
    "register_temporal",
    "resolve_config",
    "strategy_augment",
    "temporal_modules",
    "with_strategies",
]
