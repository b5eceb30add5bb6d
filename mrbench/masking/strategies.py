"""What replaces the masked clips, per feature source (numpy only).

- ``noise`` (default, the original protocol): i.i.d. ``Uniform(min, max)`` where min and max are
  the global extremes of *that video's* raw array of that source (all clips and dims, before any
  normalisation), as TD-DETR's masking code computes them per loaded video.
- ``zero``: zeros.
- ``mean``: the dataset's mean clip feature of that source (over every clip of every source video
  of the split).
- ``swap``: a contiguous run of clips from one other video of the split (the donor, seeded), read
  from a seeded offset and wrapped around if the donor is shorter than the masked run.
- ``recontext``: the opposite test. The query's moment (the clip block its windows touch, no
  margin) is kept intact and written over the clips of another video (the context, seeded) at a
  seeded position; the labels move with it.

Every function takes the source arrays already truncated to the common clip count and returns
the masked arrays; the inputs are modified only with ``inplace=True`` (then they are returned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mrbench.masking.ranges import Range

STRATEGIES = ("noise", "zero", "mean", "swap", "recontext")


def apply_noise(
    arrays: Mapping[str, np.ndarray], ranges: Sequence[Range], rng: np.random.Generator,
    inplace: bool = False,
) -> dict[str, np.ndarray]:
    """Uniform noise in each source's own ``[min, max]`` (sources drawn in sorted type order).

    Drawn in float32 for sources of at most 32-bit floats, else in float64, and clipped to
    ``[min, max]`` against rounding.
    """
    out = {}
    for feature_type in sorted(arrays):
        source = arrays[feature_type]
        draw = np.float32 if source.dtype.kind == "f" and source.dtype.itemsize <= 4 else np.float64
        low, high = source.min().astype(draw), source.max().astype(draw)
        array = source if inplace else source.copy()
        for first, last in ranges:
            noise = rng.random((last - first, *source.shape[1:]), dtype=draw)
            noise *= high - low
            noise += low
            array[first:last] = np.clip(noise, low, high, out=noise)
        out[feature_type] = array
    return out


def apply_constant(
    arrays: Mapping[str, np.ndarray], ranges: Sequence[Range], fill: Mapping[str, np.ndarray] | None,
    inplace: bool = False,
) -> dict[str, np.ndarray]:
    """Zeros (``fill`` None) or one vector per source (``mean``) in every masked clip."""
    out = {}
    for feature_type, source in arrays.items():
        array = source if inplace else source.copy()
        value = 0 if fill is None else fill[feature_type].astype(source.dtype)
        for first, last in ranges:
            array[first:last] = value
        out[feature_type] = array
    return out


def apply_swap(
    arrays: Mapping[str, np.ndarray], ranges: Sequence[Range], donor: Mapping[str, np.ndarray],
    offsets: Sequence[int], inplace: bool = False,
) -> dict[str, np.ndarray]:
    """Masked range ``k`` gets the donor's clips ``offsets[k], offsets[k] + 1, ...`` (mod its length)."""
    out = {}
    for feature_type, source in arrays.items():
        array = source if inplace else source.copy()
        clips = donor[feature_type]
        for (first, last), offset in zip(ranges, offsets, strict=True):
            take = (offset + np.arange(last - first)) % clips.shape[0]
            array[first:last] = clips[take].astype(source.dtype)
        out[feature_type] = array
    return out


def apply_recontext(
    arrays: Mapping[str, np.ndarray], moment: Range, context: Mapping[str, np.ndarray], position: int
) -> dict[str, np.ndarray]:
    """The context video's clips with ``arrays[moment]`` written over clips from ``position``."""
    first, last = moment
    out = {}
    for feature_type, clips in context.items():
        array = clips.copy()
        array[position : position + last - first] = arrays[feature_type][first:last].astype(clips.dtype)
        out[feature_type] = array
    return out
