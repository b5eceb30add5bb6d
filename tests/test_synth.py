"""``mrbench synth``: layout, schema round trip, determinism, the plan's invariants, --annotations."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrbench.data.dataset import DatasetDir
from mrbench.data.features import FeatureStore
from mrbench.data.synth import (
    JOB_FILE,
    SPLITS,
    SynthConfig,
    build_world,
    generate,
    job_record,
    key_word,
    plan,
)
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import staging_paths
from tests.conftest import run_cli

SMALL = dict(n_train=24, n_val=8, n_ood=8, concepts=6, dims="24,16,8")


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(SynthConfig(**SMALL), tmp_path_factory.mktemp("synth") / "ds", progress=False)


def test_dataset_json_is_complete(small: Path) -> None:
    info = DatasetDir(small).info()
    assert info.kind == "synthetic"
    assert info.clip_len == 2.0 and info.max_clips == 75
    assert info.video_features == {"slowfast_features": 24, "clip_features": 16}
    assert info.text_features == {"clip_text_features": 8}
    assert info.splits == list(SPLITS) and DatasetDir(small).splits() == sorted(SPLITS)
    assert info.extra["queries"] == {"train": 24, "val": 8, "val_ood": 8, "test_ood": 8}
    assert info.extra["config"]["seed"] == 0 and len(info.extra["concepts"]) == 6
    assert info.extra["cue_strengths"]["val_ood"] == {"scene": 0.0, "flank": 0.0, "position": 0.0}


def test_annotations_and_features_round_trip(small: Path) -> None:
    data = DatasetDir(small)
    store = data.store()
    assert isinstance(store, FeatureStore)
    qids: list[int] = []
    for split in SPLITS:
        records = data.load(split, require_windows=True).records
        assert len(records) == {"train": 24}.get(split, 8)
        store.check([r.vid for r in records], [r.qid for r in records])
        for r in records:
            qids.append(r.qid)
            assert r.duration == 150 and isinstance(r.duration, int)
            clips = []
            for s, e in r.windows:
                assert 0 <= s < e <= 150 and s % 2 == 0 and e % 2 == 0
                clips += list(range(s // 2, e // 2))
            assert r.relevant_clip_ids == clips
            assert all(len(row) == 3 and all(0 <= v <= 4 for v in row) for row in r.saliency_scores)
            video = store.load_video(r.vid)
            assert video["slowfast_features"].shape == (75, 24)
            assert video["clip_features"].shape == (75, 16)
            assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in video.values())
            text = store.load_text(r.qid)
            tokens = text["last_hidden_state"]
            assert tokens.dtype == np.float32 and tokens.shape == (len(r.query.split()) + 2, 8)
            assert math.isclose(float(np.linalg.norm(text["pooler_output"])), 1.0, rel_tol=1e-5)
    assert len(set(qids)) == len(qids) == 48


def test_truth_table_matches_annotations(small: Path) -> None:
    truth = pq.read_table(small / "truth.parquet").to_pylist()
    data = DatasetDir(small)
    records = {r.qid: (split, r) for split in SPLITS for r in data.load(split).records}
    assert sorted(t["qid"] for t in truth) == sorted(records)
    for row in truth:
        split, record = records[row["qid"]]
        assert row["split"] == split and row["vid"] == record.vid
        assert [[s, e] for s, e in zip(row["window_starts"], row["window_ends"], strict=True)] == record.windows
        assert row["scene_match"] == (row["place"] == row["concept_place"])
        if split in ("val_ood", "test_ood"):
            assert not (row["scene_cue"] or row["flank_cue"] or row["position_cue"])


def test_same_seed_same_bytes_whatever_the_batch_size(tmp_path: Path) -> None:
    a = generate(SynthConfig(**SMALL, batch_size=64), tmp_path / "a", progress=False)
    b = generate(SynthConfig(**SMALL, batch_size=5), tmp_path / "b", progress=False)
    digest_a = tree_digest(a)
    assert digest_a == tree_digest(b) and len(digest_a) == 48 * 3 + 4 + 2
    c = generate(SynthConfig(**SMALL, batch_size=64), tmp_path / "c", progress=False)
    assert tree_digest(a) == tree_digest(c)
    d = generate(SynthConfig(**SMALL, seed=1), tmp_path / "d", progress=False)
    assert tree_digest(d)["features/clip_features/v000000.npz"] != tree_digest(a)["features/clip_features/v000000.npz"]


def test_dims_presets_and_errors() -> None:
    assert SynthConfig().feature_dims() == (256, 128, 128)
    assert SynthConfig(dims="qvh").feature_dims() == (2304, 512, 512)
    assert SynthConfig(dims="10,20").feature_dims() == (10, 20, 20)
    assert SynthConfig(dims="10,20,30").feature_dims() == (10, 20, 30)
    for bad in ("x", "10", "0,5", "1,2,3,4"):
        with pytest.raises(MrbenchError, match="dims"):
            SynthConfig(dims=bad).validate()
    for bad_config in (SynthConfig(rho_scene=1.5), SynthConfig(concepts=1), SynthConfig(n_clips=5),
                       SynthConfig(flank_off="sideways"), SynthConfig(content=-1.0)):
        with pytest.raises(MrbenchError):
            bad_config.validate()


def _project(features: np.ndarray, vector: np.ndarray) -> np.ndarray:
    return features.astype(np.float64) @ vector.astype(np.float64)


def test_moment_and_flank_vectors_sit_where_the_truth_says(tmp_path: Path) -> None:
    """Projections on the concept's content / prelude vectors: ~content*saliency inside the
    moment, ~flank strength (1) on planted flank clips, ~0 (noise ~ 1/sqrt(d)) elsewhere."""
    config = SynthConfig(n_train=40, n_val=0, n_ood=0, concepts=6, dims="256,128,8", rho_flank=1.0,
                         distractors=0)
    out = generate(config, tmp_path / "ds", progress=False)
    world = build_world(config)
    store = DatasetDir(out).store()
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    inside, outside, flank, rest = [], [], [], []
    for row in truth:
        x = store.load_video(row["vid"], ["slowfast_features"])["slowfast_features"]
        moment = np.zeros(75, bool)
        for s, e in zip(row["window_starts"], row["window_ends"], strict=True):
            moment[int(s) // 2 : int(e) // 2] = True
        content = _project(x, world.dictionary["slowfast_features"][row["concept"]])
        inside += content[moment].tolist()
        outside += content[~moment].tolist()
        pre = _project(x, world.dictionary["slowfast_features"][6 + row["concept"]])
        on = np.zeros(75, bool)
        for (s, e), kind in zip(row["flank_windows"], row["flank_kinds"], strict=True):
            if kind == "prelude":
                on[int(s) // 2 : int(e) // 2] = True
        assert row["flank_mode"] == "moment"  # (a moment at the start has no prelude)
        flank += pre[on].tolist()
        rest += pre[~on].tolist()
    assert 0.2 < np.mean(inside) < 0.5  # content 0.5 times saliency in [0.1, 1]
    assert abs(np.mean(outside)) < 0.05
    assert len(flank) > 100 and 0.9 < np.mean(flank) < 1.1
    assert abs(np.mean(rest)) < 0.05


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_clips=st.integers(15, 90),
    flank_width=st.integers(0, 6),
    rho=st.sampled_from([0.0, 0.3, 1.0]),
    flank_off=st.sampled_from(["decoy", "swap", "none"]),
    distractors=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_plan_invariants(n_clips: int, flank_width: int, rho: float, flank_off: str, distractors: int, seed: int) -> None:
    config = SynthConfig(n_train=12, n_val=4, n_ood=4, concepts=5, n_clips=n_clips, flank_width=flank_width,
                         rho_scene=rho, rho_flank=rho, rho_position=rho, flank_off=flank_off,
                         distractors=distractors, seed=seed)
    world, videos = plan(config)
    assert len(videos) == 12 + 4 + 4 + 4
    for video in videos:
        (q,) = video.queries
        T = video.n_clips
        moment = np.zeros(T, bool)
        zone = np.zeros(T, bool)
        previous_end = -1
        for (s, e), h in zip(q.windows, q.saliency, strict=True):
            assert previous_end < s < e <= T  # sorted, disjoint, at least one clip apart
            assert h.shape == (e - s,) and ((h > 0) & (h <= 1)).all()
            previous_end = e
            moment[s:e] = True
            zone[max(0, s - flank_width) : e + flank_width] = True
        ood = q.split in ("val_ood", "test_ood")
        if ood or rho == 0.0:
            assert not (q.scene_cue or q.flank_cue or q.position_cue)
        if rho == 1.0 and not ood:
            assert q.scene_cue and q.flank_cue and q.position_cue and video.place == world.place_of[q.concept]
        for s, e, row in q.flank_segments:
            assert 0 <= s < e <= T and not moment[s:e].any()
            concept = row % world.n_concepts
            assert concept == q.flank_concept
            if q.flank_mode == "decoy":
                assert not zone[s:e].any()
        if q.flank_mode == "moment":
            assert q.flank_cue and q.flank_concept == q.concept
        elif q.flank_mode == "swap":
            assert not q.flank_cue and q.flank_concept != q.concept
        elif q.flank_mode == "decoy":
            assert not q.flank_cue and q.decoy is not None and q.flank_segments
        else:
            assert not q.flank_segments
        for concept, s, e, _ in q.distractors:
            assert concept != q.concept and 0 <= s < e <= T and not zone[s:e].any()


def test_key_word_picks_the_longest_content_word() -> None:
    assert key_word("A woman is talking to the camera.") == "talking"
    assert key_word("the of a") == "the"


def _head(src: Path, dst: Path, n: int) -> Path:
    lines = src.read_bytes().splitlines(keepends=True)[:n]
    dst.write_bytes(b"".join(lines))
    return dst


def test_annotations_reuse_a_real_file(tmp_path: Path, shared_data: Path) -> None:
    source = _head(shared_data / "qvhighlights" / "highlight_train_release.jsonl",
                   tmp_path / "highlight_train_head.jsonl", 100)
    out = generate(SynthConfig(annotations=(str(source),), dims="48,32,16"), tmp_path / "ds", progress=False)
    data = DatasetDir(out)
    info = data.info()
    assert info.splits == ["train"] and info.extra["queries"] == {"train": 100}
    assert data.annotation_path("train").read_bytes() == source.read_bytes()
    records = data.load("train").records
    store = data.store()
    for r in records:
        n_clips = math.ceil(r.duration / 2)
        assert store.load_video(r.vid)["slowfast_features"].shape == (n_clips, 48)
        assert store.load_text(r.qid)["last_hidden_state"].shape[1] == 16
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    assert [t["qid"] for t in truth] == [r.qid for r in records]
    assert all(t["position_cue"] is None for t in truth)
    assert info.extra["cue_strengths"]["train"]["position"] is None


def test_videos_shared_by_several_queries_carry_every_window(tmp_path: Path) -> None:
    lines = [
        {"qid": 1, "query": "a dog catches the frisbee", "duration": 60, "vid": "shared",
         "relevant_windows": [[10, 20]]},
        {"qid": 2, "query": "the owner applauds loudly", "duration": 60, "vid": "shared",
         "relevant_windows": [[40, 50]]},
    ]
    src = tmp_path / "mine.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    config = SynthConfig(annotations=(str(src),), split="val", dims="512,256,16", concepts=4, rho_flank=1.0)
    out = generate(config, tmp_path / "ds", progress=False)
    world = build_world(config)
    x = DatasetDir(out).store().load_video("shared", ["slowfast_features"])["slowfast_features"]
    assert x.shape == (30, 512)
    truth = {t["qid"]: t for t in pq.read_table(out / "truth.parquet").to_pylist()}
    assert truth[1]["concept"] != truth[2]["concept"]  # "catches" and "applauds" hash apart
    assert truth[1]["place"] == truth[2]["place"]  # one video, one place
    for qid, (s, e) in ((1, (5, 10)), (2, (20, 25))):
        proj = _project(x, world.dictionary["slowfast_features"][truth[qid]["concept"]])
        # (other concepts may share the action or object word, so they project partly too)
        assert proj[s:e].mean() > np.delete(proj, np.arange(s, e)).mean() + 0.2
        other = (10, 20) if qid == 2 else (40, 50)
        for fs, fe in truth[qid]["flank_windows"]:  # flanks never cover the other query's moment
            assert fe <= other[0] or fs >= other[1]


def test_annotation_errors(tmp_path: Path) -> None:
    no_windows = tmp_path / "test.jsonl"
    no_windows.write_text('{"qid": 1, "query": "q", "duration": 10, "vid": "a"}\n')
    with pytest.raises(ValidationError, match="relevant_windows"):
        generate(SynthConfig(annotations=(str(no_windows),)), tmp_path / "x", progress=False)
    a = tmp_path / "a_train.jsonl"
    b = tmp_path / "b_val.jsonl"
    a.write_text('{"qid": 1, "query": "q", "duration": 10, "vid": "a", "relevant_windows": [[0, 4]]}\n')
    b.write_text('{"qid": 1, "query": "r", "duration": 10, "vid": "b", "relevant_windows": [[0, 4]]}\n')
    with pytest.raises(MrbenchError, match="qid 1 appears in both train and val"):
        generate(SynthConfig(annotations=(str(a), str(b))), tmp_path / "y", progress=False)


def test_cli_writes_a_dataset_that_data_info_describes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    argv = ["synth", "--out", str(out), "--n-train", "6", "--n-val", "2", "--n-ood", "2", "--dims", "8,8",
            "--concepts", "3", "--quiet", "--seed", "3", "--n-clips", "20", "--clip-len", "1.5"]
    assert run_cli(argv) == 0
    assert "train 6, val 2, val_ood 2, test_ood 2 queries" in capsys.readouterr().out
    info = DatasetDir(out).info()
    assert info.extra["config"]["seed"] == 3 and info.clip_len == 1.5 and info.max_clips == 20
    for r in DatasetDir(out).load("train").records:
        assert r.duration == 30 and all(round(v / 1.5, 9).is_integer() for w in r.windows for v in w)
        assert DatasetDir(out).store().load_video(r.vid)["clip_features"].shape == (20, 8)
    assert run_cli(["data", "info", str(out)]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert run_cli(argv) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert run_cli([*argv, "--force"]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    assert run_cli(["synth", "--out", str(other), "--force", "--quiet"]) == 2
    assert (other / "keep.txt").exists()
    assert run_cli(["synth", "--out", str(tmp_path / "z"), "--rho-flank", "2"]) == 2
    assert run_cli(["synth", "--out", str(tmp_path / "z"), "--annotations", str(tmp_path / "none.jsonl")]) == 2
    src = tmp_path / "one.jsonl"
    src.write_text('{"qid": 1, "query": "q", "duration": 10, "vid": "a", "relevant_windows": [[0, 4]]}\n')
    for flag in ("--n-train", "--n-clips"):
        assert run_cli(["synth", "--out", str(tmp_path / "z"), "--annotations", str(src), flag, "5"]) == 2
        assert "cannot be combined" in capsys.readouterr().err
    assert run_cli(["synth", "--out", str(tmp_path / "z"), "--annotations", str(src), "--quiet"]) == 0
    assert DatasetDir(tmp_path / "z").splits() == ["one"]


def test_train_split_does_not_depend_on_other_split_sizes() -> None:
    def train_part(n_val: int) -> list:
        _, videos = plan(SynthConfig(n_train=10, n_val=n_val, n_ood=n_val, concepts=4))
        return [(q.record.to_dict(), q.scene_cue, q.flank_segments, q.distractors, v.place)
                for v in videos for q in v.queries if q.split == "train"]

    assert train_part(3) == train_part(9)


def test_an_interrupted_run_resumes_to_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A run killed part-way leaves its staging folder (nothing at --out); --resume writes only
    what is missing and ends with exactly the bytes of an uninterrupted run; settings that differ
    are refused."""
    reference = tree_digest(generate(SynthConfig(**SMALL, batch_size=8), tmp_path / "ref", progress=False))
    out = tmp_path / "ds"
    original = FeatureStore.write_video
    calls = []

    def failing_write(self: FeatureStore, feature_type: str, vid: str, features: np.ndarray) -> Path:
        calls.append(vid)
        if len(calls) > 30:
            raise KeyboardInterrupt
        return original(self, feature_type, vid, features)

    monkeypatch.setattr(FeatureStore, "write_video", failing_write)
    with pytest.raises(KeyboardInterrupt):
        generate(SynthConfig(**SMALL, batch_size=8), out, progress=False)
    monkeypatch.setattr(FeatureStore, "write_video", original)
    staging, _ = staging_paths(out)
    assert (staging / JOB_FILE).is_file() and not (staging / "dataset.json").exists() and not out.exists()
    written = {p.name for p in (staging / "features" / "clip_features").iterdir()}
    assert 0 < len(written) < 48
    (staging / "features" / "clip_features" / ".v000047.npz.abc.tmp").write_bytes(b"half")  # a killed writer

    argv = ["synth", "--out", str(out), "--quiet", "--n-train", "24", "--n-val", "8", "--n-ood", "8",
            "--concepts", "6", "--dims", "24,16,8"]
    assert run_cli(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert run_cli([*argv, "--resume", "--seed", "1"]) == 2
    assert "differing: seed" in capsys.readouterr().err
    assert run_cli([*argv, "--resume", "--force"]) == 2
    before = {p.name: p.stat().st_mtime_ns for p in (staging / "features" / "clip_features").glob("v*.npz")}
    assert run_cli([*argv, "--resume"]) == 0
    assert tree_digest(out) == reference and not staging.exists()
    after = {p.name: p.stat().st_mtime_ns for p in (out / "features" / "clip_features").glob("v*.npz")}
    assert all(after[name] == t for name, t in before.items())  # kept, not rewritten
    capsys.readouterr()
    assert run_cli([*argv, "--resume"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert run_cli([*argv, "--resume", "--content", "0.7"]) == 2
    assert "differing: content" in capsys.readouterr().err


def test_force_replaces_an_interrupted_run(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / JOB_FILE).write_text("{}")
    (out / "annotations").mkdir()
    generate(SynthConfig(**SMALL), out, progress=False, force=True)
    assert tree_digest(out) == tree_digest(generate(SynthConfig(**SMALL), tmp_path / "ref", progress=False))


def test_resume_adopts_a_run_an_earlier_version_left_in_place(tmp_path: Path) -> None:
    """Earlier versions wrote in --out itself with the job file inside: --resume moves it into
    the staging folder, finishes it and swaps it in (same bytes as an uninterrupted run)."""
    reference = tree_digest(generate(SynthConfig(**SMALL), tmp_path / "ref", progress=False))
    out = tmp_path / "ds"
    generate(SynthConfig(**SMALL), out, progress=False)
    (out / "dataset.json").unlink()
    (out / JOB_FILE).write_text(json.dumps(job_record(SynthConfig(**SMALL))))
    with pytest.raises(MrbenchError, match="differing: seed"):
        generate(SynthConfig(**{**SMALL, "seed": 4}), out, progress=False, resume=True)
    generate(SynthConfig(**SMALL), out, progress=False, resume=True)
    assert tree_digest(out) == reference and not any(p.exists() for p in staging_paths(out))


def test_cli_defaults_are_synth_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mrbench synth --out X` asks for exactly SynthConfig() (one source of the defaults); an
    option given on the command line changes only its field."""
    import mrbench.data.synth as synth

    asked: list[SynthConfig] = []

    def record(config: SynthConfig, out: Path, **kwargs: object) -> Path:
        asked.append(config)
        raise MrbenchError("stop")

    monkeypatch.setattr(synth, "generate", record)
    assert run_cli(["synth", "--out", str(tmp_path / "a")]) == 2
    assert run_cli(["synth", "--out", str(tmp_path / "a"), "--rho-flank", "0.25", "--n-clips", "30"]) == 2
    assert asked[0] == SynthConfig()
    assert asked[1] == SynthConfig(rho_flank=0.25, n_clips=30)
