"""Configuration of a reference-model run: dataclasses, presets and ``key=value`` overrides.

A :class:`Config` has six sections (``model``, ``loss``, ``data``, ``train``, ``vsdc``, ``snag``), the model's
name, its preset and the strategies it runs with (``--with``). Presets give the
official settings of a dataset; a model may register per-preset changes on top of them
(:func:`reference_models.register_model`). Overrides are ``section.field=value`` or a bare
``field=value`` when the field name is unique across sections; values are parsed as YAML
scalars (``1e-4``, ``true``, ``null``, ``[1, 2]``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mrbench.data.catalog import CATALOG
from mrbench.errors import MrbenchError


@dataclass
class ModelConfig:
    """Architecture. ``video_dim``/``text_dim`` are the input feature sizes (the trainer sets them
    from the dataset: sum of the video sources, +2 with the TEF)."""

    video_dim: int = 2818
    text_dim: int = 512
    hidden: int = 256
    nheads: int = 8
    dim_ff: int = 1024
    t2v_layers: int = 2
    enc_layers: int = 2
    dec_layers: int = 2
    num_queries: int = 10
    dropout: float = 0.1
    input_dropout: float = 0.5
    input_layers: int = 2
    activation: str = "prelu"
    #: temporal module in every text-to-video layer ("" = none, "tdem" = TD-DETR's TDEM)
    temporal: str = ""
    #: TDEM's blend weight beta (used when ``temporal == "tdem"``)
    beta: float = 0.7
    #: TDEM differences on ``x + pos`` (the original release) instead of ``x``
    temporal_uses_pos: bool = False
    #: BAM-DETR (read only by it): the release's boundary pathway and boundary loss on the batch's
    #: padded length (boundary convs over padded clips, sampling locations scaled by valid/padded
    #: length on the padded grid, loss targets placed on the padded length: batch-dependent).
    #: Off: each sample on its own valid clips
    boundary_padded_length: bool = False
    #: the release's text-to-video (and TDEM) attention mask, expanded head-major with
    #: ``.repeat(nhead, 1, 1)``: head h of sample b gets the mask of sample (b * nhead + h) mod B,
    #: so a sample's outputs depend on its batch-mates. Off: plain text key-padding masking.
    t2v_head_major_mask: bool = False
    #: CG-DETR (read only by it): learnable dummy tokens, prototypes (``total_prompts``, of which
    #: the ``num_prompts`` most similar form the saliency token) and the depths of its dummy,
    #: sentence and moment encoders
    num_dummies: int = 45
    total_prompts: int = 10
    num_prompts: int = 1
    dummy_layers: int = 2
    sent_layers: int = 1
    moment_layers: int = 1


@dataclass
class LossConfig:
    """Loss weights (``span``, ``giou``, ``label``, ``saliency``) and matcher costs."""

    span: float = 10.0
    giou: float = 1.0
    label: float = 4.0
    saliency: float = 1.0
    #: BAM-DETR (read only by it): IoU-quality and boundary loss weights
    quality: float = 2.0
    boundary: float = 1.0
    eos_coef: float = 0.1
    margin: float = 0.2
    tau: float = 0.5
    aux: bool = True
    cost_span: float = 10.0
    cost_giou: float = 1.0
    cost_class: float = 4.0
    #: CG-DETR (read only by it): weights of the attention-score saliency copy (``lw_wattn``), the
    #: moment-sentence alignment (``lw_ms_align``) and the distillation and orthogonality terms
    #: (``lw_distill``)
    wattn: float = 1.0
    ms_align: float = 1.0
    distill: float = 1.0
    #: CG-DETR's batch-dependent release losses: the attention BCE averages padded clips too, the
    #: alignment BCE divides by the padded length, the distillation's target softmax and mean
    #: include padded text columns, and a lone false-negative sample's rank term vanishes.
    #: Off: valid entries only, every false negative counted
    cg_release_losses: bool = False


@dataclass
class DataConfig:
    """Inputs. ``video_types`` empty = every video feature type of ``dataset.json`` in its order;
    ``max_v_l`` 0 = no cap; ``clip_len`` 0 = the dataset's."""

    video_types: list[str] = field(default_factory=list)
    max_v_l: int = 75
    max_q_l: int = 32
    max_windows: int = 5
    tef: bool = True
    normalize_video: bool = True
    normalize_text: bool = True
    clip_len: float = 0.0


