"""SnAG (Mu, Mo & Li, CVPR 2024): single-stage, anchor-free grounding with late fusion.

Not a DETR: video and text are encoded independently (a video once for all its queries), every
point of a video pyramid is a candidate, and a query's text modulates each level by
cross-attention (competitors.md §5; docs/snag.md has the QVHighlights adaptation and every
difference from the release).

Forward pass (channel-first ``[B, C, T]`` inside; :mod:`reference_models.core.pyramid`):

1. **Text**: 1x1 projection to ``snag.text_hidden``, sine position encoding, a background token
   prepended, ``snag.text_layers`` global pre-norm layers with LayerScale.
2. **Video** (once per distinct video of the batch): 1x1 projection to ``model.hidden``,
   ``snag.embed_convs`` k3 convs, position encoding, ``snag.stem_layers`` local (window
   ``snag.window``) layers, then ``snag.levels`` layers of strides 1, 2, 2, ...: a pyramid with
   strides 1, 2, 4, ...
3. **Fusion** (:class:`FusionLayer`, ``snag.fusion_layers``, shared by the levels): the level,
   through a depthwise conv and a LayerNorm, cross-attends to the text tokens (background
   included) and gives ``2C`` channels ``(scale, shift)``; ``x <- x * scale + shift`` (``affine``,
   no residual; ``adaln`` normalises ``x`` first), then an FFN with LayerScale; a LayerNorm
   after the last layer. With ``model.temporal`` (e.g. ``"tdem"``, TD-DETR's TDEM) every fusion
   layer carries one temporal module on its modulated stream: ``x <- TDEM(x) * scale + shift``,
   TDEM attending over the layer's text keys (the cross-attention's key projection, already in
   the video width); this is where "SnAG w/ TD-DETR" differs. The video already carries its
   position encoding, so ``model.temporal_uses_pos`` is not read. Without a temporal module the
   levels go through fusion and heads in one pass, side by side with a padded position between
   them (the k3 convs see zeros there, as at a level's end); with one, each level on its own.
4. **Heads**, shared by the levels: ``snag.head_layers`` x (k3 conv, LayerNorm, ReLU), then a k3
   conv to one logit, or to two offsets ``ReLU(s_l * x)`` (``s_l`` a learnable scale per level)
   in units of the level's stride.

Loss (:mod:`reference_models.core.dense`): points labelled by centre sampling and regression
ranges (each point regresses the shortest window it is positive for), sigmoid focal loss with
label smoothing over valid points, DIoU over positive points, both summed and divided by the
loss normaliser: ``snag.loss_norm`` at first, then an EMA of the positive count (momentum
``snag.loss_norm_momentum``, updated after each training step as the release does).

Inference: sigmoid scores, candidates above 0.001 (top 2000) longer than 0.1 clips, the release's
Gaussian soft-NMS with segment voting, the best ``snag.max_segments``. SnAG has no saliency head:
its predictions carry no ``pred_saliency_scores`` (the scorer then reports no HL metrics).

Training (the trainer's general options, set by the presets): video-centric batches
(``train.queries_per_video``), per-step linear warm-up (``train.warmup_epochs``), weight EMA
(``train.ema``; evaluated and saved as best), no weight decay on biases, norms, scales and the
background token (:meth:`SnAG.optimizer_groups`).

Parameters: 9,883,785 with the release's Charades-STA I3D sizes (2048-d video, 300-d GloVe text),
exactly the release's count; 10,108,041 with the ``charades_sta`` preset's default input sizes
(2818-d video, 512-d text).

Release pitfalls (competitors.md §8) and what mrbench does: the DETR-only ones (mask layout,
rank-contrastive loss, saliency-label clamp) do not apply; the spans are decoded on the clip grid
(``train.span_scale=clips``: seconds = (grid + ``snag.grid_offset``) x clip length, clipped to the
duration, as the release converts); model selection on Charades-STA uses a validation split
carved from train (the release has no validation split and evaluates its last checkpoint).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mrbench.errors import MrbenchError
from reference_models import ModelInfo, register_model, temporal_modules
from reference_models.core.config import Config
from reference_models.core.dense import (
    DetectSettings,
    assign_points,
    detect,
    diou_loss,
    focal_loss,
    iou_loss,
    level_points,
    regression_ranges,
)
from reference_models.core.pyramid import (
    ChannelNorm,
    FeedForward,
    LayerScale,
    MaskedAttention,
    TextEncoder,
    VideoPyramid,
    masked_conv,
    pad_to_multiple,
    pyramid_multiple,
)
from reference_models.core.release import ReleaseFormat, Rule, register_release
from reference_models.core.span import cxw_to_xx

FUSION_MODES = ("affine", "adaln")
REG_LOSSES = ("diou", "iou")


class FusionLayer(nn.Module):
    """One cross-attention fusion layer (module docstring, step 3)."""

    def __init__(self, channels: int, text_dim: int, heads: int, dropout: float, path_dropout: float,
                 mode: str, temporal: nn.Module | None = None) -> None:
        super().__init__()
        self.norm_q = ChannelNorm(channels)
        self.norm_kv = ChannelNorm(text_dim)
        self.conv_q = nn.Conv1d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.norm_conv = ChannelNorm(channels)
        self.attn = MaskedAttention(channels, kv_dim=text_dim, out_dim=2 * channels, heads=heads, dropout=dropout)
        self.ffn = FeedForward(channels, 4, dropout)
        self.norm_ffn = ChannelNorm(channels)
        self.scale_ffn = LayerScale(channels, path_dropout)
        self.adaln = mode == "adaln"
        self.temporal = temporal

    def forward(self, x: torch.Tensor, mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        valid = mask.to(x.dtype)
        x = x * valid
        q = self.norm_conv(masked_conv(self.conv_q, self.norm_q(x), mask))
        kv = self.norm_kv(text)
        modulation = self.attn(q, kv, kv, text_mask)
        if self.adaln:
            x = F.layer_norm(x.transpose(1, 2), (x.shape[1],)).transpose(1, 2)
        if self.temporal is not None:
            keys = self.attn.key(kv).transpose(1, 2)
            x = self.temporal(x.transpose(1, 2), mask[:, 0], keys, text_mask[:, 0]).transpose(1, 2)
        scale, shift = modulation.chunk(2, dim=1)
        x = x * scale + shift
        return x + self.scale_ffn(self.ffn(self.norm_ffn(x)) * valid)


class Fusion(nn.Module):
    """``layers`` fusion layers and the final LayerNorm."""

    def __init__(self, layers: list[FusionLayer], channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = ChannelNorm(channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask, text, text_mask)
        return self.norm(x)


class DenseHead(nn.Module):
    """``layers`` x (k3 conv, LayerNorm, ReLU) and a k3 output conv to ``out`` channels."""

    def __init__(self, channels: int, layers: int, out: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, 3, 1, 1, bias=False) for _ in range(layers))
        self.norms = nn.ModuleList(ChannelNorm(channels) for _ in range(layers))
        self.out = nn.Conv1d(channels, out, 3, 1, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.relu(norm(masked_conv(conv, x, mask)))
        return masked_conv(self.out, x, mask)


def _check(config: Config) -> None:
    s = config.snag
    problems = []
    if s.window < 1 or s.window % 2 == 0:
        problems.append(f"snag.window must be odd, got {s.window}")
    if s.fusion_mode not in FUSION_MODES:
        problems.append(f"snag.fusion_mode must be one of {', '.join(FUSION_MODES)}, got {s.fusion_mode!r}")
    if s.reg_loss not in REG_LOSSES:
        problems.append(f"snag.reg_loss must be one of {', '.join(REG_LOSSES)}, got {s.reg_loss!r}")
    for name, width in (("model.hidden", config.model.hidden), ("snag.text_hidden", s.text_hidden)):
        if width % config.model.nheads or width % 2:
            problems.append(f"{name} {width} must be even and divisible by model.nheads {config.model.nheads}")
    if problems:
        raise MrbenchError("; ".join(problems))


class SnAG(nn.Module):
    """SnAG on the shared core (module docstring). ``forward(batch) -> outputs``;
    ``criterion(outputs, batch) -> losses``; ``decode(outputs) -> scores, spans, keep``."""

    #: predicted windows keep their exact ends (the release does not round them to clips)
    round_to_clip = False

    def __init__(self, config: Config) -> None:
        super().__init__()
        _check(config)
        m, s = config.model, config.snag
        self.settings = s
        self.text_encoder = TextEncoder(m.text_dim, s.text_hidden, m.nheads, s.text_layers, m.dropout, s.path_dropout)
        self.video_encoder = VideoPyramid(m.video_dim, m.hidden, m.nheads, s.window, s.embed_convs, s.stem_layers,
                                          s.levels, m.dropout, s.path_dropout)
        temporal = temporal_modules(m.temporal, m, s.fusion_layers) if m.temporal else [None] * s.fusion_layers
        self.fusion = Fusion([
            FusionLayer(m.hidden, s.text_hidden, m.nheads, m.dropout, s.path_dropout, s.fusion_mode, temporal[i])
            for i in range(s.fusion_layers)
        ], m.hidden)
        self.temporal = bool(m.temporal)
        self.cls_head = DenseHead(m.hidden, s.head_layers, 1)
        self.reg_head = DenseHead(m.hidden, s.head_layers, 2)
        self.reg_scales = nn.ParameterList(nn.Parameter(torch.tensor(1.0)) for _ in range(s.levels))
        for module in self.modules():
            if isinstance(module, nn.Conv1d) and module.bias is not None:
                nn.init.zeros_(module.bias)
        self.ranges = regression_ranges(s.levels, s.regression_range, s.range_overlap, s.max_clips)
        self.detect_settings = DetectSettings(s.pre_nms_thresh, s.pre_nms_topk, s.min_length, s.nms_sigma,
                                              s.min_score, s.max_segments, s.voting_thresh)
        self.loss_norm = float(s.loss_norm)

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _videos(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows to encode and, per query row, the encoded row it uses: one row per distinct
        ``video_id`` when its rows are the same video (else every row on its own, e.g. after a
        batch augmentation that synthesised new videos)."""
        rows = torch.arange(batch["video"].shape[0], device=batch["video"].device)
        if "video_id" not in batch:
            return rows, rows
        ids, inverse = torch.unique(batch["video_id"], return_inverse=True)
        first = torch.full((len(ids),), len(rows), device=rows.device).scatter_reduce(0, inverse, rows, "amin")
        source = first[inverse]
        same = (batch["video"] == batch["video"][source]).flatten(1).all(1) & (
            batch["video_mask"] == batch["video_mask"][source]).all(1)
        return (first, inverse) if bool(same.all()) else (rows, rows)

    def forward(self, batch: dict[str, torch.Tensor], negatives: bool | None = None) -> dict[str, Any]:
        """Per level ``logits [B, T_l]``, ``offsets [B, T_l, 2]`` (stride units), ``masks
        [B, T_l]`` and the valid ``lengths [B]``; ``negatives`` is accepted for the common
        contract (SnAG has no negative pass)."""
        video_mask = batch["video_mask"].bool()
        encode, use = self._videos(batch)
        video = batch["video"][encode].transpose(1, 2)
        mask = video_mask[encode][:, None]
        video, mask = pad_to_multiple(video, mask, pyramid_multiple(self.settings.levels))
        levels, level_masks = self.video_encoder(video, mask)
        text, text_mask = self.text_encoder(batch["text"].transpose(1, 2), batch["text_mask"].bool()[:, None])
        # the levels side by side, each followed by one padded position: fusion and heads act per
        # position or through k3 convs over masked inputs, so one pass equals one per level. A
        # temporal module differences neighbouring positions, so with one each level is a pass
        count = len(levels)
        passes = [[level] for level in range(count)] if self.temporal else [list(range(count))]
        logits, offsets, masks = [None] * count, [None] * count, [None] * count
        for chosen in passes:
            x = torch.cat([F.pad(levels[level][use], (0, 1)) for level in chosen], -1)
            m = torch.cat([F.pad(level_masks[level][use], (0, 1), value=False) for level in chosen], -1)
            x = self.fusion(x, m, text, text_mask)
            cls, reg = self.cls_head(x, m)[:, 0], self.reg_head(x, m)
            start = 0
            for level in chosen:
                part = slice(start, start + levels[level].shape[-1])
                logits[level] = cls[:, part]
                offsets[level] = F.relu(reg[..., part] * self.reg_scales[level].to(reg.dtype)).transpose(1, 2)
                masks[level] = m[:, 0, part]
                start = part.stop + 1
        return {"logits": logits, "offsets": offsets, "masks": masks, "lengths": video_mask.sum(1)}

    def points(self, outputs: dict[str, Any]) -> list[torch.Tensor]:
        """Per level ``[T_l, 4]`` = (grid position, range min, range max, stride)."""
        return level_points([x.shape[1] for x in outputs["logits"]], self.ranges, outputs["logits"][0].device)

    def grid_windows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's normalised (center, width) windows on the clip grid ``[B, W, 2]``."""
        lengths = batch["video_mask"].sum(1).to(torch.float32)
        return cxw_to_xx(batch["spans"].float()) * lengths[:, None, None] - self.settings.grid_offset

    def criterion(self, outputs: dict[str, Any], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``loss`` = ``loss_cls + snag.reg_weight * loss_reg`` (module docstring); in training
        mode the loss normaliser is then updated with the batch's positive count."""
        s = self.settings
        points = torch.cat(self.points(outputs))
        labels, targets = assign_points(points, self.grid_windows(batch), batch["span_mask"].bool(), s.center_radius)
        logits = torch.cat(outputs["logits"], 1)
        offsets = torch.cat(outputs["offsets"], 1)
        valid = torch.cat(outputs["masks"], 1)
        positive = labels & valid
        cls = focal_loss(logits[valid], labels[valid], s.focal_alpha, s.focal_gamma, s.label_smoothing).sum()
        reg_loss = diou_loss if s.reg_loss == "diou" else iou_loss
        reg = reg_loss(offsets[positive], targets[positive]).sum()
        distributed = dist.is_available() and dist.is_initialized()
        world = dist.get_world_size() if distributed else 1
        loss_cls = cls / self.loss_norm * world
        loss_reg = reg / self.loss_norm * world
        if self.training:
            count = positive.sum().detach().float()
            if distributed:
                dist.all_reduce(count)
            m = s.loss_norm_momentum
            self.loss_norm = m * self.loss_norm + (1.0 - m) * max(float(count), 1.0)
        return {"loss": loss_cls + s.reg_weight * loss_reg, "loss_cls": loss_cls, "loss_reg": loss_reg}

    def train_state(self) -> dict[str, float]:
        """What a resumed run needs beyond the weights: the loss normaliser."""
        return {"loss_norm": self.loss_norm}

    def load_train_state(self, state: Mapping[str, float]) -> None:
        self.loss_norm = float(state["loss_norm"])

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Weight decay on weight matrices and conv kernels only; none on biases, norms, scales
        and tokens (the release's groups)."""
        decay = [p for p in self.parameters() if p.requires_grad and p.dim() >= 2]
        rest = [p for p in self.parameters() if p.requires_grad and p.dim() < 2]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]

    def detect(self, outputs: dict[str, Any], row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Segments ``[k, 2]`` (grid) and scores ``[k]`` of one query (the release's
        post-processing, :func:`~reference_models.core.dense.detect`), on the CPU."""
        points = [p.cpu() for p in self.points(outputs)]
        take = [[x[row].detach().float().cpu() for x in outputs[key]] for key in ("logits", "offsets", "masks")]
        return detect(points, *take, self.detect_settings)

    def decode(self, outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per query the detected windows, best first: ``spans [B, K, 2]`` (normalised xx: grid +
        ``snag.grid_offset`` over the clip count), ``scores [B, K]`` and ``keep [B, K]`` (the
        real ones). A query whose candidates are all filtered out gets the clip of its
        best-scoring valid point (the release returns nothing there)."""
        size, k = outputs["logits"][0].shape[0], self.settings.max_segments
        spans, scores = torch.zeros(size, k, 2), torch.zeros(size, k)
        keep = torch.zeros(size, k, dtype=torch.bool)
        lengths = outputs["lengths"].float().cpu()
        points = [p.cpu() for p in self.points(outputs)]
        for row in range(size):
            segments, row_scores = self.detect(outputs, row)
            if len(segments) == 0:
                segments, row_scores = self._best_point(outputs, points, row)
            n = len(segments)
            spans[row, :n] = (segments + self.settings.grid_offset) / lengths[row]
            scores[row, :n] = row_scores
            keep[row, :n] = True
        return {"scores": scores, "spans": spans, "keep": keep}

    @staticmethod
    def _best_point(outputs: dict[str, Any], points: list[torch.Tensor], row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The one-clip segment around the best-scoring valid point of query ``row``."""
        logits = torch.cat([x[row].detach().float().cpu() for x in outputs["logits"]])
        valid = torch.cat([x[row].cpu() for x in outputs["masks"]])
        best = int(logits.masked_fill(~valid, float("-inf")).argmax())
        t = float(torch.cat(points)[best, 0])
        return torch.tensor([[t - 0.5, t + 0.5]]), torch.sigmoid(logits[best : best + 1])


# Presets (docs/snag.md). The release trains on Charades-STA I3D features resampled to 256 steps;
# mrbench keeps each video's own clips. The dataset presets use the release's optimisation
# (AdamW 5e-4, weight decay 5e-4, 5 warm-up epochs + 11, EMA 0.999, clip 1.0, batches of 8 videos
# x <= 4 queries) and post-processing; qvhighlights is mrbench's adaptation (competitors.md §5).
_COMMON = {
    "data.tef": False, "model.nheads": 4, "model.dropout": 0.1, "train.span_scale": "clips",
    "train.widen_short": False, "train.nms_thresh": -1.0, "train.lr": 5e-4, "train.weight_decay": 5e-4,
    "train.grad_clip": 1.0, "train.ema": 0.999, "train.warmup_epochs": 5, "train.queries_per_video": 4,
}
PRESETS = {
    "charades_sta": {**_COMMON, "model.hidden": 256, "train.epochs": 16, "train.batch_size": 8},
    "qvhighlights": {
        **_COMMON, "model.hidden": 256, "train.epochs": 50, "train.batch_size": 32, "snag.levels": 5,
        "snag.max_clips": 75, "snag.loss_norm": 100.0, "snag.max_segments": 10,
    },
    "tiny": {
        **_COMMON, "model.hidden": 64, "model.dropout": 0.0, "snag.text_hidden": 32, "snag.text_layers": 1,
        "snag.embed_convs": 1, "snag.levels": 3, "snag.fusion_layers": 1, "snag.head_layers": 1,
        "snag.path_dropout": 0.0, "snag.max_clips": 75, "snag.loss_norm": 50.0, "snag.max_segments": 10,
        "train.lr": 1e-3, "train.weight_decay": 1e-4, "train.ema": 0.9, "train.warmup_epochs": 1,
        "train.batch_size": 16,
    },
}


@register_model("snag", ModelInfo("SnAG", "https://arxiv.org/abs/2404.02257", 2024), presets=PRESETS)
def build(config: Config) -> SnAG:
    return SnAG(config)


# ----------------------------------------------------------------------------------------------
# release checkpoints (fmu2/snag_release: {"model": ..., "model_ema": ...}, opt in a YAML file)
# ----------------------------------------------------------------------------------------------
_BLOCK = {
    "conv_q.weight": "attn.q_conv.conv.weight", "conv_k.weight": "attn.k_conv.conv.weight",
    "conv_v.weight": "attn.v_conv.conv.weight", "norm_q": "attn.q_norm", "norm_k": "attn.k_norm",
    "norm_v": "attn.v_norm", "attn.query": "attn.attn.query", "attn.key": "attn.attn.key",
    "attn.value": "attn.attn.value", "attn.out": "attn.attn.proj", "norm_attn": "ln_attn",
    "scale_attn.scale": "drop_path_attn.scale", "ffn.fc1": "ffn.fc", "ffn.fc2": "ffn.proj", "norm_ffn": "ln_ffn",
    "scale_ffn.scale": "drop_path_ffn.scale",
}
_FUSION = {
    "norm_q": "ln_xattn_q", "norm_kv": "ln_xattn_kv", "conv_q.weight": "xattn.q_conv.conv.weight",
    "norm_conv": "xattn.q_norm", "attn.query": "xattn.xattn.query", "attn.key": "xattn.xattn.key",
    "attn.value": "xattn.xattn.value", "attn.out": "xattn.xattn.proj", "ffn.fc1": "ffn.fc", "ffn.fc2": "ffn.proj",
    "norm_ffn": "ln_ffn", "scale_ffn.scale": "drop_path_ffn.scale",
}


def _renamed(table: dict[str, str], prefix: str, rest: str) -> str:
    for ours, official in table.items():
        if rest == ours or rest.startswith(ours + "."):
            return f"{prefix}.{official}{rest[len(ours):]}"
    return f"{prefix}.?{rest}"


def _head(m: Any) -> str:
    head, part, rest = m[1], m[2], m[3]
    if part == "out":
        return f"{head}.{head}.conv.{rest}"
    return f"{head}.{part}.{rest}" if part.startswith("norms") else f"{head}.{part}.conv.{rest}"


RULES = (
    Rule(r"text_encoder\.proj\.(weight|bias)", r"text_net.embd_fc.conv.\1"),
    Rule(r"text_encoder\.background", "text_net.bkgd_token", reshape=True),
    Rule(r"text_encoder\.layers\.(\d+)\.(.+)", lambda m: _renamed(_BLOCK, f"text_net.transformer.{m[1]}", m[2]),
         reshape=True),
    Rule(r"video_encoder\.proj\.(weight|bias)", r"vid_net.embd_fc.conv.\1"),
    Rule(r"video_encoder\.embed\.(\d+)\.weight", r"vid_net.embd_convs.\1.conv.weight"),
    Rule(r"video_encoder\.embed_norms\.(\d+)\.(weight|bias)", r"vid_net.embd_norms.\1.\2", reshape=True),
    Rule(r"video_encoder\.stem\.(\d+)\.(.+)", lambda m: _renamed(_BLOCK, f"vid_net.stem.{m[1]}", m[2]), reshape=True),
    Rule(r"video_encoder\.levels\.(\d+)\.(.+)", lambda m: _renamed(_BLOCK, f"vid_net.branch.{m[1]}", m[2]),
         reshape=True),
    Rule(r"fusion\.layers\.(\d+)\.(.+)", lambda m: _renamed(_FUSION, f"fusion.layers.{m[1]}", m[2]), reshape=True),
    Rule(r"fusion\.norm\.(weight|bias)", r"fusion.ln_out.\1", reshape=True),
    Rule(r"(cls_head|reg_head)\.(convs\.\d+|norms\.\d+|out)\.(weight|bias)", _head, reshape=True),
    Rule(r"reg_scales\.(\d+)", r"reg_head.scales.\1.scale"),
)


#: keys every SnAG release state dict holds (its detection, and the shapes read by :func:`_infer`)
_SNAG_KEYS = {"text_net.bkgd_token", "text_net.embd_fc.conv.weight", "vid_net.embd_fc.conv.weight",
              "fusion.ln_out.weight"}


def _is_snag(keys: frozenset[str], args: object) -> bool:
    return _SNAG_KEYS <= keys


def _count(keys: Any, pattern: str) -> int:
    """How many distinct indices ``pattern``'s group 1 takes over ``keys``."""
    return len({m[1] for k in keys if (m := re.match(pattern, k))})


def _infer(weights: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture read off a release state dict's shapes."""
    keys = list(weights)
    text, video = weights.get("text_net.embd_fc.conv.weight"), weights.get("vid_net.embd_fc.conv.weight")
    if not (torch.is_tensor(text) and torch.is_tensor(video) and text.dim() == video.dim() == 3):
        raise MrbenchError("snag release state dict: text_net.embd_fc.conv.weight and vid_net.embd_fc.conv.weight "
                           "must be [out, in, 1] tensors")
    return {
        "model.text_dim": int(text.shape[1]), "snag.text_hidden": int(text.shape[0]),
        "model.video_dim": int(video.shape[1]), "model.hidden": int(video.shape[0]),
        "snag.text_layers": _count(keys, r"text_net\.transformer\.(\d+)\."),
        "snag.embed_convs": _count(keys, r"vid_net\.embd_convs\.(\d+)\."),
        "snag.stem_layers": _count(keys, r"vid_net\.stem\.(\d+)\."),
        "snag.levels": _count(keys, r"vid_net\.branch\.(\d+)\."),
        "snag.fusion_layers": _count(keys, r"fusion\.layers\.(\d+)\."),
        "snag.head_layers": _count(keys, r"cls_head\.convs\.(\d+)\."),
    }


def _overrides(args: Mapping[str, Any]) -> dict[str, Any]:
    """mrbench settings of the release's ``opt`` (its YAML config as loaded); empty without one."""
    if not args:
        return {}
    model, train, evaluation = args["model"], args["train"], args["eval"]
    text, video, fusion = model["text_net"], model["vid_net"], model["fusion"]
    heads = {text["n_heads"], video["n_heads"], fusion["n_heads"]}
    unsupported = {
        "text_net.name": text["name"] != "transformer", "text_net.use_bkgd_token": not text.get("use_bkgd_token", True),
        "text_net.use_abs_pe": not text.get("use_abs_pe", True), "vid_net.use_abs_pe": not video.get("use_abs_pe", False),
        "vid_net.stride": video.get("stride", 1) != 1, "model.vid_stride": model.get("vid_stride", 1) != 1,
        "fusion.name": fusion["name"] != "xattn", "n_heads (text/video/fusion differ)": len(heads) != 1,
        "train.center_sampling": train.get("center_sampling", "radius") != "radius",
        "eval.nms.mode": evaluation["nms"].get("mode") != "soft_nms",
    }
    bad = sorted(k for k, v in unsupported.items() if v)
    if bad:
        raise ValueError(f"unsupported release options: {', '.join(bad)}")
    nms = evaluation["nms"]
    return {
        "model.nheads": int(video["n_heads"]), "model.dropout": float(video["proj_pdrop"]),
        "snag.path_dropout": float(video["path_pdrop"]), "snag.window": int(video["mha_win_size"]),
        "snag.fusion_mode": str(fusion.get("xattn_mode", "adaln")),
        "snag.regression_range": float(args["pt_gen"]["regression_range"]),
        "snag.range_overlap": float(args["pt_gen"]["sigma"]), "snag.max_clips": int(model["max_vid_len"]),
        "snag.center_radius": float(train["center_sampling_radius"]), "snag.reg_loss": str(train.get("reg_loss", "diou")),
        "snag.reg_weight": float(train.get("loss_weight", 1.0)), "snag.loss_norm": float(train["loss_norm"]),
        "snag.loss_norm_momentum": float(train.get("loss_norm_momentum", 0.9)),
        "snag.pre_nms_thresh": float(evaluation["pre_nms_thresh"]), "snag.pre_nms_topk": int(evaluation["pre_nms_topk"]),
        "snag.min_length": float(evaluation["seg_len_thresh"]), "snag.nms_sigma": float(nms["sigma"]),
        "snag.min_score": float(nms["min_score"]), "snag.max_segments": int(nms["max_num_segs"]),
        "snag.voting_thresh": float(nms["voting_thresh"]),
        "train.lr": float(train["optimizer"]["lr"]), "train.weight_decay": float(train["optimizer"]["weight_decay"]),
        "train.ema": float(train.get("ema_beta", 0.999)), "train.warmup_epochs": int(train["warmup_epochs"]),
        "train.epochs": int(train["epochs"]) + int(train["warmup_epochs"]),
        "train.batch_size": int(train["batch_size"]), "train.queries_per_video": int(train["data"]["max_num_text"]),
        "train.grad_clip": float(train.get("clip_grad_norm") or 0.0),
    }


def _preset(args: Mapping[str, Any]) -> str:
    anno = str(args.get("train", {}).get("data", {}).get("anno_file", "charades")) if args else "charades"
    return "charades_sta" if "charades" in anno.lower() else "qvhighlights"


#: fmu2/snag_release checkpoints; the release evaluates the EMA weights
RELEASE = register_release(ReleaseFormat(
    name="snag", model="snag", detect=_is_snag, overrides=_overrides, rules=RULES, preset=_preset,
    weights="model_ema", infer=_infer,
))

