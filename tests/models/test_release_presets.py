"""The dataset presets do what the releases do (TDEM on x + pos, VSDC's 2N-slot composition and
0.9 filter, the release's post-processing, fp32), the sound deviations stay default with the
release behaviour one option away, Charades-STA trains on ``train_minus_val``, and a run whose
training and selection splits overlap is refused or, when allowed, flagged (also on the
leaderboard)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mrbench.data.catalog import CATALOG  # noqa: E402
from mrbench.data.dataset import DatasetDir  # noqa: E402
from mrbench.data.features import FeatureStore  # noqa: E402
from mrbench.data.schema import write_annotations  # noqa: E402
from mrbench.errors import MrbenchError  # noqa: E402
from reference_models import resolve_config  # noqa: E402
from reference_models.core import vsdc  # noqa: E402
from reference_models.core.config import VSDCConfig  # noqa: E402
from reference_models.core.postprocess import to_windows  # noqa: E402
from reference_models.predict import amp_dtype  # noqa: E402
from tests.models.conftest import make_dataset  # noqa: E402
from tests.models.test_vsdc import SOURCES, make_batch  # noqa: E402

pytestmark = pytest.mark.torch
QUIET = {"train.progress": False}


@pytest.mark.parametrize("preset", ["qvhighlights", "charades_sta"])
def test_tddetr_dataset_presets_reproduce_the_release(preset: str) -> None:
    c = resolve_config("tddetr", preset)
    assert c.model.temporal == "tdem" and c.model.temporal_uses_pos
    assert not c.model.t2v_head_major_mask  # a sound deviation: batch-independent outputs
    assert c.train.batch_size == 32 and c.vsdc.slots and not c.vsdc.same_video_partners
    assert c.vsdc.exclude_above == (None if preset == "qvhighlights" else 0.9)
    assert (c.train.span_scale, c.train.widen_short, c.train.amp) == ("duration", False, "off")
    assert c.train.train_split == ("train" if preset == "qvhighlights" else "train_minus_val")


def test_tiny_preset_keeps_its_behaviour() -> None:
    """The committed leaderboard entries were trained with the tiny preset: it is unchanged."""
    c = resolve_config("tddetr", "tiny")
    assert not c.model.temporal_uses_pos and not c.vsdc.slots and c.train.batch_size == 8
    assert (c.vsdc.anchor_fraction, c.vsdc.keep_originals) == (0.5, False)
    assert (c.train.span_scale, c.train.widen_short, c.train.amp, c.train.train_split) == ("clips", True, "auto", "train")


def test_precision_fp32_by_default_bf16_one_option_away() -> None:
    cuda = torch.device("cuda")
    for model in ("qd_detr", "tddetr"):
        for preset in ("qvhighlights", "charades_sta"):
            assert amp_dtype(resolve_config(model, preset).train.amp, cuda) is None
            assert amp_dtype(resolve_config(model, preset, {"train.amp": "bf16"}).train.amp, cuda) == torch.bfloat16


def test_catalog_selection_train_split() -> None:
    assert CATALOG["charades_sta"].selection_train_split() == "train_minus_val"
    assert CATALOG["qvhighlights"].selection_train_split() == "train"
    assert CATALOG["tacos"].selection_train_split() == "train"


# ----------------------------------------------------------------------------------------------
# split overlap
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def carved_data(tmp_path: Path) -> Path:
    """24 training queries; ``val`` = 6 of them (as a carved validation split would be), and
    ``val_other`` = other queries on 2 of the training videos."""
    root = make_dataset(tmp_path / "carved", {"train": 24})
    directory = DatasetDir(root)
    train = list(directory.load("train"))
    write_annotations(directory.annotation_path("val"), train[:6])
    other = [r.__class__(**{**r.__dict__, "qid": 1000 + i}) for i, r in enumerate(train[6:8])]
    store = FeatureStore(root / "features")
    for old, new in zip(train[6:8], other, strict=True):
        store.write_text(new.qid, store.load_text(old.qid)["last_hidden_state"])
    write_annotations(directory.annotation_path("val_other"), other)
    info = directory.info()
    info.splits = ["train", "val", "val_other"]
    directory.write_info(info)
    return root


@pytest.mark.parametrize(("split", "queries", "videos"), [("val", 6, 6), ("val_other", 0, 2)])
def test_overlapping_selection_split_is_refused_or_flagged(carved_data: Path, tmp_path: Path, split: str,
                                                          queries: int, videos: int) -> None:
    from reference_models.train import Trainer

    config = resolve_config("qd_detr", "tiny", {**QUIET, "train.eval_split": split})
    with pytest.raises(MrbenchError, match=f"share {queries} queries and {videos} videos"):
        Trainer(config, carved_data, tmp_path / "refused", device="cpu")
    assert not (tmp_path / "refused").exists()
    allowed = resolve_config("qd_detr", "tiny", {**QUIET, "train.eval_split": split, "train.allow_split_overlap": True})
    with pytest.warns(UserWarning, match="flagged"):
        trainer = Trainer(allowed, carved_data, tmp_path / "flagged", device="cpu")
    assert trainer.split_overlap == {"train_split": "train", "eval_split": split, "queries": queries, "videos": videos}


def test_leaderboard_flags_an_entry_selected_on_training_data(tmp_path: Path) -> None:
    from mrbench.leaderboard.entries import write_entry
    from mrbench.leaderboard.render import flags
    from mrbench.leaderboard.submission import load_submission
    from mrbench.leaderboard.table import Row

    meta = {"name": "x", "model": "tddetr", "kind": "model", "features": ["clip_features"], "dataset": "d",
            "split": "val", "submitted_by": "test", "test_answers_used": False, "self_scored": False}
    preds = {0: [{"qid": 1, "pred_relevant_windows": [[0, 2, 1.0]]}]}
    plain = load_submission(write_entry(tmp_path, "plain", meta, preds))
    flagged = load_submission(write_entry(tmp_path, "flagged", {**meta, "selected_on_training_data": True}, preds))
    assert "selected_on_training_data" not in plain.metadata()
    assert flags(Row(meta=plain.metadata(), per_seed={}, stats={})) == ""
    assert flags(Row(meta=flagged.metadata(), per_seed={}, stats={})) == "O"


# ----------------------------------------------------------------------------------------------
# VSDC: the release's composition, partner rule and filter
# ----------------------------------------------------------------------------------------------
def test_slot_epochs_show_every_query_once_as_original_and_once_as_anchor(tiny_data: Path, tmp_path: Path) -> None:
    from reference_models.train import Trainer

    config = resolve_config("tddetr", "tiny", {**QUIET, "train.eval_split": "", "vsdc.slots": True})
    trainer = Trainer(config, tiny_data, tmp_path / "run", device="cpu")
    indices, _, anchors = trainer._batches(0)
    n = len(trainer.train_set)
    rows, flags = torch.cat(indices), torch.cat(anchors)
    assert len(indices) == 2 * n // config.train.batch_size
    assert torch.equal(rows[flags].sort().values, torch.arange(n))
    assert torch.equal(rows[~flags].sort().values, torch.arange(n))
    # originals and anchors of a step are independent draws: not every batch is half and half
    assert len({int(a.sum()) for a in anchors}) > 1


def test_slot_batch_anchors_pair_among_anchors_and_originals_pass_through() -> None:
    gen = torch.Generator().manual_seed(3)
    batch = make_batch(gen, 6, True)
    batch["video_id"] = torch.arange(6)
    anchor = torch.tensor([True, False, True, True, False, True])
    out = vsdc.VSDC(SOURCES, config=VSDCConfig(slots=True))({**batch, vsdc.ANCHOR_KEY: anchor})
    assert vsdc.ANCHOR_KEY not in out
    assert out["video"].shape[0] == 2 + 2 * 4
    assert torch.equal(out["index"][:2], batch["index"][~anchor])
    # each synthesized pair: the anchor's query, then its partner's, both anchor slots
    assert set(out["index"][2:].tolist()) <= set(batch["index"][anchor].tolist())


def test_same_video_partners_is_the_release_rule() -> None:
    video_id = torch.tensor([0, 0, 1])
    assert vsdc.eligible_partners(video_id).tolist() == [[False, False, True], [False, False, True], [True, True, False]]
    release = vsdc.eligible_partners(video_id, same_video=True)
    assert release.tolist() == [[False, True, True], [True, False, True], [True, True, False]]
    sim = torch.tensor([[1.0, 0.95, 0.5], [0.95, 1.0, 0.2], [0.5, 0.2, 1.0]])
    assert vsdc.eligible_partners(video_id, 0.9, sim, same_video=True).tolist() == [
        [False, False, True], [False, False, True], [True, True, False]]


# ----------------------------------------------------------------------------------------------
# post-processing
# ----------------------------------------------------------------------------------------------
def test_release_post_processing() -> None:
    spans = np.array([[0.5, 0.51], [0.1, 0.4]])
    scores = np.array([0.9, 0.8])
    # 10 clips of 2 s = 20 s of features, duration 19 s (the last clip is partial)
    ours = to_windows(spans, scores, 10, 2.0, 19.0)
    release = to_windows(spans, scores, 10, 2.0, 19.0, span_scale="duration", widen_short=False)
    assert ours == [[10.0, 12.0, 0.9], [2.0, 8.0, 0.8]]
    assert release == [[10.0, 10.0, 0.9], [2.0, 8.0, 0.8]]  # 9.5..9.69 s rounds to an empty window
    with pytest.raises(ValueError, match="span_scale"):
        to_windows(spans, scores, 10, 2.0, 19.0, span_scale="seconds")