@dataclass
class TrainConfig:
    """Optimisation, evaluation and runtime."""

    epochs: int = 200
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 1e-4
    lr_drop: int = 400
    lr_gamma: float = 0.1
    grad_clip: float = 0.1
    seed: int = 2018
    train_split: str = "train"
    eval_split: str = "val"
    eval_every: int = 1
    select_metric: str = "MR-full-mAP"
    #: "auto" (bf16 on CUDA, off on CPU), "bf16", "fp16" or "off" (fp32; TF32 matmuls on CUDA).
    #: The dataset presets set "off", as the releases trained
    amp: str = "auto"
    #: "auto", "on" or "off": the whole split held as padded tensors on the device ("auto": on for
    #: CUDA, and on CPU when the padded splits take at most 2 GiB)
    device_resident: str = "auto"
    compile: bool = False
    num_workers: int = 0
    #: CPU threads for torch (0 = torch's default); 1 is fastest for tiny models on few cores
    threads: int = 0
    nms_thresh: float = -1.0
    #: 0: hard NMS (drop a window overlapping a kept one above ``nms_thresh``); > 0: the BAM-DETR
    #: release's Gaussian decay (score x exp(-IoU^2 / sigma), IoU = intersection / hull), re-ranked
    nms_sigma: float = 0.0
    #: predicted spans are normalised; "clips" scales them by ``n_clips * clip_len`` (the length
    #: they were normalised by in training), "duration" by the video's duration (the release)
    span_scale: str = "clips"
    #: widen a predicted window shorter than one clip to one clip (the release does not)
    widen_short: bool = True
    #: train even when the training and selection splits share queries or videos (the run is
    #: flagged: its best record, best.pt and leaderboard entries made from it say so)
    allow_split_overlap: bool = False
    #: per-epoch training loss log / progress bar
    progress: bool = True
    #: weight EMA decay (0 = off): evaluation, best.pt and predictions use the averaged weights
    #: (``p_ema <- ema * p_ema + (1 - ema) * p`` after every step; SnAG's release: 0.999)
    ema: float = 0.0
    #: linear learning-rate warm-up from 0 over this many epochs, per step (then ``lr_drop`` counts
    #: epochs after the warm-up; SnAG's release: 5)
    warmup_epochs: int = 0
    #: video-centric batches (SnAG): each video's queries are cut into groups of at most this many,
    #: and a batch holds ``batch_size`` groups (0: batches of ``batch_size`` queries)
    queries_per_video: int = 0


@dataclass
class VSDCConfig:
    """VSDC, TD-DETR's batch synthesizer (:mod:`reference_models.core.vsdc`); read only by runs
    that use it (``tddetr``, any model ``--with tddetr``). Synthesis settings default to the
    release's; the release's composition is ``slots`` (TD-DETR's dataset presets), its same-video
    partner rule ``same_video_partners`` and
    its near-duplicate filter ``exclude_above = 0.9`` (off QVHighlights)."""

    alpha: float = 0.7
    jitter_low: float = 0.8
    jitter_high: float = 1.2
    topk: int = 50
    #: partner choice: "sim", "dissim", "mix" or "random"
    strategy: str = "sim"
    anchor_fraction: float = 1.0
    keep_originals: bool = True
    exclude_above: float | None = None
    min_count: int = 2
    #: the release's composition: an epoch is 2N slots (each query once as an original and once
    #: as an anchor) drawn in random batches of ``train.batch_size`` slots, so originals and
    #: anchors of a step are independent queries; partners are chosen among the step's anchors
    slots: bool = False
    #: allow a partner on the anchor's own video (the release: only the anchor itself is excluded)
    same_video_partners: bool = False


