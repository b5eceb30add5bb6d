"""TD-DETR's strategies for every model (``--with tddetr``): TDEM runs inside each model's
text-to-video (or joint cross-modal) layers and feeds them, the training batches go through
VSDC, the config and the CLI record the strategies, eval outputs stay batch-independent, and
bad names or combinations are one error line."""

from __future__ import annotations

import json
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

import reference_models  # noqa: E402
from mrbench.errors import MrbenchError  # noqa: E402
from reference_models import (  # noqa: E402
    Strategy,
    create_model,
    display_name,
    list_strategies,
    resolve_config,
    strategy_augment,
)
from reference_models.core.config import SECTIONS  # noqa: E402
from reference_models.core.tdem import TDEM  # noqa: E402
from reference_models.core.vsdc import VSDC  # noqa: E402
from reference_models.tddetr import STRATEGY_SETTINGS  # noqa: E402
from reference_models.train import Trainer  # noqa: E402
from tests.conftest import run_guarded  # noqa: E402
from tests.models.test_moment_detr import assert_batch_independent, toy_batch  # noqa: E402

pytestmark = pytest.mark.torch

#: model -> (its attribute holding the layers where the clips read the text: TDEM's place,
#: overrides that give it two of them in the tiny preset)
CROSS_MODAL_LAYERS = {
    "moment_detr": ("encoder", {}),
    "qd_detr": ("t2v", {"model.t2v_layers": 2}),
    "cg_detr": ("t2v", {"model.t2v_layers": 2}),
    "bam_detr": ("t2v", {"model.t2v_layers": 2}),
    "snag": ("fusion.layers", {"snag.fusion_layers": 2}),
}
MODELS = sorted(CROSS_MODAL_LAYERS)
PRESETS = ("qvhighlights", "charades_sta", "tiny")
QUIET = {"train.progress": False, "train.eval_split": ""}


def tiny_model(name: str, **overrides: object) -> torch.nn.Module:
    """The tiny preset of ``name`` with TD-DETR's strategies, on toy_batch's input sizes."""
    return create_model(name, "tiny", strategies=("tddetr",), video_dim=10, text_dim=6, **overrides).eval()


def float_outputs(outputs: dict) -> torch.Tensor:
    """Every floating-point output (tensors and lists of tensors), flattened into one vector."""
    parts = [v for value in outputs.values() for v in (value if isinstance(value, list) else [value])]
    return torch.cat([v.flatten() for v in parts if torch.is_tensor(v) and v.is_floating_point()])


# ----------------------------------------------------------------------------------------------
# TDEM inside each model's cross-modal layers
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_tdem_runs_inside_each_cross_modal_layer(name: str) -> None:
    """Every cross-modal layer holds its own TDEM (one start token for all), and in a forward
    pass every call of a layer calls its TDEM exactly once, and TDEM runs nowhere else (SnAG's
    fusion layers run once per pyramid level)."""
    attribute, overrides = CROSS_MODAL_LAYERS[name]
    model = tiny_model(name, **overrides)
    layers = list(attrgetter(attribute)(model))
    modules = [m for m in model.modules() if isinstance(m, TDEM)]
    assert len(layers) == 2 and len(modules) == len(layers)
    owned = [[j for j, module in enumerate(modules) if any(m is module for m in layer.modules())] for layer in layers]
    assert owned == [[0], [1]] or owned == [[1], [0]]
    assert all(m.start_token is modules[0].start_token for m in modules)
    frames: list[tuple[int, list[int]]] = []  # the layer calls in progress
    done: list[tuple[int, list[int]]] = []
    stray: list[int] = []

    def enter(i: int) -> Callable:
        def hook(module: torch.nn.Module, args: tuple) -> None:
            frames.append((i, []))
        return hook

    def leave(module: torch.nn.Module, args: tuple, out: object) -> None:
        done.append(frames.pop())

    def called(j: int) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, out: object) -> None:
            (frames[-1][1] if frames else stray).append(j)
        return hook

    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(enter(i))
        layer.register_forward_hook(leave)
    for j, module in enumerate(modules):
        module.register_forward_hook(called(j))
    with torch.no_grad():
        model(toy_batch())
    assert not stray and {i for i, _ in done} == {0, 1}
    assert all(tdems == owned[i] for i, tdems in done)


