"""VSDC (reference_models.core.vsdc): layouts keep the ground-truth block intact, windows
move with their clips, partners are never the anchor or its video, ``random`` is uniform."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from scipy.stats import chisquare  # noqa: E402

from reference_models.core import vsdc  # noqa: E402

pytestmark = pytest.mark.torch


def random_rows(gen: torch.Generator, batch: int, max_len: int) -> tuple[torch.Tensor, ...]:
    """Random lengths and ground-truth blocks [start, end) for ``batch`` videos."""
    lengths = torch.randint(3, max_len + 1, (batch,), generator=gen)
    start = (torch.rand(batch, generator=gen) * lengths).long().clamp(max=lengths - 1)
    end = start + 1 + (torch.rand(batch, generator=gen) * (lengths - start)).long()
    return lengths, start, torch.minimum(end, lengths)


def test_layout_keeps_gt_block_and_shift_over_many_draws() -> None:
    gen = torch.Generator().manual_seed(7)
    for _ in range(200):
        batch = int(torch.randint(2, 9, (1,), generator=gen))
        lengths, start, end = random_rows(gen, batch, 80)
        target = torch.arange(batch)
        other = (target + 1 + torch.randint(0, batch - 1, (batch,), generator=gen)) % batch
        other_first = torch.rand(batch, generator=gen) < 0.5
        lay = vsdc.plan_layouts(lengths, start, end, target, other, other_first, gen)
        for k in range(batch):
            n = int(lay.length[k])
            assert lay.mask[k].sum() == n and not lay.mask[k, n:].any()
            rows, clips, own = lay.row[k, :n], lay.clip[k, :n], lay.own[k, :n]
            t, o = int(target[k]), int(other[k])
            # the exact invariant: old clip i of the block sits at new position i + shift
            s, e, shift = int(start[k]), int(end[k]), int(lay.shift[k])
            block = torch.arange(s, e) + shift
            assert torch.equal(clips[block], torch.arange(s, e))
            assert (rows[block] == t).all() and own[block].all()
            # no other copy of a block clip exists: the block is intact and unique
            in_block = own & (clips >= s) & (clips < e)
            assert int(in_block.sum()) == e - s
            # own and other segments are each contiguous and in time order; order per layout
            own_idx = own.nonzero().squeeze(1)
            assert (rows[own] == t).all() and (rows[~own] == o).all()
            if own_idx.numel():
                assert own_idx[-1] - own_idx[0] + 1 == own_idx.numel()
                assert own_idx[0] == (n - own_idx.numel() if other_first[k] else 0)
            for seg in (clips[own], clips[~own]):
                assert (seg[1:] >= seg[:-1]).all()
                # each clip appears at most twice (tempo jitter repeats a clip once)
                if seg.numel():
                    assert int(torch.bincount(seg).max()) <= 2
            # all valid clips of the right videos
            assert (clips[own] < lengths[t]).all() and (clips[~own] < lengths[o]).all()


def test_layout_counts_follow_alpha_and_jitter() -> None:
    gen = torch.Generator().manual_seed(1)
    lengths, start, end = torch.tensor([75, 75]), torch.tensor([10, 0]), torch.tensor([20, 75])
    own_sizes, oth_sizes = [], []
    for _ in range(300):
        lay = vsdc.plan_layouts(lengths, start, end, torch.tensor([0]), torch.tensor([1]),
                                torch.tensor([False]), gen)
        n_own = int(lay.own[0].sum()) - 10
        own_sizes.append(n_own)
        oth_sizes.append(int(lay.length[0]) - int(lay.own[0].sum()))
    # own background: floor(0.7 * 65) = 45 -> floor(r * 45) or 45 + floor((r-1) * 45), r in [0.8, 1.2]
    assert min(own_sizes) >= 36 and max(own_sizes) <= 54
    assert min(oth_sizes) >= 17 and max(oth_sizes) <= 26  # floor(0.3 * 75) = 22
    assert min(own_sizes) < 40 and max(own_sizes) > 50  # the jitter really varies the tempo


def test_small_sets_are_dropped() -> None:
    gen = torch.Generator().manual_seed(0)
    # bg of row 0 has 3 clips -> floor(0.7 * 3) = 2 <= 2 -> no own background; row 1 has
    # 9 clips -> floor(0.3 * 9) = 2 -> no other clips
    lay = vsdc.plan_layouts(torch.tensor([10, 9]), torch.tensor([3, 0]), torch.tensor([10, 2]),
                            torch.tensor([0]), torch.tensor([1]), torch.tensor([False]), gen)
    assert int(lay.length[0]) == 7 and int(lay.shift[0]) == -3
    assert lay.clip[0].tolist() == list(range(3, 10))


def test_pair_similarity_definition() -> None:
    gen = torch.Generator().manual_seed(3)
    video = torch.randn(3, 6, 10, generator=gen)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    sources = [(0, 6), (6, 10)]
    sim = vsdc.pair_similarity(video, mask, sources, topk=5)
    for a in range(3):
        for b in range(3):
            xa, xb = video[a, mask[a].bool()], video[b, mask[b].bool()]
            per = [torch.nn.functional.normalize(xa[:, lo:hi], dim=-1)
                   @ torch.nn.functional.normalize(xb[:, lo:hi], dim=-1).T for lo, hi in sources]
            clip_sim = (per[0] + per[1]).flatten() / 2
            expect = clip_sim.topk(min(5, clip_sim.numel())).values.mean()
            assert torch.isclose(sim[a, b], expect, atol=1e-5)
    assert torch.allclose(sim, sim.T, atol=1e-6)


def test_partner_never_itself_nor_same_video() -> None:
    gen = torch.Generator().manual_seed(0)
    vids = ["a", "a", "b", "c", "c", "c", "d", "e"]
    eligible = vsdc.eligible_partners(vids)
    anchors = torch.arange(len(vids))
    for strategy in vsdc.STRATEGIES:
        for _ in range(50):
            sim = torch.rand(len(vids), len(vids), generator=gen)
            sim = sim + sim.T
            sim.fill_diagonal_(10.0)  # would win if the diagonal were not excluded
            sim[0, 1] = sim[1, 0] = 9.0  # same video: would win if vids were ignored
            partner = vsdc.choose_partners(anchors, eligible, strategy, gen, sim)
            for a, p in zip(anchors.tolist(), partner.tolist(), strict=True):
                assert p != a and vids[p] != vids[a]
    sim = torch.rand(len(vids), len(vids), generator=gen)
    best = vsdc.choose_partners(anchors, eligible, "sim", gen, sim)
    worst = vsdc.choose_partners(anchors, eligible, "dissim", gen, sim)
    for a in range(len(vids)):
        allowed = [b for b in range(len(vids)) if vids[b] != vids[a]]
        assert int(best[a]) == max(allowed, key=lambda b: float(sim[a, b]))
        assert int(worst[a]) == min(allowed, key=lambda b: float(sim[a, b]))


def test_no_eligible_partner_gives_minus_one() -> None:
    gen = torch.Generator().manual_seed(0)
    eligible = vsdc.eligible_partners(["x", "x", "y"])
    sim = torch.rand(3, 3)
    for strategy in vsdc.STRATEGIES:
        partner = vsdc.choose_partners(torch.tensor([0, 1, 2]), eligible, strategy, gen, sim)
        assert partner[2] in (0, 1) and partner[0] == 2 and partner[1] == 2
    none = vsdc.eligible_partners(["x", "x"])
    for strategy in vsdc.STRATEGIES:
        assert vsdc.choose_partners(torch.tensor([0, 1]), none, strategy, gen, sim[:2, :2]).tolist() == [-1, -1]


def test_random_strategy_is_uniform() -> None:
    gen = torch.Generator().manual_seed(2018)
    vids = [f"v{i}" for i in range(9)] + ["v0"]  # row 9 shares a video with row 0
    eligible = vsdc.eligible_partners(vids)
    anchors = torch.zeros(4000, dtype=torch.long)  # anchor row 0, many independent draws
    partner = vsdc.choose_partners(anchors, eligible, "random", gen)
    counts = torch.bincount(partner, minlength=10)
    assert counts[0] == 0 and counts[9] == 0
    stat, p_value = chisquare(counts[1:9].numpy())
    assert p_value > 0.01, (counts.tolist(), stat)