@dataclass
class SnAGConfig:
    """SnAG (:mod:`reference_models.snag`); read only by it. Defaults: the release's Charades-STA
    settings (``opts/video_centric/charades_sta_i3d.yaml``). The video width is ``model.hidden``,
    its heads ``model.nheads``, the projection dropout ``model.dropout``."""

    text_hidden: int = 128
    text_layers: int = 5
    embed_convs: int = 2
    stem_layers: int = 1
    #: pyramid levels (the release's branch layers), strides 1, 2, 4, ...
    levels: int = 6
    #: local self-attention window of the video layers (odd)
    window: int = 5
    fusion_layers: int = 2
    #: "affine" (x <- x * scale + shift) or "adaln" (a non-affine LayerNorm on x first)
    fusion_mode: str = "affine"
    head_layers: int = 2
    path_dropout: float = 0.1
    #: regression range of level 0 and the overlap factor of the next levels' ranges
    regression_range: float = 8.0
    range_overlap: float = 0.5
    #: the last level's range reaches at least ``max_clips + 1`` clips
    max_clips: int = 256
    center_radius: float = 1.5
    #: a clip's grid position is its centre: seconds = (grid + grid_offset) * clip_len
    grid_offset: float = 0.5
    focal_alpha: float = 0.5
    focal_gamma: float = 2.0
    label_smoothing: float = 0.2
    #: "diou" or "iou"
    reg_loss: str = "diou"
    reg_weight: float = 1.0
    #: initial loss normaliser and its EMA momentum (updated with the positive count every step)
    loss_norm: float = 400.0
    loss_norm_momentum: float = 0.9
    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    #: candidates not longer than this (grid units) are dropped before NMS
    min_length: float = 0.1
    nms_sigma: float = 0.9
    min_score: float = 0.001
    max_segments: int = 5
    voting_thresh: float = 0.95


@dataclass
class Config:
    model_name: str = "qd_detr"
    preset: str = "qvhighlights"
    #: the strategies the model runs with (``--with``, e.g. ``["tddetr"]``; the model ``tddetr``
    #: carries its own), set by :func:`reference_models.resolve_config`
    strategies: list[str] = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vsdc: VSDCConfig = field(default_factory=VSDCConfig)
    snag: SnAGConfig = field(default_factory=SnAGConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        sections = {"model": ModelConfig, "loss": LossConfig, "data": DataConfig, "train": TrainConfig,
                    "vsdc": VSDCConfig, "snag": SnAGConfig}
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k not in sections}
        for name, kind in sections.items():
            known = {f.name for f in fields(kind)}
            values = data.get(name, {})
            unknown = set(values) - known
            if unknown:
                raise MrbenchError(f"config section {name!r}: unknown keys {sorted(unknown)}")
            kwargs[name] = kind(**values)
        return cls(**kwargs)

    def copy(self) -> Config:
        return copy.deepcopy(self)


SECTIONS = ("model", "loss", "data", "train", "vsdc", "snag")

#: What the dataset presets change beyond the defaults to do what the releases do: their
#: post-processing (spans scaled by the duration, no widening of windows under one clip), and fp32
#: training (TF32 matmuls on CUDA; faster than bf16 autocast at these sizes on one H200,
#: benchmarks/gpu/results/2026-11-30-h200; ``train.amp=bf16`` halves the memory).
_RELEASE = {"train.span_scale": "duration", "train.widen_short": False, "train.amp": "off"}

#: Base presets: the official QD-DETR settings per dataset (tddetr.md §1.5, competitors.md §0, §2).
#: A dataset whose validation split is carved from its training split trains on the rest
#: (:meth:`~mrbench.data.catalog.DatasetSpec.selection_train_split`), never on the selection data.
PRESETS: dict[str, dict[str, Any]] = {
    "qvhighlights": {**_RELEASE},
    "charades_sta": {
        **_RELEASE,
        "train.train_split": CATALOG["charades_sta"].selection_train_split(),
        "data.clip_len": 1.0,
        "data.max_v_l": 0,
        "train.lr": 2e-4,
        "train.epochs": 100,
        "train.select_metric": "MR-full-R1@0.7",
    },
    # small and fast: CPU tests, smoke runs, the synthetic data
    "tiny": {
        "model.hidden": 64,
        "model.nheads": 4,
        "model.dim_ff": 128,
        "model.t2v_layers": 1,
        "model.enc_layers": 1,
        "model.dec_layers": 2,
        "model.num_queries": 5,
        "model.input_dropout": 0.1,
        "train.epochs": 30,
        "train.batch_size": 16,
        "train.lr": 1e-3,
        "train.weight_decay": 1e-4,
        "train.grad_clip": 1.0,
        "train.seed": 0,
        "train.threads": 1,
    },
}