@pytest.mark.parametrize("name", MODELS)
def test_tdem_output_feeds_the_layer(name: str) -> None:
    """Changing what TDEM returns changes the model's outputs (it is not computed and dropped);
    without the strategy the model has no TDEM."""
    model = tiny_model(name)
    batch = toy_batch()
    with torch.no_grad():
        plain = float_outputs(model(batch))
        for module in model.modules():
            if isinstance(module, TDEM):
                module.register_forward_hook(lambda module, args, out: 2.0 * out)  # not a constant: LN removes those
        moved = float_outputs(model(batch))
    assert (plain - moved).abs().max() > 1e-3
    assert not any(isinstance(m, TDEM) for m in create_model(name, "tiny").modules())


def assert_levels_batch_independent(model: torch.nn.Module) -> None:
    """SnAG: each sample's logits and offsets at its valid points of every pyramid level alone
    equal those among padded batch-mates (eval)."""
    batch = toy_batch()
    with torch.no_grad():
        together = model(batch)
        for i in range(batch["video"].shape[0]):
            n, t = int(batch["video_mask"][i].sum()), int(batch["text_mask"][i].sum())
            alone = model({"video": batch["video"][i:i + 1, :n], "video_mask": batch["video_mask"][i:i + 1, :n],
                           "text": batch["text"][i:i + 1, :t], "text_mask": batch["text_mask"][i:i + 1, :t]})
            for level, valid in enumerate(alone["masks"]):
                k = int(valid[0].sum())
                assert k > 0 and bool(together["masks"][level][i, :k].all())
                for key in ("logits", "offsets"):
                    diff = (together[key][level][i, :k] - alone[key][level][0, :k]).abs().max()
                    assert diff < 1e-5, (key, level, i, float(diff))


@pytest.mark.parametrize("uses_pos", [False, True], ids=["tdem_on_x", "tdem_on_x_pos"])
@pytest.mark.parametrize("name", MODELS)
def test_batch_independent_in_eval(name: str, uses_pos: bool) -> None:
    """With TDEM (on the clips, or on clips + positions as the dataset presets), each sample's
    eval outputs alone equal its outputs among padded batch-mates."""
    torch.manual_seed(0)
    model = tiny_model(name, temporal_uses_pos=uses_pos)
    if name == "snag":
        assert_levels_batch_independent(model)
    else:
        assert_batch_independent(model)


# ----------------------------------------------------------------------------------------------
# VSDC in training
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_training_batches_go_through_vsdc(name: str, tiny_data: Path, tmp_path: Path) -> None:
    """The trainer takes VSDC from the strategy; every training step's forward pass gets the
    batch VSDC returned (tiny: 8 queries -> 4 originals + 4 pairs = 12 samples)."""
    config = resolve_config(name, "tiny", QUIET, strategies=("tddetr",))
    trainer = Trainer(config, tiny_data, tmp_path / "run", device="cpu")
    assert isinstance(trainer.batch_augment, VSDC)
    vsdc = trainer.batch_augment
    made: list[dict] = []
    fed: list[dict] = []

    def spy(batch: dict) -> dict:
        made.append(vsdc(batch))
        return made[-1]

    trainer.batch_augment = spy
    trainer.model.register_forward_pre_hook(lambda module, args: fed.append(args[0]))
    trainer.train_epoch(0)
    assert len(made) == len(trainer.train_set) // 8 and len(fed) == len(made)
    assert all(a is b for a, b in zip(made, fed, strict=True))
    assert all(b["video"].shape[0] == 12 for b in fed)
    plain = Trainer(resolve_config(name, "tiny", QUIET), tiny_data, tmp_path / "plain", device="cpu")
    assert plain.batch_augment is None


