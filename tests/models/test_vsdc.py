"""VSDC (reference_models.core.vsdc): layouts keep the ground-truth block intact, windows
move with their clips, partners are never the anchor or its video, ``random`` is uniform."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from scipy.stats import chisquare  # noqa: E402

from reference_models.core import vsdc  # noqa: E402
from reference_models.core.config import VSDCConfig  # noqa: E402

pytestmark = pytest.mark.torch


def random_rows(gen: torch.Generator, batch: int, max_len: int) -> tuple[torch.Tensor, ...]:
    """Random lengths and ground-truth blocks [start, end) for ``batch`` videos."""
    lengths = torch.randint(3, max_len + 1, (batch,), generator=gen)
    start = (torch.rand(batch, generator=gen) * lengths).long().clamp(max=lengths - 1)
    end = start + 1 + (torch.rand(batch, generator=gen) * (lengths - start)).long()
    return lengths, start, torch.minimum(end, lengths)


def test_layout_keeps_gt_block_and_shift_over_many_draws() -> None:
    gen = torch.Generator().manual_seed(7)
    for _ in range(80):
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
    for _ in range(150):
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
    vids = [0, 0, 1, 2, 2, 2, 3, 4]
    eligible = vsdc.eligible_partners(torch.tensor(vids))
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
    eligible = vsdc.eligible_partners(torch.tensor([5, 5, 6]))
    sim = torch.rand(3, 3)
    for strategy in vsdc.STRATEGIES:
        partner = vsdc.choose_partners(torch.tensor([0, 1, 2]), eligible, strategy, gen, sim)
        assert partner[2] in (0, 1) and partner[0] == 2 and partner[1] == 2
    none = vsdc.eligible_partners(torch.tensor([5, 5]))
    for strategy in vsdc.STRATEGIES:
        assert vsdc.choose_partners(torch.tensor([0, 1]), none, strategy, gen, sim[:2, :2]).tolist() == [-1, -1]


def test_random_strategy_is_uniform() -> None:
    gen = torch.Generator().manual_seed(2018)
    vids = list(range(9)) + [0]  # row 9 shares a video with row 0
    eligible = vsdc.eligible_partners(torch.tensor(vids))
    anchors = torch.zeros(4000, dtype=torch.long)  # anchor row 0, many independent draws
    partner = vsdc.choose_partners(anchors, eligible, "random", gen)
    counts = torch.bincount(partner, minlength=10)
    assert counts[0] == 0 and counts[9] == 0
    stat, p_value = chisquare(counts[1:9].numpy())
    assert p_value > 0.01, (counts.tolist(), stat)


# --------------------------------------------------------------------------------------------
# the batch augmentation on real collated batches
# --------------------------------------------------------------------------------------------
SOURCES = [(0, 6), (6, 10)]


def make_batch(gen: torch.Generator, batch: int, qvh: bool) -> dict[str, torch.Tensor]:
    """A collated batch (reference_models.core.data.collate + sample_labels) of random videos
    with 1-3 windows each; ``qvh``: saliency scores on the relevant clips, else binary."""
    import numpy as np

    from reference_models.core.data import collate, sample_labels

    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen)))
    items = []
    for i in range(batch):
        n = int(rng.integers(4, 40))
        feats = rng.normal(size=(n, 10)).astype(np.float32)
        feats[:, :6] /= np.linalg.norm(feats[:, :6], axis=1, keepdims=True)
        feats[:, 6:] /= np.linalg.norm(feats[:, 6:], axis=1, keepdims=True)
        start = np.arange(n, dtype=np.float32) / n
        video = np.concatenate([feats, np.stack([start, start + 1.0 / n], 1)], 1)
        relevant = np.zeros(n, dtype=bool)
        windows = []
        for _ in range(int(rng.integers(1, 4))):
            s = int(rng.integers(0, n))
            e = int(rng.integers(s + 1, min(n, s + 8) + 1))
            windows.append((s / n, e / n))
            relevant[s:e] = True
        windows = np.asarray(windows, dtype=np.float32)
        cxw = np.stack([windows.mean(1), windows[:, 1] - windows[:, 0]], 1)
        scores = np.where(relevant, rng.integers(1, 13, n), 0).astype(np.float32) if qvh else relevant.astype(np.float32)
        ids = np.flatnonzero(relevant)
        hard = np.array([ids[np.argmax(scores[ids])], ids[np.argmin(scores[ids])]]) if qvh else np.array([-1, -1])
        items.append({"video": video, "text": rng.normal(size=(int(rng.integers(2, 6)), 8)).astype(np.float32),
                      "index": i, "video_id": int(rng.integers(0, batch)), "clip_len": 2.0,
                      "windows": cxw, "relevant": relevant, "saliency_all": scores, "hard_pair": hard})
    return sample_labels(collate(items), 5, gen)


def window_clips(spans: torch.Tensor, span_mask: torch.Tensor, length: int) -> list[tuple[int, int]]:
    """Clip ranges [s, e) of the real windows of one sample (spans are exact clip multiples)."""
    out = []
    for (c, w), ok in zip(spans.tolist(), span_mask.tolist(), strict=True):
        if ok:
            s, e = (c - w / 2) * length, (c + w / 2) * length
            assert abs(s - round(s)) < 1e-3 and abs(e - round(e)) < 1e-3
            out.append((round(s), round(e)))
    return out


def assert_rows_move_their_blocks(batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor], qvh: bool) -> None:
    """Every output row k of query q: the windows and the whole ground-truth block (windows and
    relevant clips) of q intact at one whole-clip shift, labels only there, TEF of the new
    length, zero features past its end, saliency pairs on the new clips."""
    lengths_in, lengths_out = batch["video_mask"].sum(1), out["video_mask"].sum(1)
    n_out = out["video"].shape[0]
    assert all(out[k].shape[0] == n_out for k in out)
    for k in range(n_out):
        q = int(out["index"][k])
        n_old, n_new = int(lengths_in[q]), int(lengths_out[k])
        assert torch.equal(out["text"][k], batch["text"][q])
        assert not out["video_mask"][k, n_new:].any() and out["video_mask"][k, :n_new].all()
        assert not out["video"][k, n_new:].any()
        old = window_clips(batch["spans"][q], batch["span_mask"][q], n_old)
        new = window_clips(out["spans"][k], out["span_mask"][k], n_new)
        shifts = {ns - os_ for (os_, _), (ns, _) in zip(old, new, strict=True)}
        assert len(shifts) == 1  # every window moves by the same whole number of clips
        shift = shifts.pop()
        assert [(s + shift, e + shift) for s, e in old] == new
        # the whole ground-truth block (windows and relevant clips) is intact at the shift
        rel = batch["relevant"][q, :n_old].nonzero().squeeze(1)
        lo = min([s for s, _ in old] + rel.tolist())
        hi = max([e for _, e in old] + (rel + 1).tolist())
        assert 0 <= lo + shift and hi + shift <= n_new
        assert torch.equal(out["video"][k, lo + shift:hi + shift, :10], batch["video"][q, lo:hi, :10])
        assert torch.equal(out["saliency_all"][k, lo + shift:hi + shift], batch["saliency_all"][q, lo:hi])
        assert torch.equal(out["relevant"][k, :n_new].nonzero().squeeze(1), rel + shift)
        # relevant / scored clips exist only there
        assert out["saliency_all"][k, :n_new].sum() == batch["saliency_all"][q, :n_old].sum()
        # TEF recomputed for the new length
        i = torch.arange(n_new, dtype=torch.float32)
        assert torch.allclose(out["video"][k, :n_new, 10], i / n_new)
        assert torch.allclose(out["video"][k, :n_new, 11], i / n_new + 1.0 / n_new)
        # saliency pairs: positives are relevant clips; positives of the hard/first pair kept
        pos, neg = out["saliency_pos"][k], out["saliency_neg"][k]
        assert out["relevant"][k, pos].all()
        assert int(pos[0]) == int(batch["saliency_pos"][q, 0]) + shift
        if qvh and batch["saliency_pos"][q, 0] != batch["saliency_neg"][q, 0]:
            assert int(neg[0]) == int(batch["saliency_neg"][q, 0]) + shift  # the hard pair
        if not out["relevant"][k, :n_new].all():
            assert not out["relevant"][k, neg[-1]]


@pytest.mark.parametrize("qvh", [True, False])
@pytest.mark.parametrize("keep", [False, True])
def test_vsdc_batch_windows_point_at_the_same_clips(qvh: bool, keep: bool) -> None:
    gen = torch.Generator().manual_seed(11 + qvh + 2 * keep)
    config = vsdc.VSDCConfig(anchor_fraction=1.0 if keep else 0.5, keep_originals=keep)
    for trial in range(15):
        size = int(torch.randint(2, 10, (1,), generator=gen))
        batch = make_batch(gen, size, qvh)
        aug = vsdc.VSDC(SOURCES, tef=True, config=config, seed=trial)
        out = aug(batch)
        lengths_in = batch["video_mask"].sum(1)
        n_out = out["video"].shape[0]
        assert_rows_move_their_blocks(batch, out, qvh)
        # composition: originals first, unchanged
        n_orig = size if keep else n_out - 2 * (n_out - size)
        n_orig = n_out - 2 * ((n_out - n_orig) // 2)
        for k in range(n_orig):
            q = int(out["index"][k])
            n = int(lengths_in[q])
            assert torch.equal(out["video"][k, :n], batch["video"][q, :n])
            assert torch.equal(out["spans"][k], batch["spans"][q])


def test_vsdc_block_covers_relevant_clips_outside_the_sampled_windows() -> None:
    """The ground-truth block is the sampled windows *and* every relevant clip: a relevant clip
    away from the windows (not a saliency-pair clip) moves with them, intact."""
    gen = torch.Generator().manual_seed(21)
    config = vsdc.VSDCConfig(anchor_fraction=1.0, keep_originals=True)
    widened = 0
    for trial in range(10):
        batch = make_batch(gen, 6, True)
        lengths = batch["video_mask"].sum(1)
        for q in range(6):
            n = int(lengths[q])
            taken = set(batch["relevant"][q, :n].nonzero().squeeze(1).tolist())
            taken |= set(batch["saliency_pos"][q].tolist()) | set(batch["saliency_neg"][q].tolist())
            free = [c for c in (0, n - 1) if c not in taken]
            if free:
                batch["relevant"][q, free[0]] = True
                batch["saliency_all"][q, free[0]] = 1.0
                widened += 1
        out = vsdc.VSDC(SOURCES, tef=True, config=config, seed=trial)(batch)
        assert out["video"].shape[0] > 6
        assert_rows_move_their_blocks(batch, out, True)
    assert widened > 20


def test_vsdc_without_originals_keeps_only_synthesized_rows() -> None:
    """``anchor_fraction=1`` and ``keep_originals=False``: every row is an anchor, no original
    is kept, and every output row is a synthesized sample."""
    gen = torch.Generator().manual_seed(4)
    batch = make_batch(gen, 6, True)
    batch["video_id"] = torch.arange(6)
    config = vsdc.VSDCConfig(anchor_fraction=1.0, keep_originals=False)
    out = vsdc.VSDC(SOURCES, tef=True, config=config, seed=1)(batch)
    assert out["video"].shape[0] == 12
    assert_rows_move_their_blocks(batch, out, True)
    assert sorted(out["index"][:6].tolist()) == list(range(6))


def test_vsdc_pairs_never_same_video_and_layout() -> None:
    gen = torch.Generator().manual_seed(5)
    for trial in range(10):
        batch = make_batch(gen, 8, True)
        aug = vsdc.VSDC(SOURCES, config=VSDCConfig(anchor_fraction=1.0, keep_originals=True), seed=trial)
        out = aug(batch)
        n_syn = out["video"].shape[0] - 8
        assert n_syn % 2 == 0
        half = n_syn // 2
        anchor_q = out["index"][8:8 + half]
        partner_q = out["index"][8 + half:]
        vid = batch["video_id"]
        assert (anchor_q != partner_q).all() and (vid[anchor_q] != vid[partner_q]).all()
        # the anchor sample starts with the anchor's clips, the partner sample ends with the partner's
        for a, p, k in zip(anchor_q.tolist(), partner_q.tolist(), range(8, 8 + half), strict=True):
            first_clip = out["video"][k, 0, :10]
            assert (batch["video"][a, :, :10] == first_clip).all(1).any()
            m = int(out["video_mask"][k + half].sum())
            last_clip = out["video"][k + half, m - 1, :10]
            assert (batch["video"][p, :, :10] == last_clip).all(1).any()


def test_vsdc_is_seeded_and_resumable() -> None:
    gen = torch.Generator().manual_seed(9)
    batches = [make_batch(gen, 6, True) for _ in range(3)]
    first = vsdc.VSDC(SOURCES, seed=3)
    ref = [first(b) for b in batches]
    again = vsdc.VSDC(SOURCES, seed=3)
    again(batches[0])
    state = again.state_dict()
    resumed = vsdc.VSDC(SOURCES, seed=0)
    resumed.load_state_dict(state)
    for want, got in zip(ref[1:], [resumed(b) for b in batches[1:]], strict=True):
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_vsdc_batch_without_partners_is_unchanged() -> None:
    gen = torch.Generator().manual_seed(2)
    batch = make_batch(gen, 4, True)
    batch["video_id"] = torch.zeros(4, dtype=torch.long)  # one video: no eligible partner
    out = vsdc.VSDC(SOURCES)(batch)
    assert out is batch


def test_vsdc_settings_are_checked_at_construction() -> None:
    """alpha and anchor_fraction lie in [0, 1] (both ends allowed); the strategy is a known one;
    at least one feature source, kept as integer column ranges."""
    for alpha, fraction in ((0.0, 0.0), (1.0, 1.0), (0.5, 0.25)):
        made = vsdc.VSDC([(0.0, 6.0), (6, 10)], config=VSDCConfig(alpha=alpha, anchor_fraction=fraction), seed=4)
        assert made.sources == [(0, 6), (6, 10)] and all(isinstance(v, int) for pair in made.sources for v in pair)
        assert made.seed == 4 and made.tef is True and made.generator is None
    for bad in ({"alpha": -0.01}, {"alpha": 1.01}, {"anchor_fraction": -0.1}, {"anchor_fraction": 1.5}):
        with pytest.raises(ValueError, match="alpha and anchor_fraction must lie in"):
            vsdc.VSDC(SOURCES, config=VSDCConfig(**bad))
    with pytest.raises(ValueError, match="unknown VSDC strategy 'nearest'"):
        vsdc.VSDC(SOURCES, config=VSDCConfig(strategy="nearest"))
    with pytest.raises(ValueError, match="at least one video feature source"):
        vsdc.VSDC([])
    assert vsdc.VSDC(SOURCES, tef=False).tef is False


def test_slot_batch_without_a_pair_drops_its_anchor_slots() -> None:
    """A slot batch whose anchors find no partner (one video, other videos' rows are originals)
    returns its originals only, every per-row key cut to them, the anchor marks gone; with no
    anchor marked, the batch is returned as it came (less the marks)."""
    gen = torch.Generator().manual_seed(8)
    batch = make_batch(gen, 6, True)
    batch["video_id"] = torch.tensor([0, 1, 2, 3, 3, 3])
    anchor = torch.tensor([False, False, False, True, True, True])
    out = vsdc.VSDC(SOURCES, config=VSDCConfig(slots=True))({**batch, vsdc.ANCHOR_KEY: anchor})
    assert vsdc.ANCHOR_KEY not in out and set(out) == set(batch)
    for key, value in batch.items():
        assert torch.equal(out[key], value[:3]), key
    none = vsdc.VSDC(SOURCES, config=VSDCConfig(slots=True))({**batch, vsdc.ANCHOR_KEY: torch.zeros(6, dtype=torch.bool)})
    assert vsdc.ANCHOR_KEY not in none and all(torch.equal(none[k], batch[k]) for k in batch)
    one = {k: v[:1] for k, v in batch.items()}
    alone = vsdc.VSDC(SOURCES, config=VSDCConfig(slots=True))({**one, vsdc.ANCHOR_KEY: torch.ones(1, dtype=torch.bool)})
    assert all(torch.equal(alone[k], one[k]) for k in one)


def test_vsdc_anchor_fraction_draws_that_many_anchors_from_its_generator() -> None:
    """``anchor_fraction=0.5`` of 8 rows (distinct videos): 4 anchors drawn by the seeded
    generator, each paired (2 synthesized rows per pair); the other rows are the originals
    unless ``keep_originals`` keeps all 8. The same seed draws the same anchors, another seed
    (almost surely) others; a batch of 2 still makes one pair."""
    gen = torch.Generator().manual_seed(6)
    batch = make_batch(gen, 8, True)
    batch["video_id"] = torch.arange(8)

    def run(seed: int, keep: bool, rows: dict[str, torch.Tensor] = batch) -> dict[str, torch.Tensor]:
        config = VSDCConfig(anchor_fraction=0.5, keep_originals=keep, strategy="random")
        return vsdc.VSDC(SOURCES, config=config, seed=seed)(rows)

    out = run(0, False)
    assert out["video"].shape[0] == 4 + 8
    originals, anchors = out["index"][:4], out["index"][4:8]
    assert set(originals.tolist()).isdisjoint(anchors.tolist())
    assert sorted(originals.tolist() + anchors.tolist()) == list(range(8))
    assert run(0, True)["video"].shape[0] == 8 + 8
    assert torch.equal(run(0, False)["index"], out["index"])
    assert any(not torch.equal(run(seed, False)["index"][4:8], anchors) for seed in range(1, 6))
    pair = run(0, True, {k: v[:2] for k, v in batch.items()})
    assert pair["video"].shape[0] == 2 + 2


@pytest.mark.parametrize("strategy", ["sim", "random"])
def test_vsdc_settings_reach_the_partner_rule(strategy: str) -> None:
    """``exclude_above`` below every similarity leaves no partner (the batch comes back as it
    came) whatever the strategy; ``same_video_partners`` lets rows of one video pair."""
    gen = torch.Generator().manual_seed(12)
    batch = make_batch(gen, 6, True)
    batch["video_id"] = torch.arange(6)
    config = VSDCConfig(strategy=strategy, exclude_above=-2.0)
    assert vsdc.VSDC(SOURCES, config=config)(batch) is batch
    batch["video_id"] = torch.zeros(6, dtype=torch.long)
    assert vsdc.VSDC(SOURCES, config=VSDCConfig(strategy=strategy))(batch) is batch
    release = vsdc.VSDC(SOURCES, config=VSDCConfig(strategy=strategy, same_video_partners=True))(batch)
    assert release["video"].shape[0] == 6 + 12


def test_vsdc_ground_truth_block_hand_values() -> None:
    """``_gt_blocks``: per row, from the first to past the last clip of the sampled windows and
    of the relevant clips inside the video (a relevant flag on padding does not count)."""
    made = vsdc.VSDC(SOURCES)
    assert made.seed == 0 and made.state_dict() == {"seed": 0, "generator": None}
    batch = {
        # row 0: window clips [2, 4) of 10; relevant 2, 3 and 7 -> [2, 8)
        # row 1: window clips [3, 5) of 6; relevant 4 -> [3, 5) (the padding flag at 8 is ignored)
        # row 2: window clips [1, 3) of 6; no relevant clip -> [1, 3)
        "spans": torch.tensor([[[0.3, 0.2]], [[4 / 6, 2 / 6]], [[2 / 6, 2 / 6]]]),
        "span_mask": torch.tensor([[True], [True], [True]]),
        "relevant": torch.tensor([[0, 0, 1, 1, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0, 1, 0], [0] * 10]),
        "video_mask": torch.tensor([[1] * 10, [1] * 6 + [0] * 4, [1] * 6 + [0] * 4]),
    }
    start, end = made._gt_blocks(batch, batch["video_mask"].sum(1))
    assert start.tolist() == [2, 3, 1] and end.tolist() == [8, 5, 3]


def test_vsdc_min_count_and_topk_reach_the_layout_and_the_similarity() -> None:
    """``min_count`` above every set size drops every background set: a synthesized row is then
    its query's ground-truth block alone. ``topk=1`` makes a pair's similarity its best clip
    pair: two videos sharing one clip are then near-duplicates (above ``exclude_above=0.99``)
    and find no partner, while the mean of their top 50 clip pairs stays below it."""
    gen = torch.Generator().manual_seed(30)
    batch = make_batch(gen, 5, True)
    batch["video_id"] = torch.arange(5)
    aug = vsdc.VSDC(SOURCES, config=VSDCConfig(min_count=10**6, anchor_fraction=1.0, keep_originals=True))
    start, end = aug._gt_blocks(batch, batch["video_mask"].sum(1))
    out = aug(batch)
    assert out["video"].shape[0] > 5
    for k in range(5, out["video"].shape[0]):
        q = int(out["index"][k])
        assert int(out["video_mask"][k].sum()) == int(end[q] - start[q])
    pair = {key: value[:2].clone() for key, value in batch.items()}
    pair["video"][1, 0] = pair["video"][0, 0]
    strict = VSDCConfig(exclude_above=0.99, topk=1)
    assert vsdc.VSDC(SOURCES, config=strict)(pair) is pair
    assert vsdc.VSDC(SOURCES, config=VSDCConfig(exclude_above=0.99))(pair)["video"].shape[0] == 2 + 4


def test_vsdc_saliency_pairs_move_hand_cases() -> None:
    """``_move_pairs`` by hand (one synthesized row each, shift 0, new clips 0..7):
    a positive exactly at the block's end is outside it and is redrawn among the new relevant
    clips (only clip 3); a later pair that shares only its positive with the first pair is no
    repeat, so its negative inside the block stays; a row without any non-relevant clip keeps
    its negatives, even when another row of the batch has some."""
    gen = torch.Generator().manual_seed(0)
    mask = torch.ones(3, 8, dtype=torch.bool)
    relevant = torch.zeros(3, 8, dtype=torch.bool)
    relevant[0, 3] = relevant[1, 1] = relevant[1, 3] = True
    relevant[2] = True  # row 2: every clip relevant, no negative to draw from
    pos = torch.tensor([[5, 3], [3, 3], [2, 2]])
    neg = torch.tensor([[0, 0], [0, 1], [2, 2]])
    zeros = torch.zeros(3, dtype=torch.long)
    new_pos, new_neg = vsdc.VSDC._move_pairs(pos, neg, zeros, torch.tensor([5, 5, 8]), zeros,
                                             torch.ones(3, dtype=torch.bool), mask, relevant, gen)
    assert new_pos[0].tolist() == [3, 3]  # 5 was outside [0, 5): redrawn to the one relevant clip
    assert new_neg[1].tolist() == [0, 1]  # no repeat, both inside the block: kept
    assert new_pos[2].tolist() == [2, 2] and new_neg[2].tolist() == [2, 2]  # nothing to redraw from
