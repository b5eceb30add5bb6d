"""Hand cases for masking (issue 18): clip ranges at exact clip boundaries and with partial
clips, range merging, the strategies' replacement values, the per-query plans and the
relabelling of ``recontext`` variants. Expected values are worked out in the comments from the
documented protocol (mrbench/masking/ranges.py's docstring, docs/contracts.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mrbench.data.schema import Annotations, Query
from mrbench.errors import MrbenchError, ValidationError
from mrbench.masking.build import QueryPlan, masked_vid, plan_queries, qid_hash, relabel
from mrbench.masking.ranges import (
    check_window,
    masked_ranges,
    merge_ranges,
    moment_block,
    n_masked,
    ranges_to_seconds,
    window_range,
)
from mrbench.masking.strategies import apply_constant, apply_noise, apply_recontext, apply_swap


@pytest.mark.parametrize(
    ("window", "clip_len", "margin", "n_clips", "expected"),
    [
        ((26.0, 36.0), 2.0, 3.0, 75, (11, 19)),  # the docstring's case: floor(23/2), floor(39/2)
        ((26.0, 35.0), 2.0, 0.5, 75, (12, 18)),  # small margin: floor(35.5/2) = 17 < ceil(35/2) = 18
        ((20.0, 30.0), 2.0, 0.0, 75, (10, 15)),  # edges on clip boundaries, no margin
        ((0.0, 0.5), 2.0, 0.0, 75, (0, 1)),  # inside the first clip
        ((4.0, 4.0), 2.0, 0.0, 75, (2, 3)),  # zero length on a boundary: still one clip
        ((1.0, 3.0), 2.0, 2.0, 75, (0, 2)),  # start - margin < 0 -> clip 0; floor(5/2) = 2
        ((140.0, 149.0), 2.0, 3.0, 75, (68, 75)),  # the end margin is cut at n_clips
        ((21.3, 21.5), 0.1, 0.0, 300, (213, 215)),  # 21.3 / 0.1 = 212.99999999999997 -> 213
        ((7.0, 9.5), 1.0, 0.0, 20, (7, 10)),  # partial last clip 9 is masked (ceil)
    ],
)
def test_window_range_hand_values(window: tuple[float, float], clip_len: float, margin: float,
                                  n_clips: int, expected: tuple[int, int]) -> None:
    """Clip ranges [first, last) of the TD-DETR protocol, never missing a covered clip."""
    assert window_range(window[0], window[1], clip_len, margin, n_clips) == expected


def test_window_range_rejects_bad_arguments() -> None:
    """A non-positive clip length or a negative margin is an error (zero margin is fine)."""
    with pytest.raises(ValueError):
        window_range(0.0, 1.0, 0.0, 0.0, 10)
    with pytest.raises(ValueError):
        window_range(0.0, 1.0, 1.0, -0.5, 10)
    assert window_range(0.0, 1.0, 1.0, 0.0, 10) == (0, 1)


def test_merge_ranges_merges_overlapping_and_touching() -> None:
    """Sorted, disjoint, non-touching: [0,2)+[2,4) touch -> [0,4); [5,9)+[6,7) nested -> [5,9)."""
    assert merge_ranges([(6, 7), (2, 4), (0, 2), (5, 9), (11, 12)]) == [(0, 4), (5, 9), (11, 12)]
    assert merge_ranges([(3, 5), (1, 4)]) == [(1, 5)]
    assert merge_ranges([]) == []


def test_check_window_bounds() -> None:
    """10 clips x 2 s = 20 s: a start at 20 is beyond; an end up to 22 (one clip of slack) is
    fine, 22.01 is beyond."""
    check_window([19.9, 22.0], 10, 2.0)
    with pytest.raises(ValidationError, match="beyond"):
        check_window([20.0, 21.0], 10, 2.0)
    with pytest.raises(ValidationError, match="beyond"):
        check_window([10.0, 22.01], 10, 2.0, qid=3, vid="v")


def test_masked_ranges_merges_the_windows_of_a_query() -> None:
    """Windows [2, 4] and [6, 8] with a 1-s margin at 1-s clips: [1, 5) and [5, 9) -> [1, 9)."""
    assert masked_ranges([[2.0, 4.0], [6.0, 8.0]], 1.0, 1.0, 20) == [(1, 9)]
    assert masked_ranges([[2.0, 4.0], [12.0, 13.0]], 1.0, 0.0, 20) == [(2, 4), (12, 13)]
    with pytest.raises(ValidationError):
        masked_ranges([[2.0, 4.0], [30.0, 31.0]], 1.0, 0.0, 20)


def test_moment_block_spans_every_window_and_its_partial_clips() -> None:
    """[3, 5.5] and [10, 11] at 2-s clips: floor(1.5) = 1 to ceil(5.5) = 6 -> [1, 6); cut at n."""
    assert moment_block([[3.0, 5.5], [10.0, 11.0]], 2.0, 50) == (1, 6)
    assert moment_block([[3.0, 5.5], [10.0, 11.0]], 2.0, 4) == (1, 4)
    assert moment_block([[4.0, 4.0]], 2.0, 50) == (2, 3)


def test_ranges_to_seconds_and_counts() -> None:
    """Clip boundaries in seconds, rounded to 6 decimals (0.1 * 3 -> 0.3, not 0.30000000000000004)."""
    assert ranges_to_seconds([(11, 19), (20, 21)], 2.0) == [[22.0, 38.0], [40.0, 42.0]]
    assert ranges_to_seconds([(3, 7)], 0.1) == [[0.3, 0.7]]
    assert n_masked([(11, 19), (20, 21)]) == 9


def feature_arrays() -> dict[str, np.ndarray]:
    """Two sources of 6 clips: 'a' float32 in [-3, 5], 'b' float64 in [10, 20]."""
    a = np.linspace(-3, 5, 12, dtype=np.float32).reshape(6, 2)
    b = np.linspace(10, 20, 18).reshape(6, 3)
    return {"a": a, "b": b}


def test_noise_stays_in_each_sources_own_range_and_only_in_the_ranges() -> None:
    """Masked clips 1..2 and 4 get values in [min, max] of their own source; other clips keep
    their values; the inputs are untouched (not in place); float32 stays float32."""
    arrays = feature_arrays()
    out = apply_noise(arrays, [(1, 3), (4, 5)], np.random.default_rng(0))
    for name, low, high in (("a", -3.0, 5.0), ("b", 10.0, 20.0)):
        masked = out[name][[1, 2, 4]]
        assert masked.min() >= low and masked.max() <= high
        assert not np.array_equal(masked, arrays[name][[1, 2, 4]])
        np.testing.assert_array_equal(out[name][[0, 3, 5]], arrays[name][[0, 3, 5]])
        assert out[name].dtype == arrays[name].dtype
    # the noise spreads over the range (not a constant at one end)
    assert out["b"][[1, 2, 4]].std() > 1.0
    np.testing.assert_array_equal(arrays["a"], feature_arrays()["a"])
    inplace = feature_arrays()
    result = apply_noise(inplace, [(0, 1)], np.random.default_rng(0), inplace=True)
    assert result["a"] is inplace["a"]


def test_noise_is_seeded_and_sources_draw_in_sorted_order() -> None:
    """Same seed -> same bytes; the dict's order does not change the draws."""
    arrays = feature_arrays()
    first = apply_noise(arrays, [(1, 3)], np.random.default_rng(5))
    reordered = apply_noise({"b": arrays["b"], "a": arrays["a"]}, [(1, 3)], np.random.default_rng(5))
    for name in arrays:
        np.testing.assert_array_equal(first[name], reordered[name])


