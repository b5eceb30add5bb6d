"""TD-DETR (Zhou, Wei et al., ICCV 2025): QD-DETR + TDEM in every text-to-video layer + VSDC.

TD-DETR's two ideas are also a strategy that any model takes (``--with tddetr``;
:data:`STRATEGY`, registered as ``"tddetr"``): TDEM in the model's text-to-video layers and VSDC
as its training batch augmentation, with the settings of :data:`STRATEGY_SETTINGS`. The model
``tddetr`` is QD-DETR with that strategy (``qd_detr --with tddetr`` resolves to it) plus TD-DETR's
own depths, losses and schedule (:data:`PRESETS`).

* **TDEM** (:mod:`reference_models.core.tdem`): registered as the temporal module ``"tdem"``;
  every text-to-video layer gets one, all sharing a single learnable start token (as the
  original's ``video_embed``), blend ``model.beta`` (0.7). The dataset presets difference the
  tokens + position encoding, as the release (``model.temporal_uses_pos``); the tiny preset
  differences the tokens alone (the paper's description).
* **VSDC** (:mod:`reference_models.core.vsdc`): the training batch augmentation
  (:func:`vsdc_augment`; the trainer takes it from the strategy, and ``TDDETR.batch_augment``
  gives the same). The dataset presets use the release's composition (``vsdc.slots``): an epoch
  is 2N slots, each query once as itself and once as an anchor, drawn in random batches of 32
  slots (about 16 originals + 16 independent anchors, each anchor giving two synthesized samples:
  about 48 samples per step, N / 16 steps per epoch); partners are chosen among the step's
  anchors; off QVHighlights the release's 0.9 near-duplicate filter is on (``vsdc.exclude_above``).

Presets (tddetr.md §1.5; the base presets are :data:`reference_models.core.config.PRESETS`):

* ``qvhighlights``: 4 T2V (with TDEM) / 4 self-attention / 4 decoder layers, lr 1e-4 dropped x0.1
  at epoch 80, 200 epochs, loss and matcher weights span 1 / gIoU 10 / class 4, saliency 1
  (14.96 M parameters with 2818-d video and 512-d text input);
* ``charades_sta``: 3 / 3 / 3 layers, lr 2e-4 (no drop), 100 epochs, span 10 / gIoU 1 / class 4,
  saliency 4, 1-s clips, no length cap;
* ``tiny``: the base tiny model with TDEM (on the tokens) in its T2V layer, 2 epochs of batches
  of 8 of which VSDC turns half into anchors (4 originals + 8 synthesized samples per step), so
  that a run on the default synthetic dataset takes about two CPU minutes.

Where mrbench knowingly differs from the release (batch-independent attention mask, partner
choice, selection split) the default is the sound choice and the release is one option away;
docs/tddetr.md has the table.

VSDC settings are the config's ``vsdc`` section (:class:`~reference_models.core.config.VSDCConfig`;
``--set vsdc.strategy=random`` etc.), saved with the run like every other setting.
"""

from __future__ import annotations

import os

from torch import nn

from reference_models import (
    ModelInfo,
    Strategy,
    register_model,
    register_strategy,
    register_temporal,
)
from reference_models.core.config import Config, ModelConfig
from reference_models.core.release import (
    DETR_RULES,
    TEXT_POSITION_TABLE,
    ReleaseFormat,
    Rule,
    detr_overrides,
    detr_preset,
    linear_layer_key,
    register_release,
)
from reference_models.core.tdem import TDEM, new_start_token
from reference_models.core.vsdc import VSDC
from reference_models.qd_detr import QDDETR


@register_temporal("tdem")
def tdem_layers(config: ModelConfig, n_layers: int) -> list[nn.Module]:
    """One TDEM per text-to-video layer, all sharing one start token."""
    token = new_start_token(config.hidden)
    return [TDEM(config.hidden, config.nheads, config.dropout, config.beta, start_token=token)
            for _ in range(n_layers)]


def vsdc_augment(dataset: object, config: Config) -> VSDC:
    """VSDC over the dataset's feature sources, seeded from ``train.seed`` and the rank."""
    rank = int(os.environ.get("RANK", "0"))
    return VSDC(dataset.source_slices, tef=config.data.tef, config=config.vsdc,
                seed=config.train.seed * 1_000_003 + rank)


class TDDETR(QDDETR):
    """QD-DETR whose text-to-video layers carry TDEM (``model.temporal = "tdem"``) and whose
    training batches pass through VSDC."""

    def batch_augment(self, dataset: object, config: Config) -> VSDC:
        """:func:`vsdc_augment` (the strategy's augmentation)."""
        return vsdc_augment(dataset, config)