# ----------------------------------------------------------------------------------------------
# configs, names, errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", PRESETS)
def test_qd_detr_with_tddetr_is_tddetr(preset: str) -> None:
    tddetr = resolve_config("tddetr", preset)
    assert resolve_config("qd_detr", preset, strategies=("tddetr",)) == tddetr
    assert resolve_config("tddetr", preset, strategies=("tddetr",)) == tddetr
    assert tddetr.model_name == "tddetr" and tddetr.strategies == ["tddetr"]
    assert type(create_model("qd_detr", "tiny", strategies=("tddetr",))).__name__ == "TDDETR"


def flat(config: reference_models.Config) -> dict[str, object]:
    return {f"{s}.{k}": v for s in SECTIONS for k, v in getattr(config, s).__dict__.items()}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", [n for n in MODELS if n != "qd_detr"])
def test_strategy_settings_from_one_place(name: str, preset: str) -> None:
    """A model w/ TD-DETR = the model's own config plus exactly the strategy's settings (TDEM,
    VSDC composition), recorded in ``strategies``; the config round-trips."""
    config = resolve_config(name, preset, strategies=("tddetr",))
    plain = resolve_config(name, preset)
    assert config.model_name == name and config.strategies == ["tddetr"] and plain.strategies == []
    flat_plain = flat(plain)
    changed = {k: v for k, v in flat(config).items() if flat_plain[k] != v}
    settings = STRATEGY_SETTINGS[preset]
    assert changed == {k: v for k, v in settings.items() if flat_plain[k] != v}
    assert all(flat(config)[k] == v for k, v in settings.items())
    assert reference_models.Config.from_dict(config.to_dict()) == config
    assert config.model.temporal == "tdem"


def test_display_names() -> None:
    assert list_strategies() == ["tddetr"]
    assert display_name("cg_detr", ["tddetr"]) == "CG-DETR w/ TD-DETR"
    assert display_name("moment_detr", ("tddetr",)) == "Moment-DETR w/ TD-DETR"
    assert display_name("bam_detr", ["tddetr"]) == "BAM-DETR w/ TD-DETR"
    assert display_name("snag", ["tddetr"]) == "SnAG w/ TD-DETR"
    assert display_name("cg_detr", "tddetr") == "CG-DETR w/ TD-DETR"  # one name as a string
    assert display_name("tddetr") == display_name("qd_detr", ["tddetr"]) == display_name("tddetr", ["tddetr"]) == "TD-DETR"
    assert display_name("qd_detr") == "QD-DETR"


def test_bad_names_and_combinations_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (lambda: resolve_config("cg_detr", "tiny", strategies=("nope",)), "unknown strategy 'nope'"),
        (lambda: resolve_config("cg_detr", "tiny", strategies=("tddetr", "tddetr")), "given twice"),
        (lambda: display_name("cg_detr", ["nope"]), "unknown strategy"),
        # no cross-modal layer to take TDEM
        (lambda: create_model("cg_detr", "tiny", strategies=("tddetr",), t2v_layers=0), "no layer that takes"),
        (lambda: create_model("moment_detr", "tiny", strategies=("tddetr",), enc_layers=0), "no layer that takes"),
        # a temporal module asked for directly, by a model without the layer
        (lambda: create_model("qd_detr", "tiny", temporal="tdem", t2v_layers=0), "no layer that takes"),
    ]
    for make, message in cases:
        with pytest.raises(MrbenchError, match=message) as caught:
            make()
        assert "\n" not in str(caught.value)
    # two strategies that each bring a batch augmentation cannot share a run
    monkeypatch.setitem(reference_models._STRATEGIES, "other", Strategy(base="none", presets={},
                                                                        augment=lambda dataset, config: None))
    config = resolve_config("cg_detr", "tiny", strategies=("tddetr", "other"))
    with pytest.raises(MrbenchError, match="one run takes one") as caught:
        strategy_augment(None, config)
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------
TRAIN = ["--preset", "tiny", "--set", "train.progress=false", "--device", "cpu"]


