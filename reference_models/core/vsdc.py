"""VSDC: TD-DETR's Video Synthesizer for Dynamic Context, as a batch-level augmentation.

Given a collated training batch, VSDC picks anchors, pairs each anchor with a partner video
from the same batch, and synthesises two new training samples per pair (tddetr.md §2):

* **Partner** ("spurious pair"): ``sim(a, b)`` is the mean of the ``topk`` (50) largest
  clip-pair similarities between videos a and b, where the similarity of clips i, j is the mean
  over feature sources of their cosine. It is computed for the batch on the fly on the batch's
  device (no N x N dataset matrix). Strategies: ``sim`` (most similar), ``dissim`` (least
  similar), ``mix`` (either, p = 0.5), ``random`` (uniform).
* **Synthesis** of one sample with target video V (whose query it keeps) and other video O:
  ``own`` = floor(alpha * |bg(V)|) random background clips of V (0 if <= 2), ``oth`` =
  floor((1 - alpha) * L_O) random clips of O, its moment included (0 if <= 2); each set gets
  its own tempo jitter r ~ U(0.8, 1.2) (r < 1: keep a random floor(r * n) of them; r > 1: also
  repeat a random floor((r - 1) * n) of them once); ``own`` is then joined with the intact
  ground-truth block of V (the contiguous clip range from the first to the last clip of all its
  windows) and both sets are put in time order. The anchor's query gets ``[own(anchor) ;
  oth(partner)]`` and the partner's query ``[oth(anchor) ; own(partner)]``.
* **Labels**: the ground-truth block moves by ``shift`` whole clips, so windows move by
  ``shift * clip_len`` seconds and keep their clip alignment; per-clip saliency scores follow
  their clips (the other video's clips score 0); the TEF is recomputed for the new length.

Fixes to the original sampler (tddetr.md §7, pitfalls 6-9), deliberate deviations:

* a partner is never the anchor itself and never a clip of the same video (same ``vid``): the
  original zeroed only the diagonal, and on QVHighlights a second query of the same video
  (sim = 1) won whenever one was in the batch (``same_video_partners`` restores that rule);
* ``random`` is uniform over the eligible partners (the original drew over all batch slots and
  clamped original-half indices to the last training sample, about half of all draws);
* ``dissim`` takes the argmin over eligible partners (the original's argmin hit the zeroed
  diagonal, i.e. the anchor itself);
* the output batch is ordered ``[originals ; anchor samples ; partner samples]``, so the two
  samples of a pair are not adjacent and the negative pass's roll-by-one text of an anchor
  sample is not its partner's query (pitfall 9);
* videos shorter than ``topk`` clip pairs average over all their valid pairs (the original's
  zero padding put zeros into the top-50 mean).

Composition. With ``slots`` (the dataset presets; the release's ``SimilarityConcatDataset`` and
``SimSampler``) the trainer draws each epoch's batches from 2N slots, each query once as itself
and once as an anchor, and marks the anchor rows (batch key :data:`ANCHOR_KEY`); the anchors are
paired among themselves and the other rows pass through unchanged: a batch of 32 slots gives
about 16 originals + 16 pairs x 2 = 48 samples, and originals and anchors of a step are
independent queries. Without ``slots``: with ``anchor_fraction = 0.5`` and ``keep_originals =
False`` a batch of B gives B/2 originals + B synthesized samples (the tiny preset); with
``anchor_fraction = 1`` and ``keep_originals = True`` a batch of B gives B originals + 2B
synthesized samples, the same queries serving as originals and anchors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from reference_models.core.config import VSDCConfig

STRATEGIES = ("sim", "dissim", "mix", "random")
#: batch key of the release composition (``vsdc.slots``): True at the rows drawn as anchor slots
ANCHOR_KEY = "vsdc_anchor"


# --------------------------------------------------------------------------------------------
# similarity and partners
# --------------------------------------------------------------------------------------------
def pair_similarity(
    video: torch.Tensor, mask: torch.Tensor, sources: Sequence[tuple[int, int]], topk: int = 50
) -> torch.Tensor:
    """[B, B] video-pair similarity: the mean of the ``topk`` largest clip-pair similarities,
    a clip-pair similarity being the mean over feature ``sources`` (column ranges ``[lo, hi)``
    of ``video``) of the two clips' cosines. Only valid clips (``mask``) count; with fewer than
    ``topk`` valid pairs, the mean runs over all of them."""
    batch, length, _ = video.shape
    valid = mask.bool()
    sim = torch.zeros(batch * length, batch * length, device=video.device, dtype=torch.float32)
    for lo, hi in sources:
        part = torch.nn.functional.normalize(video[..., lo:hi].float(), dim=-1).reshape(batch * length, hi - lo)
        sim += part @ part.T
    sim /= len(sources)
    sim = sim.view(batch, length, batch, length).permute(0, 2, 1, 3).reshape(batch, batch, length * length)
    pair_valid = (valid[:, None, :, None] & valid[None, :, None, :]).reshape(batch, batch, length * length)
    k = min(topk, length * length)
    top, index = sim.masked_fill(~pair_valid, float("-inf")).topk(k, dim=-1)
    counted = pair_valid.gather(-1, index)
    total = torch.where(counted, top, torch.zeros_like(top)).sum(-1)
    return total / counted.sum(-1).clamp(min=1)


def eligible_partners(video_id: torch.Tensor, exclude_above: float | None = None,
                      sim: torch.Tensor | None = None, same_video: bool = False) -> torch.Tensor:
    """[B, B] bool: row b may partner row a when b != a, ``video_id[b] != video_id[a]`` (unless
    ``same_video``, the release's rule) and (optionally) ``sim[a, b] <= exclude_above`` (the
    release's 0.9 near-duplicate filter on non-QVHighlights data)."""
    if same_video:
        ok = ~torch.eye(len(video_id), dtype=torch.bool, device=video_id.device)
    else:
        ok = video_id[:, None] != video_id[None, :]
    if exclude_above is not None:
        if sim is None:
            raise ValueError("exclude_above needs the similarity matrix")
        ok &= sim <= exclude_above
    return ok


def choose_partners(
    anchors: torch.Tensor, eligible: torch.Tensor, strategy: str, generator: torch.Generator,
    sim: torch.Tensor | None = None,
) -> torch.Tensor:
    """Partner row for each anchor row (-1 where no partner is eligible).

    ``sim``/``dissim`` take the arg max/min of ``sim`` over the eligible rows, ``mix`` either
    with p = 0.5 per anchor, ``random`` a uniform draw over the eligible rows."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown VSDC strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    ok = eligible[anchors]
    has = ok.any(dim=1)
    if strategy == "random":
        weights = ok.float()
        weights[~has] = 1.0
        partner = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    else:
        if sim is None:
            raise ValueError(f"strategy {strategy!r} needs the similarity matrix")
        rows = sim[anchors]
        best = rows.masked_fill(~ok, float("-inf")).argmax(dim=1)
        worst = rows.masked_fill(~ok, float("inf")).argmin(dim=1)
        if strategy == "sim":
            partner = best
        elif strategy == "dissim":
            partner = worst
        else:
            coin = torch.rand(len(anchors), generator=generator, device=anchors.device) < 0.5
            partner = torch.where(coin, best, worst)
    return torch.where(has, partner, torch.full_like(partner, -1))


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------
@dataclass
class Layout:
    """Where every clip of the K synthesized videos comes from.

    ``row``/``clip`` [K, M]: source batch row and clip index of each new position; ``mask``
    [K, M]: valid new positions; ``own`` [K, M]: the position holds a clip of the target video;
    ``length`` [K]: new lengths; ``shift`` [K]: the ground-truth block's displacement in clips
    (old clip i of the block sits at new position i + shift)."""

    row: torch.Tensor
    clip: torch.Tensor
    mask: torch.Tensor
    own: torch.Tensor
    length: torch.Tensor
    shift: torch.Tensor


def _pick(eligible: torch.Tensor, count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[K, L] bool: a uniformly random subset of ``count[k]`` of the eligible positions."""
    keys = torch.rand(eligible.shape, generator=generator, device=eligible.device)
    keys = keys.masked_fill(~eligible, 2.0)
    rank = keys.argsort(dim=1).argsort(dim=1)
    return (rank < count[:, None]) & eligible


def _jittered_counts(eligible: torch.Tensor, n: torch.Tensor, jitter: tuple[float, float],
                     generator: torch.Generator) -> torch.Tensor:
    """[K, L] copies per clip (0, 1 or 2): ``n`` random eligible clips, then the tempo jitter."""
    low, high = jitter
    rate = low + (high - low) * torch.rand(n.shape, generator=generator, device=n.device, dtype=torch.float64)
    n64 = n.to(torch.float64)
    keep = torch.where(rate < 1.0, torch.floor(rate * n64), n64).long()
    extra = torch.where(rate > 1.0, torch.floor((rate - 1.0) * n64), torch.zeros_like(n64)).long()
    chosen = _pick(eligible, keep, generator)
    doubled = _pick(chosen, extra, generator)
    return chosen.long() + doubled.long()


def plan_layouts(
    lengths: torch.Tensor, gt_start: torch.Tensor, gt_end: torch.Tensor, target: torch.Tensor,
    other: torch.Tensor, other_first: torch.Tensor, generator: torch.Generator, alpha: float = 0.7,
    jitter: tuple[float, float] = (0.8, 1.2), min_count: int = 2,
) -> Layout:
    """Synthesized layouts for K (target, other) pairs of batch rows.

    ``lengths`` [B] valid clips per row; ``gt_start``/``gt_end`` [B] the ground-truth block
    ``[start, end)`` in clips; ``target``/``other``/``other_first`` [K]. The new video is
    ``[own ; oth]``, or ``[oth ; own]`` where ``other_first``. A set of ``min_count`` clips or
    fewer is dropped (the original's "> 2" rule)."""
    device = lengths.device
    max_len = int(lengths.max())
    pos = torch.arange(max_len, device=device)[None, :]
    t_len, o_len = lengths[target][:, None], lengths[other][:, None]
    t_start, t_end = gt_start[target][:, None], gt_end[target][:, None]
    background = (pos < t_len) & ~((pos >= t_start) & (pos < t_end))

    def count_of(size: torch.Tensor, fraction: float) -> torch.Tensor:
        n = torch.floor(size.to(torch.float64) * fraction).long()
        return torch.where(n > min_count, n, torch.zeros_like(n))

    own = _jittered_counts(background, count_of(background.sum(1), alpha), jitter, generator)
    own = own + ((pos >= t_start) & (pos < t_end)).long()
    oth = _jittered_counts(pos < o_len, count_of(lengths[other], 1.0 - alpha), jitter, generator)

    flip = other_first[:, None]
    first, second = torch.where(flip, oth, own), torch.where(flip, own, oth)
    counts = torch.cat([first, second], dim=1)
    length = counts.sum(1)
    cum = counts.cumsum(1)
    new_pos = torch.arange(int(length.max()), device=device)[None, :].expand(len(target), -1)
    flat = torch.searchsorted(cum, new_pos.contiguous(), right=True).clamp(max=2 * max_len - 1)
    segment, clip = flat // max_len, flat % max_len
    first_row = torch.where(other_first, other, target)[:, None]
    second_row = torch.where(other_first, target, other)[:, None]
    mask = new_pos < length[:, None]
    own_pos = (segment == other_first.long()[:, None]) & mask
    before = torch.where(pos < t_start, own, torch.zeros_like(own)).sum(1)
    offset = torch.where(other_first, oth.sum(1), torch.zeros_like(before))
    return Layout(
        row=torch.where(segment == 0, first_row, second_row).masked_fill(~mask, 0),
        clip=clip.masked_fill(~mask, 0),
        mask=mask,
        own=own_pos,
        length=length,
        shift=offset + before - gt_start[target],
    )


# --------------------------------------------------------------------------------------------
# the batch augmentation
# --------------------------------------------------------------------------------------------
def tef(mask: torch.Tensor) -> torch.Tensor:
    """[B, L, 2] temporal endpoint features ``[i / n, i / n + 1 / n]`` (zero at padding), in
    the float32 arithmetic of :mod:`reference_models.core.data`."""
    n = mask.sum(1, keepdim=True).clamp(min=1).to(torch.float32)
    i = torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32)[None, :]
    out = torch.stack([i / n, i / n + 1.0 / n], dim=-1)
    return out * mask[..., None].to(out.dtype)


