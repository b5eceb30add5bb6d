"""Masked clip ranges: hand-computed cases at 2 s (QVHighlights, TACoS) and 1 s (Charades-STA)
clips, video edges, overlapping windows, and invariants under random windows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrbench.errors import ValidationError
from mrbench.masking.ranges import (
    check_window,
    masked_ranges,
    merge_ranges,
    moment_block,
    ranges_to_seconds,
    window_range,
)


def test_protocol_example_26_36() -> None:
    # widened [23, 39]; floor(23/2) = 11, floor(39/2) = 19 (exclusive): clips 11..18 = 22-38 s
    assert window_range(26, 36, 2.0, 3.0, 75) == (11, 19)
    assert ranges_to_seconds([(11, 19)], 2.0) == [[22.0, 38.0]]
    # the project page's figure: [22, 40] -> [19, 43] -> clips 9..20 (18-42 s)
    assert window_range(22, 40, 2.0, 3.0, 75) == (9, 21)


@pytest.mark.parametrize(
    ("windows", "n_clips", "expected"),
    [
        ([[118, 136]], 75, [(57, 69)]),  # QVH val qid 5071: floor(115/2), floor(139/2)
        ([[0, 16]], 63, [(0, 9)]),  # qid 8737 (126 s): start edge, floor(19/2) = 9
        ([[0, 2], [52, 74], [84, 92]], 75, [(0, 2), (24, 38), (40, 47)]),  # qid 3359
        ([[122, 132], [134, 144], [146, 150]], 75, [(59, 75)]),  # qid 1872: overlaps merge, end edge
        ([[0, 74], [76, 142], [144, 150]], 75, [(0, 75)]),  # qid 2638: the whole video
    ],
)
def test_qvhighlights_2s(windows: list, n_clips: int, expected: list) -> None:
    assert masked_ranges(windows, 2.0, 3.0, n_clips) == expected


def test_charades_1s() -> None:
    # test qid 12404: [24.3, 30.4] in a 30.96 s video (31 clips): floor(21.3) = 21,
    # floor(33.4) = 33 clipped to 31
    assert masked_ranges([[24.3, 30.4]], 1.0, 3.0, 31) == [(21, 31)]
    # [1.82, 5.5]: start clipped to 0, floor(8.5) = 8
    assert masked_ranges([[1.82, 5.5]], 1.0, 3.0, 31) == [(0, 8)]
    # a 1 s margin at 1 s clips: floor(6.1) = 6, floor(9.9) = 9
    assert masked_ranges([[7.1, 8.9]], 1.0, 1.0, 31) == [(6, 9)]


def test_tacos_2s() -> None:
    # s30-d52_0 [4.7959, 12.0408]: floor(1.7959/2) = 0, floor(15.0408/2) = 7
    assert masked_ranges([[4.795918367346939, 12.040816326530614]], 2.0, 3.0, 125) == [(0, 7)]
    # s30-d52_4 [43.1973, 54.8299]: floor(40.1973/2) = 20, floor(57.8299/2) = 28
    assert masked_ranges([[43.19727891156463, 54.82993197278912]], 2.0, 3.0, 125) == [(20, 28)]
    # s30-d52_5 [55.2041, 92.8231]: floor(52.2041/2) = 26, floor(95.8231/2) = 47
    assert masked_ranges([[55.204081632653065, 92.82312925170068]], 2.0, 3.0, 125) == [(26, 47)]


def test_small_margins_still_cover_the_window() -> None:
    # the original floor rule gives floor(35/2) = 17 and leaves clip 17 (34-36 s) unmasked
    assert window_range(26, 35, 2.0, 0.0, 75) == (13, 18)
    # a tiny window inside one clip: the floor rule gives the empty range [1, 1)
    assert window_range(3.0, 3.5, 2.0, 0.0, 75) == (1, 2)
    # clip boundaries are exact with margin 0
    assert window_range(26, 36, 2.0, 0.0, 75) == (13, 18)


def test_merge_ranges() -> None:
    assert merge_ranges([(5, 9), (0, 3), (3, 4), (8, 12), (20, 21)]) == [(0, 4), (5, 12), (20, 21)]
    assert merge_ranges([]) == []


def test_windows_beyond_the_video() -> None:
    with pytest.raises(ValidationError, match="beyond video 'v'.*10 clips x 2.0 s = 20 s") as info:
        masked_ranges([[22, 30]], 2.0, 3.0, 10, qid=7, vid="v", file="a.jsonl")
    assert "qid 7" in str(info.value) and "relevant_windows" in str(info.value)
    with pytest.raises(ValidationError):
        check_window([10, 24], 10, 2.0)  # ends more than a clip after the last one
    check_window([10, 22], 10, 2.0)  # within one clip of slack: allowed, the range is clipped
    assert masked_ranges([[10, 22]], 2.0, 3.0, 10) == [(3, 10)]


def test_moment_block() -> None:
    assert moment_block([[26, 36]], 2.0, 75) == (13, 18)
    assert moment_block([[3.5, 4.2], [10, 11]], 2.0, 75) == (1, 6)  # gaps stay inside
    assert moment_block([[24.3, 30.4]], 1.0, 31) == (24, 31)


windows_strategy = st.lists(
    st.tuples(st.floats(0, 140, allow_nan=False), st.floats(0.1, 40, allow_nan=False)), min_size=1, max_size=5
)


def _floor(x: float) -> int:
    """floor with the implementation's tolerance for float noise at clip boundaries."""
    return math.floor(x + 1e-9)


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


@settings(max_examples=200, deadline=None)
@given(
    windows=windows_strategy,
    clip_len=st.sampled_from([0.5, 1.0, 2.0, 1.6]),
    margin=st.sampled_from([0.0, 0.5, 1.0, 3.0, 5.0]),
)
def test_range_invariants(windows: list, clip_len: float, margin: float) -> None:
    n_clips = math.ceil(180 / clip_len)
    windows = [[s, min(s + length, 180.0)] for s, length in windows]
    ranges = masked_ranges(windows, clip_len, margin, n_clips)
    masked = {c for a, b in ranges for c in range(a, b)}
    # sorted, disjoint, non-touching, inside the video
    assert all(a < b for a, b in ranges) and all(b1 < a2 for (_, b1), (a2, _) in zip(ranges, ranges[1:], strict=False))
    assert 0 <= ranges[0][0] and ranges[-1][1] <= n_clips
    allowed = set()
    for start, end in windows:
        # every clip overlapping the window itself is masked
        assert set(range(_floor(start / clip_len), min(n_clips, _ceil(end / clip_len)))) <= masked
        first = _floor(max(0, start - margin) / clip_len)
        floored_end = min(n_clips, _floor((end + margin) / clip_len))
        if margin >= clip_len:  # then the rule is exactly the original floor rule
            assert set(range(first, floored_end)) <= masked
        allowed |= set(range(first, min(n_clips, max(floored_end, _ceil(end / clip_len)))))
    # nothing outside the floored, widened windows (or the window's own clips) is masked
    assert masked <= allowed