def test_constant_strategies_fill_zero_or_the_mean() -> None:
    """zero: zeros in the ranges; mean: the given vector, cast to the source dtype."""
    arrays = feature_arrays()
    zero = apply_constant(arrays, [(2, 4)], None)
    assert zero["a"][2:4].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    np.testing.assert_array_equal(zero["a"][:2], arrays["a"][:2])
    mean = apply_constant(arrays, [(0, 1), (5, 6)], {"a": np.array([1.5, -1.5]), "b": np.array([7.0, 8.0, 9.0])})
    assert mean["a"][0].tolist() == [1.5, -1.5] and mean["a"][5].tolist() == [1.5, -1.5]
    assert mean["b"][5].tolist() == [7.0, 8.0, 9.0]
    assert mean["a"].dtype == np.float32
    np.testing.assert_array_equal(arrays["a"], feature_arrays()["a"])


def test_swap_takes_the_donors_clips_from_the_offset_with_wraparound() -> None:
    """Range [1, 4) from offset 2 of a 4-clip donor: donor clips 2, 3, 0; range [5, 6) from 1."""
    arrays = {"a": np.zeros((6, 1))}
    donor = {"a": np.array([[10.0], [11.0], [12.0], [13.0]])}
    out = apply_swap(arrays, [(1, 4), (5, 6)], donor, [2, 1])
    assert out["a"][:, 0].tolist() == [0.0, 12.0, 13.0, 10.0, 0.0, 11.0]
    assert arrays["a"].sum() == 0.0