def gt_blocks(spans: torch.Tensor, span_mask: torch.Tensor, lengths: torch.Tensor,
              eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth block ``[start, end)`` in clips [B] from normalised (center, width) spans
    [B, W, 2] (``span_mask`` [B, W] marks real windows): floor of the first start to ceil of
    the last end, in clip units, clamped to the video."""
    n = lengths.to(spans.dtype)[:, None]
    start = (spans[..., 0] - spans[..., 1] / 2) * n
    end = (spans[..., 0] + spans[..., 1] / 2) * n
    valid = span_mask.bool()
    first = torch.floor(start + eps).masked_fill(~valid, float("inf")).amin(1)
    last = torch.ceil(end - eps).masked_fill(~valid, float("-inf")).amax(1)
    first = first.clamp(min=0).long()
    last = torch.minimum(last.long(), lengths)
    return first, torch.maximum(last, first + 1)


def _gather_rows(value: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return value.index_select(0, rows)


class VSDC:
    """The batch augmentation: ``vsdc(batch) -> batch`` on the collated training batch of
    :mod:`reference_models.core.data` (keys in ``docs/models.md``; labels already sampled).

    ``source_slices``: column ranges ``[lo, hi)`` of the video feature sources in
    ``batch["video"]`` (TEF excluded); ``tef``: the last two video columns are the TEF. Random
    draws use a ``torch.Generator`` seeded with ``seed`` on the batch's device; its state is
    ``state_dict()`` / ``load_state_dict()`` (saved by the trainer, so ``--resume`` continues
    exactly).

    Output rows: ``[originals ; anchor samples ; partner samples]`` (module docstring). Per-query
    keys (text, spans, index, video_id, clip_len, any other ``[B, ...]`` tensor) follow the
    sample's query; ``video``/``video_mask``/``relevant``/``saliency_all`` are rebuilt from the
    layout; ``spans`` move with the ground-truth block; saliency pair indices inside the block move
    with it and the others are redrawn among the new clips of the same relevance.
    """

    CLIP_KEYS = ("video", "video_mask", "relevant", "saliency_all")

    def __init__(self, source_slices: Sequence[tuple[int, int]], tef: bool = True,
                 config: VSDCConfig | None = None, seed: int = 0) -> None:
        self.config = config or VSDCConfig()
        c = self.config
        if c.strategy not in STRATEGIES:
            raise ValueError(f"unknown VSDC strategy {c.strategy!r} (choose from {', '.join(STRATEGIES)})")
        if not 0.0 <= c.alpha <= 1.0 or not 0.0 <= c.anchor_fraction <= 1.0:
            raise ValueError("VSDC alpha and anchor_fraction must lie in [0, 1]")
        self.sources = [(int(lo), int(hi)) for lo, hi in source_slices]
        if not self.sources:
            raise ValueError("VSDC needs at least one video feature source")
        self.tef = tef
        self.seed = seed
        self.generator: torch.Generator | None = None
        self._pending: torch.Tensor | None = None

    @property
    def slots(self) -> bool:
        """The trainer draws the release's 2N-slot batches and marks the anchor rows."""
        return self.config.slots

    # -- RNG state ------------------------------------------------------------------------------
    def _generator(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._pending is not None:
                self.generator.set_state(self._pending)
                self._pending = None
        return self.generator

    def state_dict(self) -> dict[str, object]:
        state = self.generator.get_state() if self.generator is not None else self._pending
        return {"seed": self.seed, "generator": state}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.seed = int(state["seed"])
        self.generator = None
        self._pending = state.get("generator")

    # -- the augmentation ----------------------------------------------------------------------
    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        slot_anchor = batch.get(ANCHOR_KEY)
        if slot_anchor is not None:
            batch = {k: v for k, v in batch.items() if k != ANCHOR_KEY}
        mask = batch["video_mask"].bool()
        size = mask.shape[0]
        device = mask.device
        if slot_anchor is not None:
            slot_anchor = slot_anchor.bool().to(device)
            n_anchors = int(slot_anchor.sum())
        else:
            n_anchors = int(round(c.anchor_fraction * size))
        if size < 2 or n_anchors == 0:
            return self._originals_only(batch, slot_anchor)
        gen = self._generator(device)
        lengths = mask.sum(1)
        if slot_anchor is not None:
            anchors = slot_anchor.nonzero().squeeze(1)
        else:
            anchors = torch.randperm(size, generator=gen, device=device)[:n_anchors].sort().values
        sim = None
        if c.strategy != "random" or c.exclude_above is not None:
            sim = pair_similarity(batch["video"], mask, self.sources, c.topk)
        eligible = eligible_partners(batch["video_id"], c.exclude_above, sim, c.same_video_partners)
        if slot_anchor is not None:
            eligible = eligible & slot_anchor[None, :]  # the release pairs anchors with anchors
        partner = choose_partners(anchors, eligible, c.strategy, gen, sim)
        paired = partner >= 0
        anchors, partner = anchors[paired], partner[paired]
        if slot_anchor is not None:
            originals = (~slot_anchor).nonzero().squeeze(1)
        elif c.keep_originals:
            originals = torch.arange(size, device=device)
        else:
            keep = torch.ones(size, dtype=torch.bool, device=device)
            keep[anchors] = False
            originals = keep.nonzero().squeeze(1)
        if len(anchors) == 0:
            return self._originals_only(batch, slot_anchor)

        start, end = self._gt_blocks(batch, lengths)
        n_pairs = len(anchors)
        target = torch.cat([anchors, partner])
        other = torch.cat([partner, anchors])
        other_first = torch.arange(2 * n_pairs, device=device) >= n_pairs
        lay = plan_layouts(lengths, start, end, target, other, other_first, gen, c.alpha,
                           (c.jitter_low, c.jitter_high), c.min_count)
        return self._assemble(batch, originals, target, lay, start, end, gen)

    @staticmethod
    def _originals_only(batch: dict[str, torch.Tensor], slot_anchor: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The batch unchanged, less its anchor slots (a slot batch whose anchors found no partner)."""
        if slot_anchor is None or not slot_anchor.any() or slot_anchor.all():
            return batch
        keep = (~slot_anchor).nonzero().squeeze(1)
        size = slot_anchor.shape[0]
        return {k: v.index_select(0, keep) if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == size else v
                for k, v in batch.items()}

    def _gt_blocks(self, batch: dict[str, torch.Tensor], lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground-truth block per row: the clips of every sampled window and every relevant clip."""
        start, end = gt_blocks(batch["spans"], batch["span_mask"], lengths)
        if "relevant" in batch:
            relevant = batch["relevant"].bool() & batch["video_mask"].bool()
            pos = torch.arange(relevant.shape[1], device=relevant.device)[None, :]
            has = relevant.any(1)
            first = torch.where(relevant, pos, relevant.shape[1]).amin(1)
            last = torch.where(relevant, pos + 1, 0).amax(1)
            start = torch.where(has, torch.minimum(start, first), start)
            end = torch.where(has, torch.maximum(end, last), end)
        return start, end

    def _assemble(self, batch: dict[str, torch.Tensor], originals: torch.Tensor, target: torch.Tensor,
                  lay: Layout, start: torch.Tensor, end: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """The output batch: the ``originals`` rows unchanged, then the synthesized rows."""
        device = target.device
        mask = batch["video_mask"].bool()
        lengths = mask.sum(1)
        n_orig, n_syn = len(originals), len(target)
        width = max(int(lengths[originals].max()) if n_orig else 0, lay.row.shape[1])
        pos = torch.arange(width, device=device)[None, :]

        def pad(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.pad(x, (0, width - x.shape[1]))

        # one layout for every output row; an original is its own video with shift 0
        rows = torch.cat([originals[:, None].expand(-1, width), pad(lay.row)])
        clips = torch.cat([pos.expand(n_orig, -1).clamp(max=mask.shape[1] - 1), pad(lay.clip)])
        new_mask = torch.cat([pos < lengths[originals][:, None], pad(lay.mask)])
        own = torch.cat([new_mask[:n_orig], pad(lay.own)])
        query = torch.cat([originals, target])
        shift = torch.cat([torch.zeros(n_orig, dtype=torch.long, device=device), lay.shift])
        new_len = new_mask.sum(1)
        old_len = lengths[query]
        synthetic = torch.arange(n_orig + n_syn, device=device) >= n_orig

        out: dict[str, torch.Tensor] = {}
        for key, value in batch.items():
            if key not in self.CLIP_KEYS and torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == len(mask):
                out[key] = _gather_rows(value, query)
        made = batch["video"][lay.row, lay.clip].masked_fill(~lay.mask[..., None], 0)
        if self.tef:
            made[..., -2:] = tef(lay.mask).to(made.dtype)
        out["video"] = torch.cat([pad_length(batch["video"].index_select(0, originals), width),
                                  pad_length(made, width)])
        out["video_mask"] = new_mask
        relevant = None
        if "relevant" in batch:
            relevant = batch["relevant"].bool()[rows, clips] & own
            out["relevant"] = relevant
        if "saliency_all" in batch:
            out["saliency_all"] = batch["saliency_all"][rows, clips] * own.to(batch["saliency_all"].dtype)

        if "spans" in batch:
            spans = out["spans"]
            scale = old_len.to(spans.dtype)[:, None]
            s = (spans[..., 0] - spans[..., 1] / 2) * scale + shift[:, None]
            e = (spans[..., 0] + spans[..., 1] / 2) * scale + shift[:, None]
            n = new_len.to(spans.dtype)[:, None]
            moved = torch.stack([(s + e) / (2 * n), (e - s) / n], dim=-1)
            out["spans"] = torch.where(synthetic[:, None, None], moved, spans)

        if "saliency_pos" in out and "saliency_neg" in out and relevant is not None:
            block_start = torch.cat([torch.zeros(n_orig, dtype=torch.long, device=device), start[target]])
            block_end = torch.cat([lengths[originals], end[target]])
            out["saliency_pos"], out["saliency_neg"] = self._move_pairs(
                out["saliency_pos"], out["saliency_neg"], block_start, block_end, shift, synthetic,
                new_mask, relevant, gen)
        return out

    @staticmethod
    def _move_pairs(pos: torch.Tensor, neg: torch.Tensor, block_start: torch.Tensor, block_end: torch.Tensor,
                    shift: torch.Tensor, synthetic: torch.Tensor, new_mask: torch.Tensor,
                    new_relevant: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Saliency pair clip indices [K, P] in the new videos. Indices inside the ground-truth
        block move with it. A positive outside it is redrawn among the new relevant clips. A
        negative of a synthesized row is redrawn among the new non-relevant clips when it lies
        outside the block (its clip was dropped or moved), when it equals its positive, or when
        its pair repeats the first pair (the data module's fallbacks for a video without
        non-relevant clips, which the new video now has)."""
        def inside(index: torch.Tensor) -> torch.Tensor:
            return (index >= block_start[:, None]) & (index < block_end[:, None])

        def draw(pool: torch.Tensor, count: int) -> torch.Tensor:
            keys = torch.rand((pos.shape[0], count, pool.shape[1]), generator=gen, device=pool.device)
            return keys.masked_fill(~pool[:, None, :], -1.0).argmax(-1)

        outside = new_mask & ~new_relevant
        repeats = torch.zeros_like(neg, dtype=torch.bool)
        repeats[:, 1:] = (pos[:, 1:] == pos[:, :1]) & (neg[:, 1:] == neg[:, :1])
        redraw_neg = synthetic[:, None] & outside.any(1, keepdim=True) & (~inside(neg) | (neg == pos) | repeats)
        new_pos = torch.where(inside(pos), pos + shift[:, None], draw(new_relevant, pos.shape[1]))
        new_neg = torch.where(redraw_neg, draw(outside, neg.shape[1]), neg + shift[:, None])
        return new_pos, new_neg.clamp(min=0)


def pad_length(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x`` [B, L, ...] zero-padded or cut to length ``width`` along dim 1."""
    if x.shape[1] >= width:
        return x[:, :width]
    pad = x.new_zeros((x.shape[0], width - x.shape[1], *x.shape[2:]))
    return torch.cat([x, pad], dim=1)
