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
  (sim = 1) won whenever one was in the batch;
* ``random`` is uniform over the eligible partners (the original drew over all batch slots and
  clamped original-half indices to the last training sample, about half of all draws);
* ``dissim`` takes the argmin over eligible partners (the original's argmin hit the zeroed
  diagonal, i.e. the anchor itself);
* the output batch is ordered ``[originals ; anchor samples ; partner samples]``, so the two
  samples of a pair are not adjacent and the negative pass's roll-by-one text of an anchor
  sample is not its partner's query (pitfall 9);
* videos shorter than ``topk`` clip pairs average over all their valid pairs (the original's
  zero padding put zeros into the top-50 mean).

Composition. With ``anchor_fraction = 0.5`` and ``keep_originals = False`` a batch of B gives
B/2 originals + B synthesized samples (B = 32 -> 48, the original's effective batch). With
``anchor_fraction = 1`` and ``keep_originals = True`` a batch of B gives B originals + 2B
synthesized samples, and an epoch shows every query once unchanged and once as an anchor, as
the original's doubled epoch did (B = 16 -> 48 samples per step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

STRATEGIES = ("sim", "dissim", "mix", "random")


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


def eligible_partners(vids: Sequence[object], exclude_above: float | None = None,
                      sim: torch.Tensor | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """[B, B] bool: b may partner a when b != a, vid(b) != vid(a) and (optionally)
    sim(a, b) <= ``exclude_above`` (a near-duplicate filter, as the original's 0.9 for
    non-QVHighlights data)."""
    codes: dict[object, int] = {}
    ids = torch.tensor([codes.setdefault(v, len(codes)) for v in vids], device=device)
    ok = ids[:, None] != ids[None, :]
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
    """[B, L, 2] temporal endpoint features ``[i / n, (i + 1) / n]`` (zero at padding)."""
    n = mask.sum(1, keepdim=True).clamp(min=1).to(torch.float32)
    i = torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32)[None, :]
    out = torch.stack([i / n, (i + 1) / n], dim=-1)
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