def test_recontext_writes_the_moment_over_the_context_at_the_position() -> None:
    """Moment clips [1, 3) of the source over a 5-clip context from position 2."""
    arrays = {"a": np.array([[1.0], [2.0], [3.0], [4.0]])}
    context = {"a": np.array([[-1.0], [-2.0], [-3.0], [-4.0], [-5.0]])}
    out = apply_recontext(arrays, (1, 3), context, 2)
    assert out["a"][:, 0].tolist() == [-1.0, -2.0, 2.0, 3.0, -5.0]
    assert context["a"][2, 0] == -3.0


def record(qid: Any, vid: str, windows: list[list[float]], duration: float = 40.0, **extra: Any) -> Query:
    """A validated annotation record."""
    return Query.from_dict({"qid": qid, "query": "q", "vid": vid, "duration": duration,
                            "relevant_windows": windows, **extra})


def source(records: list[Query], clip_len: float = 2.0) -> tuple[Annotations, float]:
    """The planner's inputs for in-memory records: their annotations and the clip length."""
    return Annotations(records), clip_len


def test_plan_queries_noise_plans_hand_values() -> None:
    """Per query: the new vid, the source's clip count, the merged ranges with the margin, and
    the (seed, qid hash) noise key; qids 5 and "5" differ in the key."""
    records = [record(5, "v1", [[4.0, 9.0]]), record("x", "v2", [[0.0, 2.0], [3.0, 4.0]])]
    plans = plan_queries(*source(records), {"v1": 20, "v2": 10}, "noise", 1.0, seed=3)
    assert [p.vid for p in plans] == ["v1__mask_q5", "v2__mask_qx"]
    # [4, 9] +- 1 s at 2-s clips: floor(3/2) = 1 .. floor(10/2) = 5 -> [1, 5)
    # [0, 2] and [3, 4]: [0, 1) ... floor(3/2) = 1; [1, 2) .. floor(5/2) = 2 -> merged [0, 2)
    assert [p.ranges for p in plans] == [((1, 5),), ((0, 2),)]
    assert [(p.source_clips, p.n_clips) for p in plans] == [(20, 20), (10, 10)]
    assert plans[0].noise_key == (3, qid_hash(5)) and qid_hash(5) != qid_hash("5")
    assert plans[0].key == "5" and plans[0].donor is None and plans[0].context is None
    assert plans[0].qid == 5 and plans[1].qid == "x" and plans[0].source_vid == "v1"