#: what the strategy brings to any model, per preset: TDEM (the release's, on x + pos, in the
#: dataset presets) and VSDC with the release's composition, 32-slot batches of the doubled epoch
#: (about 16 originals + 16 independent anchors, each anchor giving a pair: about 48 samples per
#: step); tiny: TDEM on x, batches of 8, half of them anchors (a 1:1 mix of originals and
#: synthesized samples). VSDC composes batches of single queries, so video-centric batches
#: (SnAG's ``train.queries_per_video``) are off: a synthesized video is encoded on its own anyway
_TDEM_VSDC = {"model.temporal": "tdem", "model.temporal_uses_pos": True, "train.batch_size": 32, "vsdc.slots": True,
              "train.queries_per_video": 0}
STRATEGY_SETTINGS = {
    "qvhighlights": {**_TDEM_VSDC},
    "charades_sta": {**_TDEM_VSDC, "vsdc.exclude_above": 0.9},  # the release's filter off QVHighlights
    "tiny": {"model.temporal": "tdem", "train.batch_size": 8, "vsdc.anchor_fraction": 0.5,
             "vsdc.keep_originals": False, "train.queries_per_video": 0},
}
STRATEGY = register_strategy("tddetr", Strategy(base="qd_detr", presets=STRATEGY_SETTINGS, augment=vsdc_augment))

#: TD-DETR's own settings on top of the strategy (its depths, losses and schedule)
PRESETS = {
    "qvhighlights": {
        "model.t2v_layers": 4, "model.enc_layers": 4, "model.dec_layers": 4,
        "train.epochs": 200, "train.lr": 1e-4, "train.lr_drop": 80,
        "loss.span": 1.0, "loss.giou": 10.0, "loss.label": 4.0, "loss.saliency": 1.0,
        "loss.cost_span": 1.0, "loss.cost_giou": 10.0, "loss.cost_class": 4.0,
    },
    "charades_sta": {
        "model.t2v_layers": 3, "model.enc_layers": 3, "model.dec_layers": 3,
        "train.epochs": 100, "train.lr": 2e-4, "train.lr_drop": 400,
        "loss.span": 10.0, "loss.giou": 1.0, "loss.label": 4.0, "loss.saliency": 4.0,
        "loss.cost_span": 10.0, "loss.cost_giou": 1.0, "loss.cost_class": 4.0,
    },
    "tiny": {"train.epochs": 2},
}


@register_model("tddetr", ModelInfo("TD-DETR", "https://arxiv.org/abs/2501.07305", 2025), presets=PRESETS)
def build(config: Config) -> TDDETR:
    return TDDETR(config)


def _is_td_detr(keys: frozenset[str], args: object) -> bool:
    return "video_embed.weight" in keys and "transformer.t2v_encoder.layers.0.self_attn_flow.in_proj_weight" in keys


def _release_overrides(args: dict) -> dict:
    """QD-DETR's options plus TDEM (on x + pos, as trained) and the release's VSDC settings."""
    out = {**detr_overrides(args), "model.t2v_layers": int(args["enc_layers"]), "model.enc_layers": int(args["enc_layers"]),
           "model.temporal": "tdem", "model.temporal_uses_pos": True, "model.beta": float(args["beta"]),
           "vsdc.alpha": float(args.get("alpha", 0.7)), "vsdc.strategy": str(args.get("sample_strategy", "sim")),
           "vsdc.slots": True}
    if str(args.get("dset_name", "hl")) != "hl":
        out["vsdc.exclude_above"] = 0.9
    return out


#: xyangzhou/TD-DETR release checkpoints: QD-DETR's layout plus each T2V layer's ``self_attn_flow``
#: and ``flow_proj`` (TDEM) and the shared start token ``video_embed.weight`` ([1, D])
RELEASE = register_release(ReleaseFormat(
    name="tddetr", model="tddetr", detect=_is_td_detr, overrides=_release_overrides,
    rules=(
        Rule(r"t2v\.\d+\.temporal\.start_token", "video_embed.weight", reshape=True),
        Rule(r"t2v\.(\d+)\.temporal\.attn\.(.+)", r"transformer.t2v_encoder.layers.\1.self_attn_flow.\2"),
        Rule(r"t2v\.(\d+)\.temporal\.flow_mlp\.(\d+)\.(weight|bias)",
             lambda m: linear_layer_key(f"transformer.t2v_encoder.layers.{m[1]}.flow_proj", int(m[2]), m[3])),
        *DETR_RULES,
    ),
    preset=detr_preset, unused=TEXT_POSITION_TABLE,
))