@pytest.mark.parametrize(("name", "title"), [("cg_detr", "CG-DETR w/ TD-DETR"), ("snag", "SnAG w/ TD-DETR")])
def test_cli_train_and_predict_with_tddetr(name: str, title: str, tiny_data: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    """``mrbench train-reference NAME --with tddetr`` then ``mrbench predict``: the run's config
    and output name the strategies, predict names the run and its files score."""
    from mrbench.scoring import score
    from tests.conftest import run_cli

    run = tmp_path / "run"
    assert run_cli(["train-reference", name, "--with", "tddetr", "--data", str(tiny_data), "--out", str(run),
                    *TRAIN, "--set", "train.epochs=1"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["name"] == title and printed["strategies"] == ["tddetr"] and printed["model"] == name
    saved = json.loads((run / "config.json").read_text())
    assert saved["model_name"] == name and saved["strategies"] == ["tddetr"]
    assert saved["model"]["temporal"] == "tdem" and saved["train"]["batch_size"] == 8
    assert torch.load(run / "best.pt", weights_only=False)["config"]["strategies"] == ["tddetr"]
    preds = tmp_path / "preds.jsonl"
    assert run_cli(["predict", "--checkpoint", str(run / "best.pt"), "--data", str(tiny_data), "--split", "val",
                    "--out", str(preds), "--device", "cpu"]) == 0
    assert f"{title}: {run / 'best.pt'}" in capsys.readouterr().err
    report = score(preds, gt=tiny_data / "annotations" / "val.jsonl", clip_len=2.0)
    assert report.to_dict()["mrbench"]["n_missing"] == 0 and "MR-full-mAP" in report.brief


def test_resume_keeps_the_strategies(tiny_data: Path, tmp_path: Path) -> None:
    """A run resumes only with its strategies; a checkpoint written before runs recorded them
    counts as its model's own (``tddetr``)."""
    run = tmp_path / "run"
    assert run_guarded(["train-reference", "tddetr", "--data", tiny_data, "--out", run, *TRAIN,
                        "--set", "train.epochs=1", "--set", "train.eval_split="]).code == 0
    state = torch.load(run / "last.pt", weights_only=False)
    del state["config"]["strategies"]
    torch.save(state, run / "last.pt")
    again = run_guarded(["train-reference", "qd_detr", "--with", "tddetr", "--data", tiny_data, "--out", run, *TRAIN,
                         "--set", "train.epochs=2", "--set", "train.eval_split=", "--resume"])
    assert again.code == 0, again.err
    assert json.loads((run / "config.json").read_text())["strategies"] == ["tddetr"]
    other = run_guarded(["train-reference", "qd_detr", "--data", tiny_data, "--out", run, *TRAIN,
                         "--set", "train.epochs=3", "--set", "train.eval_split=", "--resume"])
    assert other.code == 2 and "strategies" in other.err and "model_name" in other.err


@pytest.mark.parametrize(("argv", "message"), [
    (["cg_detr", "--with", "nope"], "unknown strategy 'nope'"),
    (["cg_detr", "--with", "tddetr", "--with", "tddetr"], "given twice"),
    (["cg_detr", "--with", "tddetr", "--set", "model.t2v_layers=0"], "no layer that takes the temporal module"),
])
def test_cli_errors_are_one_line(tiny_data: Path, tmp_path: Path, argv: list[str], message: str) -> None:
    result = run_guarded(["train-reference", *argv, "--data", tiny_data, "--out", tmp_path / "run", *TRAIN])
    assert result.code == 2 and message in result.err
    assert not (tmp_path / "run").exists()