def test_plan_queries_rejects_colliding_keys_and_unknown_strategies() -> None:
    """qid 5 and "5" share the manifest key "5"; a query without windows cannot be masked."""
    with pytest.raises(ValidationError, match="collides with qid 5 "):
        plan_queries(*source([record(5, "v1", [[0.0, 2.0]]), record("5", "v1", [[0.0, 2.0]])]),
                     {"v1": 20}, "noise", 0.0, 0)
    with pytest.raises(MrbenchError, match="unknown strategy"):
        plan_queries(*source([record(5, "v1", [[0.0, 2.0]])]), {"v1": 20}, "blur", 0.0, 0)
    with pytest.raises(ValidationError, match="beyond") as info:
        plan_queries(*source([record(5, "v1", [[30.0, 32.0]])]), {"v1": 10}, "noise", 0.0, 0)
    assert info.value.file is None  # in-memory records: no file to name


def test_plan_queries_swap_never_takes_the_own_video() -> None:
    """The donor is another video of the split; offsets lie inside the donor."""
    records = [record(i, f"v{i % 3}", [[2.0, 6.0]]) for i in range(12)]
    lengths = {"v0": 20, "v1": 15, "v2": 12}
    plans = plan_queries(*source(records), lengths, "swap", 0.0, seed=1)
    for plan in plans:
        assert plan.donor is not None and plan.donor != plan.source_vid
        assert plan.donor_clips == lengths[plan.donor]
        assert len(plan.offsets) == len(plan.ranges)
        assert all(0 <= o < lengths[plan.donor] for o in plan.offsets)
    assert len({p.donor for p in plans}) == 3
    with pytest.raises(MrbenchError, match="two videos"):
        plan_queries(*source(records[:1]), {"v0": 20}, "swap", 0.0, 0)


def test_plan_queries_recontext_fits_the_moment_inside_a_host() -> None:
    """A 3-clip moment ([2, 7] s at 2-s clips: floor(1) .. ceil(3.5) = [1, 4)) goes to another
    video with room for it, inside its annotated duration; the new video has the host's clips
    and one range of 3 clips."""
    records = [record(1, "long", [[2.0, 7.0]], duration=40.0), record(2, "short", [[0.0, 2.0]], duration=5.0),
               record(3, "mid", [[0.0, 2.0]], duration=8.0)]
    # "short": 2 usable clips (no room); "mid": 4 usable clips of 10 (duration 8 s)
    plans = plan_queries(*source(records), {"long": 20, "short": 10, "mid": 10}, "recontext", 0.0, seed=0)
    plan = plans[0]
    assert plan.context == "mid" and plan.moment == (1, 4)
    assert plan.n_clips == 10
    (first, last), = plan.ranges
    assert last - first == 3 and 0 <= first <= 1
    with pytest.raises(ValidationError, match="room"):
        plan_queries(*source(records[:2]), {"long": 20, "short": 10}, "recontext", 0.0, 0)


def plan_for(moment: tuple[int, int], position: int, n_clips: int, context: str | None = "host") -> QueryPlan:
    """A recontext plan moving ``moment`` to start at clip ``position`` of a host of n clips."""
    size = moment[1] - moment[0]
    return QueryPlan(key="1", qid=1, vid=masked_vid("v", 1), source_vid="v", source_clips=30, n_clips=n_clips,
                     ranges=((position, position + size),), noise_key=(0, 0), context=context, moment=moment)


def test_relabel_recontext_moves_windows_and_clips_by_whole_clips() -> None:
    """Moment [5, 8) moved to clip 2 at 2-s clips: shift -3 clips = -6 s. Window [10, 15.5] ->
    [4, 9.5] (int ends stay ints); clip ids 5, 6, 7 -> 2, 3, 4 with their scores; duration
    becomes the host's."""
    rec = record(1, "v", [[10, 15.5]], duration=60.0, relevant_clip_ids=[5, 6, 7],
                 saliency_scores=[[1, 2, 3], [4, 4, 4], [0, 1, 2]])
    moved = relabel(rec, plan_for((5, 8), 2, 12), 2.0, 24.0)
    assert moved.vid == "v__mask_q1" and moved.duration == 24.0
    assert moved.windows == [[4, 9.5]]
    assert isinstance(moved.windows[0][0], int)
    assert moved.relevant_clip_ids == [2, 3, 4]
    assert moved.saliency_scores == [[1, 2, 3], [4, 4, 4], [0, 1, 2]]


