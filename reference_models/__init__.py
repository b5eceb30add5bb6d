"""Reference models of mrbench on one shared core (``reference_models.core``).

Registry::

    create_model("qd_detr", preset="qvhighlights", t2v_layers=4)   # -> nn.Module
    list_models()                                                 # ["qd_detr", "tddetr", ...]
    resolve_config("tddetr", "charades_sta", {"train.lr": 1e-4})  # -> Config
    load_release_checkpoint("qd_detr_official.ckpt")             # -> (nn.Module, Config)

A model registers a builder ``Config -> nn.Module`` with :func:`register_model`, with its metadata
(:class:`ModelInfo`: display name, paper, year) and optionally per-preset overrides applied on top
of the base presets of :mod:`reference_models.core.config`; :func:`model_info` reads the metadata.
A temporal module for the text-to-video layers (``model.temporal`` in the config, e.g. TD-DETR's
``"tdem"``) registers a factory with :func:`register_temporal`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mrbench.errors import MrbenchError
from reference_models.core.config import PRESETS, Config, ModelConfig, apply_overrides

#: modules imported to register their models; absent optional ones are skipped
MODEL_MODULES = ("reference_models.qd_detr", "reference_models.tddetr", "reference_models.moment_detr",
                 "reference_models.cg_detr", "reference_models.bam_detr")


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


_MODELS: dict[str, ModelEntry] = {}
#: name -> factory(model_config, n_layers) -> one module per text-to-video layer
_TEMPORAL: dict[str, Callable[[ModelConfig, int], list[Any]]] = {}
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


def model_info(name: str) -> ModelInfo:
    """The registered metadata (display name, paper, year) of model ``name``."""
    _load()
    if name not in _MODELS:
        raise MrbenchError(f"unknown model {name!r} (models: {', '.join(sorted(_MODELS))})")
    return _MODELS[name].info


def list_presets() -> list[str]:
    return sorted(PRESETS)


def temporal_modules(name: str, config: ModelConfig, layers: int) -> list[Any]:
    """One temporal module per text-to-video layer from the factory registered as ``name``."""
    _load()
    if name not in _TEMPORAL:
        raise MrbenchError(f"unknown temporal module {name!r} (registered: {', '.join(sorted(_TEMPORAL)) or 'none'})")
    return _TEMPORAL[name](config, layers)


def resolve_config(name: str, preset: str = "qvhighlights", overrides: dict[str, Any] | None = None) -> Config:
    """The model's config: base preset, then the model's preset changes, then ``overrides``."""
    _load()
    if name not in _MODELS:
        raise MrbenchError(f"unknown model {name!r} (models: {', '.join(sorted(_MODELS))})")
    if preset not in PRESETS:
        raise MrbenchError(f"unknown preset {preset!r} (presets: {', '.join(sorted(PRESETS))})")
    config = Config(model_name=name, preset=preset)
    config = apply_overrides(config, PRESETS[preset])
    config = apply_overrides(config, _MODELS[name].presets.get(preset, {}))
    return apply_overrides(config, overrides or {})


def build_model(config: Config) -> Any:
    """The ``nn.Module`` for a resolved config (``config.model_name``)."""
    _load()
    if config.model_name not in _MODELS:
        raise MrbenchError(f"unknown model {config.model_name!r} (models: {', '.join(sorted(_MODELS))})")
    model = _MODELS[config.model_name].builder(config)
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


def create_model(name: str, preset: str = "qvhighlights", **overrides: Any) -> Any:
    """Build model ``name`` with ``preset`` and overrides (``field=value`` or ``**{"section.field": v}``)."""
    return build_model(resolve_config(name, preset, overrides))


__all__ = [
    "Config",
    "ModelInfo",
    "build_model",
    "create_model",
    "list_models",
    "list_presets",
    "load_release_checkpoint",
    "model_info",
    "register_model",
    "register_temporal",
    "resolve_config",
    "temporal_modules",
]
