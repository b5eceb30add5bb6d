"""The library pipeline's pieces that the demo and the experiment runner share."""

from __future__ import annotations

import importlib.util

import pytest

from mrbench.errors import MrbenchError
from mrbench.pipeline import ModelSpec, Stages, _setting, variant_name

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch (the models extra)")


@needs_torch
@pytest.mark.parametrize(("text", "name", "strategies", "slug", "title"), [
    ("qd_detr", "qd_detr", (), "qd-detr", "QD-DETR"),
    ("cg_detr+tddetr", "cg_detr", ("tddetr",), "cg-detr-w-tddetr", "CG-DETR w/ TD-DETR"),
    (" bam_detr + tddetr ", "bam_detr", ("tddetr",), "bam-detr-w-tddetr", "BAM-DETR w/ TD-DETR"),
    ("qd_detr+tddetr", "tddetr", (), "tddetr", "TD-DETR"),  # QD-DETR w/ TD-DETR is the model tddetr
    ("tddetr", "tddetr", (), "tddetr", "TD-DETR"),
])
def test_model_specs(text: str, name: str, strategies: tuple[str, ...], slug: str, title: str) -> None:
    spec = ModelSpec.parse(text)
    assert (spec.name, spec.strategies, spec.slug, spec.title()) == (name, strategies, slug, title)
    assert ModelSpec.parse(spec.key) == spec


@needs_torch
@pytest.mark.parametrize(("text", "words"), [
    ("no_such_model", "unknown model 'no_such_model'"),
    ("cg_detr+nope", "unknown strategy 'nope'"),
    ("cg_detr+tddetr+tddetr", "twice"),
    ("../x", "unknown model"),
])
def test_bad_model_specs(text: str, words: str) -> None:
    with pytest.raises(MrbenchError, match=words.replace("+", r"\+")):
        ModelSpec.parse(text)


def test_settings_and_names() -> None:
    assert _setting(["train.epochs=3", "train.lr=1e-4", " train.epochs =7"], "train.epochs") == "7"
    assert _setting([], "train.epochs") == "preset default"
    assert variant_name("test_ood") == "masked-test-ood"


def test_stages_report_each_stage() -> None:
    lines: list[str] = []
    stages = Stages(2, lines.append)
    with stages.stage("first: a"):
        pass
    with stages.stage("second: b"):
        pass
    assert lines[0] == "[1/2] first: a" and lines[2] == "[2/2] second: b"
    assert [title for title, _ in stages.times] == ["first: a", "second: b"]
    assert all(seconds >= 0 for _, seconds in stages.times) and stages.elapsed >= 0