def test_relabel_recontext_clamps_to_the_host_and_drops_clips_outside() -> None:
    """Moment [0, 3) moved to clip 9 of a 10-clip host (shift +9 clips = +18 s at 2 s):
    window [0, 5] -> [18, 23] clamped to the 20-s duration -> [18, 20]; clip ids 0, 1, 2 ->
    9 kept, 10 and 11 dropped with their scores."""
    rec = record(1, "v", [[0, 5]], duration=60.0, relevant_clip_ids=[0, 1, 2],
                 saliency_scores=[[1, 1, 1], [2, 2, 2], [3, 3, 3]])
    moved = relabel(rec, plan_for((0, 3), 9, 10), 2.0, 20.0)
    assert moved.windows == [[18, 20]]
    assert moved.relevant_clip_ids == [9]
    assert moved.saliency_scores == [[1, 1, 1]]
    # moved left past 0: clamped at 0, negative clip ids dropped
    rec = record(1, "v", [[2, 8]], duration=60.0, relevant_clip_ids=[1, 2, 3], saliency_scores=[[1], [2], [3]])
    moved = relabel(rec, plan_for((2, 4), 0, 10), 2.0, 20.0)
    assert moved.windows == [[0, 4]]
    assert moved.relevant_clip_ids == [0, 1] and moved.saliency_scores == [[2], [3]]


def test_relabel_without_context_only_renames_the_video() -> None:
    """noise/zero/mean/swap variants keep every label; only the vid changes."""
    rec = record(7, "v", [[1.5, 3.0]], relevant_clip_ids=[0, 1], saliency_scores=[[1], [2]])
    plan = QueryPlan(key="7", qid=7, vid="v__mask_q7", source_vid="v", source_clips=20, n_clips=20,
                     ranges=((0, 3),), noise_key=(0, 0))
    out = relabel(rec, plan, 2.0, 99.0)
    assert out.vid == "v__mask_q7"
    assert (out.windows, out.duration, out.relevant_clip_ids, out.saliency_scores) == (
        [[1.5, 3.0]], 40.0, [0, 1], [[1], [2]])


@pytest.mark.parametrize(("dtype", "draw"), [(np.float32, np.float32), (np.float16, np.float32),
                                              (np.float64, np.float64)])
def test_noise_values_follow_the_documented_draw(dtype: type, draw: type) -> None:
    """Noise of a source is ``low + (high - low) * U`` with U drawn by ``rng.random`` in
    float32 for floats of at most 32 bits, else float64 (the seeded stream, clip by clip)."""
    source = np.array([[0.0, 4.0], [1.0, -2.0], [3.0, 2.0], [0.5, 0.5]], dtype=dtype)
    out = apply_noise({"a": source}, [(1, 3)], np.random.default_rng(11))
    low, high = source.min().astype(draw), source.max().astype(draw)
    expected = np.random.default_rng(11).random((2, 2), dtype=draw) * (high - low) + low
    np.testing.assert_array_equal(out["a"][1:3], expected.astype(dtype))
    np.testing.assert_array_equal(out["a"][[0, 3]], source[[0, 3]])


def test_constant_and_swap_in_place_modify_their_input() -> None:
    """``inplace=True``: the input arrays themselves are filled and returned."""
    arrays = feature_arrays()
    zero = apply_constant(arrays, [(0, 2)], None, inplace=True)
    assert zero["a"] is arrays["a"] and not arrays["a"][:2].any()
    arrays = {"a": np.zeros((3, 1))}
    swapped = apply_swap(arrays, [(0, 2)], {"a": np.array([[5.0], [6.0]])}, [1], inplace=True)
    assert swapped["a"] is arrays["a"] and arrays["a"][:, 0].tolist() == [6.0, 5.0, 0.0]


