"""Ground-truth windows (seconds) to masked clip index ranges.

Clip ``i`` covers ``[i * clip_len, (i + 1) * clip_len)``. The original TD-DETR protocol widens
each window ``[st, ed]`` by ``margin`` seconds on both sides and floors both ends to clips::

    first = floor(max(0, st - margin) / clip_len)
    last  = min(n_clips, floor((ed + margin) / clip_len))        # exclusive

so ``[26, 36]`` with a 3 s margin at 2 s clips masks clips 11..18 (``[11, 19)``, 22-38 s). Here
``last`` is additionally never below ``ceil(ed / clip_len)``: every clip that overlaps the window
itself is masked. For ``margin >= clip_len`` (the default 3 s at 1 s and 2 s clips) this is the
original rule exactly; for smaller margins the original could leave the window's last clip (or,
for tiny windows, every clip) unmasked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from mrbench.errors import ValidationError

#: Tolerance for float noise when a window edge lies exactly on a clip boundary (e.g. 21.3/0.1).
_EPS = 1e-9

Range = tuple[int, int]


def window_range(start: float, end: float, clip_len: float, margin: float, n_clips: int) -> Range:
    """Half-open clip range ``[first, last)`` masked for one window (see the module docstring).

    The caller checks that the window lies inside the video (:func:`check_window`).
    """
    if clip_len <= 0:
        raise ValueError(f"clip_len must be positive, got {clip_len}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    first = math.floor(max(0.0, start - margin) / clip_len + _EPS)
    floored_end = math.floor((end + margin) / clip_len + _EPS)
    covering_end = math.ceil(end / clip_len - _EPS)
    last = min(n_clips, max(floored_end, covering_end))
    return first, max(last, first + 1)


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """The union of half-open ranges as sorted, disjoint, non-touching ranges."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(a, b) for a, b in merged]


def check_window(
    window: Sequence[float], n_clips: int, clip_len: float, *, qid: object = None, vid: str = "",
    file: str | None = None,
) -> None:
    """Raise :class:`ValidationError` if a window lies beyond the video's features.

    A window is beyond the video when it starts at or after the end of the last clip, or ends
    more than one clip after it (one clip of slack absorbs rounding of the clip count).
    """
    covered = n_clips * clip_len
    start, end = float(window[0]), float(window[1])
    if start >= covered or end > covered + clip_len + _EPS:
        raise ValidationError(
            f"window {list(window)} lies beyond video {vid!r}, whose features cover "
            f"{n_clips} clips x {clip_len} s = {covered:g} s (wrong --clip-len?)",
            file=file, qid=qid, field="relevant_windows",
        )


def masked_ranges(
    windows: Sequence[Sequence[float]], clip_len: float, margin: float, n_clips: int, *,
    qid: object = None, vid: str = "", file: str | None = None,
) -> list[Range]:
    """Merged clip ranges masked for all of a query's windows (every window, as the original)."""
    for window in windows:
        check_window(window, n_clips, clip_len, qid=qid, vid=vid, file=file)
    return merge_ranges(window_range(w[0], w[1], clip_len, margin, n_clips) for w in windows)


def moment_block(windows: Sequence[Sequence[float]], clip_len: float, n_clips: int) -> Range:
    """The contiguous clip block from the first to the last clip any window touches (no margin).

    Gaps between windows stay inside the block, so their relative offsets are kept (as in
    TD-DETR's video synthesizer).
    """
    first = min(math.floor(w[0] / clip_len + _EPS) for w in windows)
    last = max(math.ceil(w[1] / clip_len - _EPS) for w in windows)
    return first, min(n_clips, max(last, first + 1))


def ranges_to_seconds(ranges: Iterable[Range], clip_len: float) -> list[list[float]]:
    """Clip ranges as ``[start, end]`` seconds (clip boundaries)."""
    return [[round(a * clip_len, 6), round(b * clip_len, 6)] for a, b in ranges]


def n_masked(ranges: Iterable[Range]) -> int:
    """Number of clips in disjoint ranges."""
    return sum(b - a for a, b in ranges)
