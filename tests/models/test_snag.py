"""SnAG: release parity on ``../shared/reference/release_fixtures/snag_b2.pt`` (outputs, label
assignment, losses with the release's loss normaliser and its EMA update, both post-processing
cases), the key mapping against the full-size release checkpoint, parameter counts, release
checkpoints through ``load_release_checkpoint`` and ``mrbench predict``, batch independence,
overfitting a tiny batch, video-centric batches, TDEM in the fusion layers (with VSDC), and
training + prediction + scoring through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mrbench.errors import MrbenchError  # noqa: E402
from reference_models import create_model, load_release_checkpoint, resolve_config  # noqa: E402
from reference_models.core.data import video_batches  # noqa: E402
from reference_models.core.dense import (  # noqa: E402
    DetectSettings,
    collect_candidates,
    gaussian_soft_nms,
    suppress,
)
from reference_models.core.release import detect_format, mapping_problems, model_from_release  # noqa: E402
from reference_models.core.span import pairwise_iou, xx_to_cxw  # noqa: E402
from reference_models.core.tdem import TDEM  # noqa: E402
from reference_models.core.vsdc import VSDC  # noqa: E402
from reference_models.snag import SnAG  # noqa: E402
from reference_models.train import train  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.models.conftest import make_dataset  # noqa: E402
from tests.models.release import load_fixture, n_params  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

ATOL = 1e-5
#: the fixture's grid: seconds = grid / 2 + 1 (fps 8, clips of 16 frames every 4): clip length
#: 0.5 s and a clip's grid position 2 clips before its centre
FIXTURE_GRID = {"snag.grid_offset": 2.0}
CLIP_LEN = 0.5


def fixture_model(f: dict) -> SnAG:
    model, config = model_from_release({"model": f["state_dict"], "model_ema": f["state_dict"], "opt": f["args"]},
                                       FIXTURE_GRID)
    assert config.model_name == "snag" and config.snag.levels == 3 and config.snag.max_clips == 48
    return model


def fixture_batch(f: dict, rows: tuple[int, ...] = (0, 1, 2, 3)) -> dict[str, torch.Tensor]:
    """The official inputs as an mrbench batch, one row per query (query q uses video q // 2),
    with the targets as normalised windows: (grid + 2) / clips."""
    inputs = f["inputs"]
    videos = [q // 2 for q in rows]
    mask = inputs["vid_masks"][videos]
    grid = f["targets"][list(rows)].double()
    xx = (grid + FIXTURE_GRID["snag.grid_offset"]) / mask.sum(1, keepdim=True).double()
    return {
        "video": inputs["vid"][videos].transpose(1, 2), "video_mask": mask,
        "text": torch.stack([inputs["text"][q // 2, q % 2].T for q in rows]),
        "text_mask": torch.stack([inputs["text_masks"][q // 2, q % 2] for q in rows]),
        "video_id": torch.tensor(videos), "spans": xx_to_cxw(xx).float()[:, None],
        "span_mask": torch.ones(len(rows), 1, dtype=torch.bool),
    }


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max |a - b| (0 for empty tensors of the same shape)."""
    assert a.shape == b.shape
    return float((a - b).abs().max()) if a.numel() else 0.0


def output_diff(outputs: dict, reference: dict, rows: tuple[int, ...] = (0, 1, 2, 3)) -> float:
    """Max |difference| of logits and offsets at valid positions (masks must be equal)."""
    diffs = []
    for level, mask in enumerate(reference["fpn_masks"]):
        mask = mask[list(rows)]
        assert torch.equal(outputs["masks"][level], mask)
        diffs.append((outputs["logits"][level] - reference["fpn_logits"][level][list(rows)])[mask].abs().max().item())
        diffs.append((outputs["offsets"][level] - reference["fpn_offsets"][level][list(rows)])[mask].abs().max().item())
    return max(diffs)


# ----------------------------------------------------------------------------------------------
def test_release_outputs() -> None:
    f = load_fixture("snag_b2")
    model = fixture_model(f)
    with torch.no_grad():
        diff = output_diff(model(fixture_batch(f)), f["outputs"])
    print(f"snag_b2 outputs: max |difference| {diff:.2e}")
    assert diff < ATOL


def test_release_label_assignment_and_losses() -> None:
    f = load_fixture("snag_b2")
    model = fixture_model(f)
    batch = fixture_batch(f)
    with torch.no_grad():
        outputs = model(batch)
    reference = f["label_assignment"]
    for ours, theirs in zip(model.points(outputs), reference["points"], strict=True):
        assert torch.equal(ours, theirs)
    from reference_models.core.dense import assign_points

    labels, offsets = assign_points(torch.cat(model.points(outputs)), model.grid_windows(batch), batch["span_mask"],
                                    model.settings.center_radius)
    assert torch.equal(labels, reference["gt_labels"])
    assert (offsets - reference["gt_offsets"]).abs().max() < ATOL
    assert int((labels & torch.cat(outputs["masks"], 1)).sum()) == f["losses"]["num_pos"] == 21
    losses = model.criterion(outputs, batch)  # eval mode: the normaliser stays at the config's 400
    assert model.loss_norm == f["losses"]["loss_norm"] == 400.0
    for ours, theirs in (("loss_cls", "loss_cls"), ("loss_reg", "loss_reg"), ("loss", "loss_total")):
        assert abs(float(losses[ours]) - f["losses"][theirs]) <= ATOL * abs(f["losses"][theirs]), ours
    # train mode without dropout: the same losses, then the release's normaliser update
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "drop"):
            module.drop = 0.0
    losses = model.criterion(model(batch), batch)
    assert abs(float(losses["loss"].detach()) - f["losses_train_mode_dropout0"]["loss_total"]) <= ATOL * 0.1
    assert model.loss_norm == pytest.approx(f["losses"]["loss_norm_after_update"])
    assert model.train_state() == {"loss_norm": pytest.approx(362.1)}