def parse_value(text: str) -> Any:
    """A YAML scalar/list from ``text`` (``1e-4`` -> float, ``true`` -> bool, ``null`` -> None)."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _resolve(config: Config, key: str) -> tuple[Any, str]:
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise MrbenchError(f"unknown config section {section!r} in {key!r} (sections: {', '.join(SECTIONS)})")
        target = getattr(config, section)
        if name not in {f.name for f in fields(target)}:
            raise MrbenchError(f"unknown config key {key!r}")
        return target, name
    owners = [s for s in SECTIONS if key in {f.name for f in fields(getattr(config, s))}]
    if len(owners) != 1:
        where = f"ambiguous (in {', '.join(owners)})" if owners else "unknown"
        raise MrbenchError(f"config key {key!r} is {where}; write it as section.{key}")
    return getattr(config, owners[0]), key


#: integer settings that make no sense below 1 (every other integer must be at least 0)
AT_LEAST_ONE = frozenset({
    "model.hidden", "model.nheads", "model.dim_ff", "model.num_queries", "model.dec_layers",
    "data.max_q_l", "data.max_windows", "train.epochs", "train.batch_size", "train.eval_batch_size",
    "train.eval_every", "train.lr_drop", "vsdc.topk", "snag.levels", "snag.max_segments", "snag.pre_nms_topk",
})
#: number settings that must be above 0 (every other number must be finite)
ABOVE_ZERO = frozenset({"train.lr", "vsdc.jitter_low", "vsdc.jitter_high"})
#: number settings that are probabilities or fractions in [0, 1]
FRACTIONS = frozenset({"model.dropout", "model.input_dropout", "model.beta", "loss.eos_coef", "vsdc.alpha",
                       "vsdc.anchor_fraction", "train.ema", "snag.path_dropout", "snag.label_smoothing",
                       "snag.loss_norm_momentum", "snag.range_overlap", "snag.voting_thresh"})
#: the largest integer setting accepted (a larger one is a typo, and would allocate beyond memory);
#: seeds may take any 32-bit value
MAX_INT_SETTING = 10**7
MAX_SEED = 2**32 - 1


def check_setting(key: str, value: Any) -> None:
    """Raise :class:`MrbenchError` when a numeric setting ``section.field`` is out of its range:
    integers in [0, 1e7] (``AT_LEAST_ONE``: from 1; seeds up to 2**32 - 1), numbers finite (``ABOVE_ZERO``: > 0,
    ``FRACTIONS``: in [0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, int):
        low = 1 if key in AT_LEAST_ONE else 0
        high = MAX_SEED if key == "train.seed" else MAX_INT_SETTING
        if not low <= value <= high:
            raise MrbenchError(f"config key {key!r} must be an integer in [{low}, {high}], got {value}")
        return
    if not math.isfinite(value):
        raise MrbenchError(f"config key {key!r} must be a finite number, got {value}")
    if key in ABOVE_ZERO and value <= 0:
        raise MrbenchError(f"config key {key!r} must be above 0, got {value}")
    if key in FRACTIONS and not 0 <= value <= 1:
        raise MrbenchError(f"config key {key!r} must be in [0, 1], got {value}")


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """A copy of ``config`` with ``{"section.field" or "field": value}`` applied (values coerced
    to the field's type, then range-checked by :func:`check_setting`; strings are parsed with
    :func:`parse_value`)."""
    config = config.copy()
    for key, value in overrides.items():
        target, name = _resolve(config, key)
        current = getattr(target, name)
        if isinstance(value, str):
            raw = value.strip()
            value = parse_value(value)
            if isinstance(current, str) and value is not None:
                value = raw  # a string field keeps its text ("off" is not YAML's false here)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise MrbenchError(f"config key {key!r} expects true/false, got {value!r}")
        elif isinstance(current, int):
            if isinstance(value, bool):
                raise MrbenchError(f"config key {key!r} expects an integer, got {value!r}")
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise MrbenchError(f"config key {key!r} expects an integer, got {value!r}")
        elif isinstance(current, float):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise MrbenchError(f"config key {key!r} expects a number, got {value!r}")
            value = float(value)
        elif isinstance(current, str):
            value = "" if value is None else str(value)
        elif isinstance(current, list) and not isinstance(value, list):
            value = [value] if value else []
        section = next(s for s in SECTIONS if getattr(config, s) is target)
        check_setting(f"{section}.{name}", value)
        setattr(target, name, value)
    return config


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` -> dict (the CLI's ``--set``)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise MrbenchError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out
