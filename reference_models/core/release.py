"""Release checkpoints: the ``.ckpt`` files the official repositories publish, loaded onto
mrbench's models.

A release checkpoint is a ``torch.save``d dict ``{"model": state_dict, "opt": args, ...}`` whose
``opt`` is the official argparse namespace (or a dict of it). Each model that can load one
registers a :class:`ReleaseFormat` with :func:`register_release`: how to recognise the release's
``state_dict``, how its arguments become mrbench config overrides, and a key mapping given as
:class:`Rule` s from mrbench's ``state_dict`` keys to the official ones. Loading is strict: every
mrbench key must find its official tensor with the same shape, and every official key must be
used, apart from the format's declared ``unused`` keys (e.g. the release's unused text position
table).

Files are untrusted: they are read with ``torch.load(weights_only=True)`` (``argparse.Namespace``
and numpy's array reconstruction are the only extra types allowed), and an empty, corrupt or
unknown file raises :class:`~mrbench.errors.MrbenchError` with one line.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrbench.errors import MrbenchError
from reference_models.core.config import Config


@dataclass(frozen=True)
class Rule:
    """mrbench keys matching ``pattern`` (full match) come from the official key ``official``
    (a ``re`` template such as ``r"transformer.encoder.layers.\\1.\\2"``, or a function of the
    match). ``reshape``: the official tensor has another shape with the same elements (e.g. a
    ``[1, D]`` embedding table for a ``[D]`` token)."""

    pattern: str
    official: str | Callable[[re.Match[str]], str]
    reshape: bool = False

    def apply(self, key: str) -> str | None:
        match = re.fullmatch(self.pattern, key)
        if match is None:
            return None
        return self.official(match) if callable(self.official) else match.expand(self.official)


@dataclass(frozen=True)
class ReleaseFormat:
    """One official release's checkpoint layout (module docstring).

    ``detect(state_dict_keys, args) -> bool``; ``overrides(args) -> {"section.field": value}``
    (applied on ``preset(args)``); ``rules`` map mrbench keys to official keys (first match
    wins); ``unused`` are regexes of official keys the release stores but never uses.
    ``weights``: the checkpoint entry whose state dict is loaded (SnAG evaluates ``model_ema``);
    ``infer(state_dict) -> {"section.field": value}``: settings read off the tensor shapes, for
    releases whose checkpoints may come without their ``opt`` (SnAG's keep it in a YAML file)."""

    name: str
    model: str
    detect: Callable[[frozenset[str], Mapping[str, Any]], bool]
    overrides: Callable[[Mapping[str, Any]], dict[str, Any]]
    rules: tuple[Rule, ...]
    preset: Callable[[Mapping[str, Any]], str] = lambda args: "qvhighlights"
    unused: tuple[str, ...] = field(default_factory=tuple)
    weights: str = "model"
    infer: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def official_key(self, key: str) -> tuple[str, Rule] | None:
        """The official key an mrbench key is loaded from, and the rule that says so."""
        for rule in self.rules:
            official = rule.apply(key)
            if official is not None:
                return official, rule
        return None

    def is_unused(self, official: str) -> bool:
        return any(re.fullmatch(p, official) for p in self.unused)


_FORMATS: dict[str, ReleaseFormat] = {}


def register_release(fmt: ReleaseFormat) -> ReleaseFormat:
    """Register a release checkpoint format (a model module does this for its release)."""
    _FORMATS[fmt.name] = fmt
    return fmt


def release_formats() -> dict[str, ReleaseFormat]:
    """The registered formats by name (models are imported first)."""
    from reference_models import list_models

    list_models()
    return dict(_FORMATS)


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def _safe_globals() -> list[Any]:
    """Types allowed beyond tensors and containers: the release's ``opt`` namespace and the numpy
    RNG state in mrbench's own ``last.pt``."""
    core = getattr(np, "_core", None) or np.core
    return [argparse.Namespace, core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def error_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), cut to ``limit``."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict stored in a checkpoint file, read with ``weights_only=True``; one-line
    :class:`MrbenchError` for a missing, empty, corrupt or non-dict file."""
    path = Path(path)
    if not path.is_file():
        raise MrbenchError(f"{path}: no such checkpoint")
    data = path.read_bytes()
    if not data:
        raise MrbenchError(f"{path}: empty file, not a checkpoint")
    try:
        with torch.serialization.safe_globals(_safe_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice on legacy files; a failure is reported below
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unpickling/zip failure of an untrusted file
        raise MrbenchError(f"{path}: not a readable checkpoint ({error_line(exc)})") from None
    if not isinstance(state, dict):
        raise MrbenchError(f"{path}: not a checkpoint (holds a {type(state).__name__}, expected a dict)")
    return state


def release_args(opt: Any) -> dict[str, Any]:
    """The official arguments as a dict (from an argparse namespace or a dict)."""
    if isinstance(opt, argparse.Namespace):
        return dict(vars(opt))
    if isinstance(opt, Mapping):
        return dict(opt)
    raise MrbenchError(f"release checkpoint 'opt' is a {type(opt).__name__}, expected an argparse namespace or a dict")


def is_release(state: Mapping[str, Any]) -> bool:
    """A release checkpoint holds ``model`` (a state dict) and ``opt`` (or, as SnAG's, ``model_ema``)
    and no mrbench ``config``."""
    return ("config" not in state and ("opt" in state or "model_ema" in state)
            and isinstance(state.get("model"), Mapping))


def detect_format(state_dict: Mapping[str, Any], args: Mapping[str, Any]) -> ReleaseFormat:
    """The registered format whose ``detect`` accepts this state dict (exactly one must)."""
    keys = frozenset(state_dict)
    found = [f for f in release_formats().values() if f.detect(keys, args)]
    if len(found) != 1:
        names = ", ".join(sorted(release_formats()))
        what = "no" if not found else f"several ({', '.join(f.name for f in found)})"
        raise MrbenchError(f"{what} known release format matches this checkpoint (known: {names})")
    return found[0]


# ----------------------------------------------------------------------------------------------
# mapping
# ----------------------------------------------------------------------------------------------
def mapping_problems(fmt: ReleaseFormat, model_shapes: Mapping[str, tuple[int, ...]],
                     official_shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Everything that keeps a strict load from working: mrbench keys without an official key,
    official keys that are missing or of another shape, official keys left unused."""
    problems, used = [], set()
    for key, shape in model_shapes.items():
        found = fmt.official_key(key)
        if found is None:
            problems.append(f"no rule for {key}")
            continue
        official, rule = found
        if official not in official_shapes:
            problems.append(f"{key} needs {official}, absent")
            continue
        used.add(official)
        other = tuple(official_shapes[official])
        same = other == tuple(shape) or (rule.reshape and int(np.prod(other)) == int(np.prod(shape)))
        if not same:
            problems.append(f"{key} {tuple(shape)} vs {official} {other}")
    left = sorted(k for k in official_shapes if k not in used and not fmt.is_unused(k))
    problems += [f"official key {k} is not used" for k in left]
    return problems


def convert_state_dict(fmt: ReleaseFormat, model: torch.nn.Module, official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official ``state_dict`` under mrbench's keys (strict; raises on any problem)."""
    target = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in official.items() if torch.is_tensor(v)}
    problems = mapping_problems(fmt, {k: tuple(v.shape) for k, v in target.items()}, shapes)
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise MrbenchError(f"{fmt.name} release state dict does not fit: {'; '.join(problems[:3])}{more}")
    out = {}
    for key, value in target.items():
        tensor = official[fmt.official_key(key)[0]]
        out[key] = tensor.reshape(value.shape).to(value.dtype)
    return out


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def release_config(fmt: ReleaseFormat, args: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Config:
    """The mrbench config of a release's arguments (then ``overrides``)."""
    from reference_models import resolve_config

    try:
        settings = fmt.overrides(args)
    except (KeyError, TypeError, ValueError) as exc:
        raise MrbenchError(f"{fmt.name} release arguments are incomplete or invalid ({exc!r})") from None
    return resolve_config(fmt.model, fmt.preset(args), {**settings, **(overrides or {})})


def model_from_release(state: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> tuple[torch.nn.Module, Config]:
    """An mrbench model (eval mode, CPU) with the weights of a release checkpoint dict."""
    from reference_models import build_model

    args = release_args(state["opt"]) if "opt" in state else {}
    fmt = detect_format(state["model"], args)
    weights = state.get(fmt.weights, state["model"])
    if not isinstance(weights, Mapping):
        raise MrbenchError(f"{fmt.name} release checkpoint: {fmt.weights!r} is not a state dict")
    inferred = fmt.infer(weights) if fmt.infer is not None else {}
    config = release_config(fmt, args, {**inferred, **(overrides or {})})
    model = build_model(config)
    model.load_state_dict(convert_state_dict(fmt, model, weights))
    return model.eval(), config


def load_release_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", overrides: Mapping[str, Any] | None = None,
) -> tuple[torch.nn.Module, Config]:
    """``(model, config)`` of a release ``.ckpt`` (``{"model": state_dict, "opt": args, ...}``), on
    ``device`` in eval mode; ``overrides`` (``{"section.field": value}``) change the config, e.g.
    ``{"model.t2v_head_major_mask": True}`` for the release's batch-dependent mask."""
    state = read_checkpoint(path)
    if not is_release(state):
        raise MrbenchError(f"{path}: not a release checkpoint (expected the keys 'model' and 'opt')")
    try:
        model, config = model_from_release(state, overrides)
    except MrbenchError as exc:
        raise MrbenchError(f"{path}: {exc}") from None
    return model.to(device), config


# ----------------------------------------------------------------------------------------------
# shared by the Moment-DETR family (QD-DETR, TD-DETR, ...): argument names and key layouts
# ----------------------------------------------------------------------------------------------
def detr_preset(args: Mapping[str, Any]) -> str:
    """mrbench preset of a release's ``dset_name`` (``hl`` = QVHighlights, ``charades*``)."""
    return "charades_sta" if str(args.get("dset_name", "hl")).lower().startswith("charades") else "qvhighlights"


def detr_overrides(args: Mapping[str, Any]) -> dict[str, Any]:
    """mrbench config overrides of the Moment-DETR family's argparse options (``v_feat_dim``
    already includes the TEF's 2, as the release's ``parse()`` adds it)."""
    unsupported = {
        "span_loss_type": args.get("span_loss_type", "l1") != "l1",
        "use_txt_pos": bool(args.get("use_txt_pos", False)),
        "pre_norm": bool(args.get("pre_norm", False)),
        "contrastive_align_loss": bool(args.get("contrastive_align_loss", False)),
        "position_embedding": args.get("position_embedding", "sine") != "sine",
    }
    bad = sorted(k for k, v in unsupported.items() if v)
    if bad:
        raise ValueError(f"unsupported release options: {', '.join(f'{k}={args.get(k)!r}' for k in bad)}")
    return {
        "model.video_dim": int(args["v_feat_dim"]),
        "model.text_dim": int(args["t_feat_dim"]),
        "model.hidden": int(args["hidden_dim"]),
        "model.nheads": int(args["nheads"]),
        "model.dim_ff": int(args["dim_feedforward"]),
        "model.dec_layers": int(args["dec_layers"]),
        "model.num_queries": int(args["num_queries"]),
        "model.dropout": float(args["dropout"]),
        "model.input_dropout": float(args["input_dropout"]),
        "model.input_layers": int(args.get("n_input_proj", 2)),
        "loss.span": float(args["span_loss_coef"]),
        "loss.giou": float(args["giou_loss_coef"]),
        "loss.label": float(args["label_loss_coef"]),
        "loss.saliency": float(args["lw_saliency"]),
        "loss.eos_coef": float(args["eos_coef"]),
        "loss.margin": float(args["saliency_margin"]),
        "loss.aux": bool(args["aux_loss"]),
        "loss.cost_span": float(args["set_cost_span"]),
        "loss.cost_giou": float(args["set_cost_giou"]),
        "loss.cost_class": float(args["set_cost_class"]),
        "data.max_v_l": int(args["max_v_l"]),
        "data.max_q_l": int(args["max_q_l"]),
        "data.max_windows": int(args["max_windows"]),
        "data.tef": "tef" in str(args.get("ctx_mode", "video_tef")),
        "data.normalize_video": not args.get("no_norm_vfeat", False),
        "data.normalize_text": not args.get("no_norm_tfeat", False),
        "train.lr": float(args["lr"]),
        "train.weight_decay": float(args["wd"]),
        "train.lr_drop": int(args["lr_drop"]),
        "train.lr_gamma": float(args.get("lr_gamma", 0.1)),
        "train.epochs": int(args["n_epoch"]),
        "train.batch_size": int(args["bsz"]),
        "train.grad_clip": float(args["grad_clip"]),
        "train.seed": int(args["seed"]),
        "train.nms_thresh": float(args.get("nms_thd", -1)),
    }


def linear_layer_key(prefix: str, index: int, leaf: str) -> str:
    """The release's ``LinearLayer`` key (``{i}.LayerNorm`` / ``{i}.net.1``) of index ``index`` of
    one of the core's ``nn.Sequential`` [LayerNorm, Dropout, Linear, (ReLU)] stacks."""
    return f"{prefix}.{index // 4}.{'LayerNorm' if index % 4 == 0 else 'net.1'}.{leaf}"


_DECODER_NAMES = {
    "sa_q_content": "sa_qcontent_proj", "sa_q_pos": "sa_qpos_proj", "sa_k_content": "sa_kcontent_proj",
    "sa_k_pos": "sa_kpos_proj", "sa_v": "sa_v_proj", "sa_out": "self_attn.out_proj",
    "ca_q_content": "ca_qcontent_proj", "ca_q_pos": "ca_qpos_proj", "ca_k_content": "ca_kcontent_proj",
    "ca_k_pos": "ca_kpos_proj", "ca_v": "ca_v_proj", "ca_q_sine": "ca_qpos_sine_proj", "ca_out": "cross_attn.out_proj",
    "ffn.linear1": "linear1", "ffn.linear2": "linear2", "ffn.activation": "activation",
    "norm1": "norm1", "norm2": "norm2", "norm3": "norm3",
}

#: the core's input projections, encoders, anchor decoder and heads (QD-DETR's layout)
DETR_RULES: tuple[Rule, ...] = (
    Rule(r"input_video\.(\d+)\.(weight|bias)", lambda m: linear_layer_key("input_vid_proj", int(m[1]), m[2])),
    Rule(r"input_text\.(\d+)\.(weight|bias)", lambda m: linear_layer_key("input_txt_proj", int(m[1]), m[2])),
    Rule(r"t2v\.(\d+)\.cross_attn\.(.+)", r"transformer.t2v_encoder.layers.\1.self_attn.\2"),
    Rule(r"t2v\.(\d+)\.ffn\.(linear1|linear2|activation)\.(.+)", r"transformer.t2v_encoder.layers.\1.\2.\3"),
    Rule(r"t2v\.(\d+)\.(norm1|norm2)\.(.+)", r"transformer.t2v_encoder.layers.\1.\2.\3"),
    Rule(r"encoder\.(\d+)\.self_attn\.(.+)", r"transformer.encoder.layers.\1.self_attn.\2"),
    Rule(r"encoder\.(\d+)\.ffn\.(linear1|linear2|activation)\.(.+)", r"transformer.encoder.layers.\1.\2.\3"),
    Rule(r"encoder\.(\d+)\.(norm1|norm2)\.(.+)", r"transformer.encoder.layers.\1.\2.\3"),
    Rule(r"decoder\.layers\.(\d+)\.(\w+|ffn\.\w+)\.(weight|bias)",
         lambda m: f"transformer.decoder.layers.{m[1]}.{_DECODER_NAMES.get(m[2], '?' + m[2])}.{m[3]}"),
    Rule(r"decoder\.(norm|query_scale|ref_point_head|bbox_embed|ref_anchor_head)\.(.+)", r"transformer.decoder.\1.\2"),
    Rule(r"anchors\.weight", "query_embed.weight"),
    Rule(r"global_token", "global_rep_token"),
    Rule(r"global_pos", "global_rep_pos"),
    Rule(r"span_head\.(.+)", r"span_embed.\1"),
    Rule(r"class_head\.(.+)", r"class_embed.\1"),
    Rule(r"saliency_video\.(.+)", r"saliency_proj1.\1"),
    Rule(r"saliency_global\.(.+)", r"saliency_proj2.\1"),
)

#: stored by every Moment-DETR-family release but unused (``use_txt_pos`` is off)
TEXT_POSITION_TABLE = (r"txt_position_embed\..+",)