def test_release_postprocessing_of_the_model_outputs() -> None:
    """The release's candidates, soft-NMS, voting and seconds; query 1 has no candidate."""
    f = load_fixture("snag_b2")
    pp = f["postprocess"]
    settings = DetectSettings()
    points = f["label_assignment"]["points"]
    for q in range(4):
        masks = [m[q] for m in f["outputs"]["fpn_masks"]]
        candidates, scores = collect_candidates(points, pp["eval_logits"][q], pp["eval_offsets"][q], masks, settings)
        assert candidates.shape == pp["cand_segs"][q].shape
        assert max_diff(candidates, pp["cand_segs"][q]) < ATOL and max_diff(scores, pp["cand_scores"][q]) < ATOL
        segments, scores = suppress(candidates, scores, settings)
        seconds = ((segments + 2.0) * CLIP_LEN).clamp(0, pp["conversion"]["durations"][q // 2])
        assert max_diff(seconds, pp["segments"][q]) < ATOL and max_diff(scores, pp["scores"][q]) < ATOL
    assert len(pp["segments"][1]) == 0
    # the model's own (batched, padded-text) outputs give the same detections
    model = fixture_model(f)
    with torch.no_grad():
        outputs = model(fixture_batch(f))
    for q in (0, 2, 3):
        segments, scores = model.detect(outputs, q)
        seconds = ((segments + 2.0) * CLIP_LEN).clamp(0, pp["conversion"]["durations"][q // 2])
        assert (seconds - pp["segments"][q]).abs().max() < ATOL and (scores - pp["scores"][q]).abs().max() < ATOL
    assert len(model.detect(outputs, 1)[0]) == 0
    # in a prediction file query 1 gets the clip of its best-scoring valid point instead
    decoded = model.decode(outputs)
    assert decoded["keep"].sum(1).tolist() == [3, 1, 5, 5]
    logits = torch.cat([x[1] for x in outputs["logits"]]).masked_fill(~torch.cat([m[1] for m in outputs["masks"]]), -1e9)
    best = float(torch.cat(model.points(outputs))[logits.argmax(), 0])
    n = int(fixture_batch(f)["video_mask"][1].sum())
    assert decoded["spans"][1, 0].tolist() == pytest.approx([(best - 0.5 + 2.0) / n, (best + 0.5 + 2.0) / n])
    assert float(decoded["scores"][1, 0]) == pytest.approx(float(torch.sigmoid(logits.max())))


def test_release_postprocessing_synthetic() -> None:
    """Crafted head outputs: soft-NMS decay and voting at work, and the release's recall."""
    f = load_fixture("snag_b2")
    ps = f["postprocess_synthetic"]
    settings = DetectSettings()
    masks = [m[0] for m in ps["head_masks"]]
    hits = torch.zeros(2, 3)
    for q in range(2):
        candidates, scores = collect_candidates(ps["points"], ps["head_logits"][q], ps["head_offsets"][q], masks, settings)
        assert (candidates - ps["cand_segs"][q]).abs().max() < ATOL and (scores - ps["cand_scores"][q]).abs().max() < ATOL
        kept, decayed = gaussian_soft_nms(candidates, scores, settings.sigma, settings.min_score, settings.max_segments)
        assert (kept - ps["softnms_only_segs"][q]).abs().max() < ATOL
        assert (decayed - ps["softnms_only_scores"][q]).abs().max() < ATOL
        segments, scores = suppress(candidates, scores, settings)
        seconds = ((segments + 2.0) * CLIP_LEN).clamp(0, 21.5)
        assert (seconds - ps["segments"][q]).abs().max() < ATOL and (scores - ps["scores"][q]).abs().max() < ATOL
        iou = pairwise_iou(seconds, ps["gt_segments_sec"][q][None])[0][:, 0]
        for r, rank in enumerate(ps["metrics"]["ranks"]):
            hits[r] += (iou[:rank].max() >= torch.tensor(ps["metrics"]["iou_threshs"])).float()
    assert torch.equal(hits.double(), ps["metrics"]["counts"])


def test_soft_nms_drops_below_min_score_in_the_release_order() -> None:
    """Equal scores: the release keeps the first in its (swap-with-last) order."""
    segments = torch.tensor([[0.0, 10.0], [0.0, 9.9], [20.0, 30.0], [40.0, 50.0]])
    scores = torch.tensor([0.9, 0.002, 0.5, 0.5])
    kept, decayed = gaussian_soft_nms(segments, scores, sigma=0.9, min_score=0.001, max_segments=5)
    # the near-duplicate decays below 0.001 and is replaced by the last segment, which then
    # precedes [20, 30] among the equal scores
    assert kept.tolist() == [[0.0, 10.0], [40.0, 50.0], [20.0, 30.0]]
    assert decayed.tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_full_size_release_checkpoint_maps_and_parameter_counts() -> None:
    f = load_fixture("snag_b2")
    manifest = f["checkpoint_manifest"]
    fmt = detect_format(manifest["shapes"], manifest["args"])
    assert fmt.name == "snag"
    model = create_model("snag", "charades_sta", video_dim=2048, text_dim=300)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert mapping_problems(fmt, shapes, manifest["shapes"]) == []
    # the release's Charades-STA I3D model: text 1,031,296 + video 6,477,568 + fusion 1,584,128
    # + heads 395,009 + 395,784 (+ the 6 level scales, counted with the regression head)
    assert n_params(model) == manifest["n_params"] == 9_883_785
    by_module = {name: n_params(getattr(model, name)) for name in ("text_encoder", "video_encoder", "fusion", "cls_head")}
    assert by_module == {"text_encoder": 1_031_296, "video_encoder": 6_477_568, "fusion": 1_584_128, "cls_head": 395_009}
    # the charades_sta preset at its default input sizes (2818-d video, 512-d text): the two input
    # projections grow by (2818 - 2048) x 256 + (512 - 300) x 128 = 224,256
    preset = create_model("snag", "charades_sta")
    print(f"SnAG parameters, charades_sta preset (2818-d video, 512-d text): {n_params(preset):,}")
    assert n_params(preset) == 9_883_785 + 224_256 == 10_108_041
    assert n_params(create_model("snag", "tiny")) == 502_374


@pytest.mark.parametrize("with_opt", [True, False])
def test_load_release_checkpoint(tmp_path: Path, with_opt: bool) -> None:
    """The release's ``models/last.pth`` ({"model", "model_ema"}; its opt lives in a YAML file):
    the EMA weights are loaded; the architecture comes from the opt or from the tensor shapes."""
    f = load_fixture("snag_b2")
    noise = {k: v + 1.0 for k, v in f["state_dict"].items()}  # "model" must not be the one loaded
    state = {"model": noise, "model_ema": f["state_dict"], **({"opt": f["args"]} if with_opt else {})}
    torch.save(state, tmp_path / "last.pth")
    model, config = load_release_checkpoint(tmp_path / "last.pth", overrides=FIXTURE_GRID)
    assert not model.training and (config.model.hidden, config.snag.text_layers, config.snag.levels) == (32, 2, 3)
    with torch.no_grad():
        assert output_diff(model(fixture_batch(f)), f["outputs"]) < ATOL


def test_broken_release_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    f = load_fixture("snag_b2")
    partial = {k: v for k, v in f["state_dict"].items() if not k.startswith("cls_head.")}
    not_tensors = {k: 1 for k in f["state_dict"]}
    cases = {
        "partial": ({"model": partial, "model_ema": partial}, "does not fit"),
        "not tensors": ({"model": f["state_dict"], "model_ema": not_tensors}, "must be .out, in, 1. tensors"),
        "opt without its sections": ({"model": f["state_dict"], "model_ema": f["state_dict"], "opt": {"model": {}}},
                                     "incomplete or invalid"),
    }
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / "last.pth")
        with pytest.raises(MrbenchError, match=message):
            load_release_checkpoint(tmp_path / "last.pth")
        assert run_cli(["predict", "--checkpoint", str(tmp_path / "last.pth"), "--data", str(tmp_path), "--split",
                        "val", "--out", str(tmp_path / "p.jsonl")]) == 2, name


def test_predict_with_a_release_checkpoint_end_to_end(tmp_path: Path) -> None:
    from mrbench.scoring import score

    f = load_fixture("snag_b2")
    data = make_dataset(tmp_path / "data", {"val": 6}, video_dims={"clip_features": 16}, text_dim=12)
    torch.save({"model": f["state_dict"], "model_ema": f["state_dict"], "opt": f["args"]}, tmp_path / "last.pth")
    out = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(tmp_path / "last.pth"), "--data", str(data), "--split", "val",
                    "--out", str(out), "--device", "cpu"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6 and not any("pred_saliency_scores" in r for r in records)
    assert all(1 <= len(r["pred_relevant_windows"]) <= 5 for r in records)
    report = score(str(out), gt=data / "annotations" / "val.jsonl", clip_len=2.0)
    assert 0.0 <= report.brief["MR-full-mAP"] <= 100.0


def test_batch_independence() -> None:
    """A query's outputs do not depend on the other queries (or videos) of its batch."""
    f = load_fixture("snag_b2")
    model = fixture_model(f)
    full = fixture_batch(f)
    with torch.no_grad():
        together = model(full)
        for q in range(4):
            alone = model(fixture_batch(f, (q,)))
            for level in range(3):
                mask = alone["masks"][level][0]
                assert torch.equal(mask, together["masks"][level][q][: len(mask)])
                for key in ("logits", "offsets"):
                    diff = (alone[key][level][0][mask] - together[key][level][q][: len(mask)][mask]).abs().max()
                    assert diff < ATOL, (q, level, key, float(diff))
        # a longer batch-mate (more padding) changes nothing either
        longer = {k: v.clone() for k, v in full.items()}
        longer["video"] = torch.cat([full["video"], torch.randn(4, 20, 16)], 1)
        longer["video_mask"] = torch.cat([full["video_mask"], torch.zeros(4, 20, dtype=torch.bool)], 1)
        longer["video_mask"][3, :60] = True
        longer["video_id"] = torch.tensor([0, 0, 1, 2])
        padded = model(longer)
        for level in range(3):
            for key in ("logits", "offsets"):
                mask = together["masks"][level][:3]
                width = mask.shape[1]
                assert (padded[key][level][:3, :width][mask] - together[key][level][:3][mask]).abs().max() < ATOL


def toy_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Four queries over three videos of 24, 20 and 16 clips (the first two queries share video
    0): each query's concept is planted in its window's clips and in its text."""
    generator = torch.Generator().manual_seed(seed)
    lengths, windows, videos = [24, 24, 20, 16], [(3, 9), (14, 21), (5, 15), (8, 12)], [0, 0, 1, 2]
    concepts = torch.randn(4, 10, generator=generator)
    clips = torch.randn(3, 24, 10, generator=generator) * 0.3
    for q, (start, end) in enumerate(windows):
        clips[videos[q], start:end] += concepts[q]
    video = clips[videos]
    mask = torch.arange(24)[None] < torch.tensor(lengths)[:, None]
    video[~mask] = 0.0
    text = concepts[:, None, :6] + 0.1 * torch.randn(4, 5, 6, generator=generator)
    xx = torch.tensor(windows, dtype=torch.float32) / torch.tensor(lengths, dtype=torch.float32)[:, None]
    return {"video": video, "video_mask": mask, "text": text, "text_mask": torch.ones(4, 5, dtype=torch.bool),
            "video_id": torch.tensor(videos), "spans": xx_to_cxw(xx)[:, None],
            "span_mask": torch.ones(4, 1, dtype=torch.bool)}


def test_overfits_a_tiny_batch() -> None:
    """AdamW steps on one batch: the loss falls and every query's best window matches its own
    (IoU >= 0.8), the two queries of one video included."""
    torch.manual_seed(0)
    model = create_model("snag", "tiny", video_dim=10, text_dim=6, loss_norm=10.0)
    batch = toy_batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, foreach=True)
    first = None
    for _ in range(50):
        loss = model.criterion(model(batch), batch)["loss"]
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        final = model.criterion(model(batch), batch)["loss"].item()
        decoded = model.decode(model(batch))
    assert final < first / 10, (first, final)
    best = decoded["spans"][:, 0]
    iou = pairwise_iou(best, batch["spans"][:, 0, :1] + batch["spans"][:, 0, 1:] * torch.tensor([-0.5, 0.5]))[0]
    assert decoded["keep"][:, 0].all() and iou.diagonal().min() >= 0.8, iou.diagonal()


def test_video_centric_batches() -> None:
    videos = [0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 3]
    batches = video_batches(videos, per_video=2, batch_size=2, seed=1, epoch=0)
    rows = torch.cat(batches).tolist()
    assert sorted(rows) == list(range(len(videos)))  # every query once per epoch
    for batch in batches:
        per_video: dict[int, int] = {}
        for row in batch.tolist():
            per_video[videos[row]] = per_video.get(videos[row], 0) + 1
        assert len(batch) <= 4 and all(count <= 2 for count in per_video.values()) and len(per_video) <= 2
    assert [b.tolist() for b in video_batches(videos, 2, 2, 1, 0)] == [b.tolist() for b in batches]
    assert [b.tolist() for b in video_batches(videos, 2, 2, 1, 1)] != [b.tolist() for b in batches]
    # two ranks: each global batch's groups split between them; the last global batch holds one
    # group (7 groups in batches of 2), fewer than the ranks, and is dropped
    ranks = [video_batches(videos, 2, 2, 1, 0, rank, 2) for rank in (0, 1)]
    assert [torch.cat([a, b]).tolist() for a, b in zip(*ranks, strict=True)] == [b.tolist() for b in batches[:-1]]


def test_tdem_in_the_fusion_layers() -> None:
    """``model.temporal=tdem``: one TDEM per fusion layer on the modulated stream; beta 1 gives
    plain SnAG with the same weights (to float rounding)."""
    plain = create_model("snag", "tiny", video_dim=10, text_dim=6)
    with_tdem = create_model("snag", "tiny", video_dim=10, text_dim=6, temporal="tdem", beta=1.0)
    tdems = [m for m in with_tdem.modules() if isinstance(m, TDEM)]
    assert len(tdems) == with_tdem.config.snag.fusion_layers == 1
    missing, unexpected = with_tdem.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".temporal." in k for k in missing)
    batch = toy_batch()
    plain.eval()
    with_tdem.eval()
    with torch.no_grad():
        a, b = plain(batch), with_tdem(batch)
    # (a temporal module makes each level its own pass; without one the levels share a pass)
    for key in ("logits", "offsets"):
        assert all((x - y).abs().max() < 1e-6 for x, y in zip(a[key], b[key], strict=True)), key
    blended = create_model("snag", "tiny", video_dim=10, text_dim=6, temporal="tdem").eval()
    blended.load_state_dict(with_tdem.state_dict())
    with torch.no_grad():
        assert not torch.equal(blended(batch)["logits"][0], a["logits"][0])


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(MrbenchError, match="snag.window must be odd"):
        create_model("snag", "tiny", window=4)
    with pytest.raises(MrbenchError, match="snag.fusion_mode"):
        create_model("snag", "tiny", fusion_mode="film")
    with pytest.raises(MrbenchError, match="snag.levels"):
        resolve_config("snag", "tiny", {"snag.levels": 0})


# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snag_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 training queries on 16 videos (two queries each: query 2k+1 takes video 2k, where its
    concept is not planted; a pipeline test), 16 validation queries."""
    root = make_dataset(tmp_path_factory.mktemp("snag_data"), {"train": 32, "val": 16})
    lines = (root / "annotations" / "train.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for i, record in enumerate(records):
        record["vid"] = f"train_v{i - i % 2}"  # queries 2k and 2k+1 share video 2k
    (root / "annotations" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


@pytest.fixture(scope="module")
def cli_run(snag_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("snag_run") / "run"
    assert run_cli(["train-reference", "snag", "--data", str(snag_data), "--out", str(run), "--preset", "tiny",
                    "--set", "train.epochs=3", "--set", "train.progress=false"]) == 0
    return run


def test_cli_train_and_predict_without_saliency(cli_run: Path, snag_data: Path, tmp_path: Path) -> None:
    from mrbench.scoring import score

    config = json.loads((cli_run / "config.json").read_text())
    assert config["model_name"] == "snag" and config["train"]["queries_per_video"] == 4
    log = [json.loads(line) for line in (cli_run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [0, 1, 2] and all({"loss_cls", "loss_reg"} <= set(e["train"]) for e in log)
    # best.pt holds the EMA weights, which last.pt keeps apart from the raw ones
    last = torch.load(cli_run / "last.pt", weights_only=False)
    best = torch.load(cli_run / "best.pt", weights_only=False)
    assert last["model_train_state"]["loss_norm"] != 50.0
    if best["epoch"] == 2:
        assert all(torch.equal(best["model"][k], last["ema"][k]) for k in best["model"])
    assert any(not torch.equal(last["model"][k], last["ema"][k]) for k in last["model"])
    out = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(cli_run / "best.pt"), "--data", str(snag_data),
                    "--split", "val", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 16
    for record in records:
        windows = record["pred_relevant_windows"]
        assert "pred_saliency_scores" not in record and 1 <= len(windows) <= 10
        assert [w[2] for w in windows] == sorted((w[2] for w in windows), reverse=True)
        assert all(0 <= s <= e for s, e, _ in windows)
    report = score(str(out), gt=snag_data / "annotations" / "val.jsonl", clip_len=2.0)
    assert "MR-full-mAP" in report.brief and not any(k.startswith("HL") for k in report.brief)


def test_warmup_schedule_and_vsdc_with_tdem(snag_data: Path, tmp_path: Path) -> None:
    """SnAG w/ TD-DETR's pieces: TDEM in the fusion layers and VSDC on the video-centric batches
    (its synthesized videos are encoded on their own); the per-step warm-up ramps from 0."""
    config = resolve_config("snag", "tiny", {"model.temporal": "tdem", "train.epochs": 1, "train.progress": False,
                                              "train.batch_size": 4,
                                              "vsdc.anchor_fraction": 0.5, "vsdc.keep_originals": False})
    from reference_models.core.data import MomentDataset

    dataset = MomentDataset(snag_data, "train", config.data)
    augment = VSDC(dataset.source_slices, tef=config.data.tef, config=config.vsdc, seed=0)
    best = train(config, snag_data, tmp_path / "run", batch_augment=augment)
    assert best["metric"] == "MR-full-mAP"
    log = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[0])
    assert log["lr"] == pytest.approx(config.train.lr)  # the warm-up (1 epoch) is over at its end
    from reference_models.train import Trainer

    trainer = Trainer(config, snag_data, tmp_path / "run2")
    steps = len(trainer._epoch_indices(0)[0])
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0  # the first step runs at 0, as the release's
    rates = [config.train.lr * trainer.scheduler.lr_lambdas[0](step) for step in range(steps + 1)]
    assert rates[0] == 0.0 and rates[-2] == pytest.approx(config.train.lr) and rates == sorted(rates)


def test_resume_continues_exactly(snag_data: Path, tmp_path: Path) -> None:
    """Two epochs in one run equal one epoch and a resumed one: weights, EMA weights, the loss
    normaliser and the warm-up schedule's position."""
    settings = {"train.epochs": 2, "train.progress": False, "train.batch_size": 4}
    train(resolve_config("snag", "tiny", settings), snag_data, tmp_path / "whole")
    train(resolve_config("snag", "tiny", {**settings, "train.epochs": 1}), snag_data, tmp_path / "split")
    train(resolve_config("snag", "tiny", settings), snag_data, tmp_path / "split", resume=True)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    for key in ("model", "ema"):
        assert all(torch.equal(whole[key][k], split[key][k]) for k in whole[key]), key
    assert whole["model_train_state"] == split["model_train_state"]
    assert whole["scheduler"]["last_epoch"] == split["scheduler"]["last_epoch"] == 8  # 2 x 4 steps


def test_video_centric_batches_refuse_vsdc_slots(snag_data: Path, tmp_path: Path) -> None:
    from reference_models.core.data import MomentDataset
    from reference_models.train import Trainer

    config = resolve_config("snag", "tiny", {"vsdc.slots": True, "train.progress": False})
    augment = VSDC(MomentDataset(snag_data, "train", config.data).source_slices, tef=False, config=config.vsdc)
    with pytest.raises(MrbenchError, match="cannot be combined with vsdc.slots"):
        Trainer(config, snag_data, tmp_path / "run", batch_augment=augment)