def test_ranges_to_seconds_rounds_to_six_decimals() -> None:
    """Clip length 0.12345678 s: clips 1 and 2 start at 0.123457 and 0.246914 (six decimals)."""
    assert ranges_to_seconds([(1, 2)], 0.12345678) == [[0.123457, 0.246914]]


def test_plan_errors_name_the_annotation_file(tmp_path: Path) -> None:
    """A window beyond the video names the source's annotation file, qid and field."""
    annotations = tmp_path / "val.jsonl"
    src = Annotations([record(4, "v1", [[30.0, 32.0]])], path=annotations)
    with pytest.raises(ValidationError, match="beyond") as info:
        plan_queries(src, 2.0, {"v1": 10}, "noise", 0.0, 0)
    assert info.value.file == str(annotations) and info.value.qid == 4


def test_relabel_keeps_float_spelling_and_absent_scores() -> None:
    """A float end that lands on a whole number stays a float (15.0 - 6 -> 9.0, written
    "9.0"); clip ids without saliency scores move and the scores stay absent."""
    rec = record(1, "v", [[10, 15.0]], duration=60.0, relevant_clip_ids=[5, 6])
    moved = relabel(rec, plan_for((5, 8), 2, 12), 2.0, 24.0)
    assert moved.windows == [[4, 9.0]]
    assert isinstance(moved.windows[0][0], int) and isinstance(moved.windows[0][1], float)
    assert moved.relevant_clip_ids == [2, 3] and moved.saliency_scores is None


@pytest.mark.parametrize("qid", ["a/b", ".", ".."])
def test_plan_refuses_qids_that_cannot_name_a_file(qid: str) -> None:
    """A qid becomes a file name of the variant: "/" inside, "." and ".." are refused."""
    with pytest.raises(ValidationError, match="file name"):
        plan_queries(*source([record(qid, "v1", [[0.0, 2.0]])]), {"v1": 10}, "noise", 0.0, 0)
    plan_queries(*source([record("a.b", "v1", [[0.0, 2.0]])]), {"v1": 10}, "noise", 0.0, 0)


def test_recontext_host_with_exactly_the_moments_room() -> None:
    """A 3-clip moment and one other video whose duration (6 s = exactly 3 clips of 2 s) holds
    exactly 3 clips: it is a valid host and the moment can only start at its clip 0, so every
    plan's range is [0, 3) (whatever the qid's random stream)."""
    records = [record(q, "long", [[2.0, 7.0]], duration=40.0) for q in range(12)]
    records.append(record(99, "host", [[0.0, 2.0]], duration=6.0))
    plans = plan_queries(*source(records), {"long": 20, "host": 10}, "recontext", 0.0, seed=5)
    for plan in plans[:12]:
        assert plan.context == "host" and plan.moment == (1, 4)
        assert plan.ranges == ((0, 3),) and plan.n_clips == 10


def test_swap_and_recontext_draws_are_the_same_across_versions() -> None:
    """Golden values: ``mrbench mask --seed 1`` remakes the same variant in any later version
    (spurious scores on it stay comparable). Each query draws from its own stream 0 of
    (seed, qid hash): the donor and one offset per range (swap), the host and the position
    (recontext)."""
    records = [record(i, f"v{i % 3}", [[2.0, 6.0], [20.0, 22.0]]) for i in range(4)]
    lengths = {"v0": 20, "v1": 15, "v2": 12}
    swap = plan_queries(*source(records), lengths, "swap", 0.0, seed=1)
    assert [(p.donor, p.offsets) for p in swap] == [("v2", (8, 7)), ("v0", (19, 10)), ("v0", (13, 9)), ("v2", (3, 6))]
    moved = plan_queries(*source(records), lengths, "recontext", 0.0, seed=1)
    assert [(p.context, p.ranges) for p in moved] == [("v2", ((2, 12),)), ("v0", ((10, 20),)), ("v0", ((7, 17),)),
                                                      ("v2", ((0, 10),))]
