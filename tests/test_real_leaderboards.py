"""CI check of the real-data leaderboards: ``leaderboards/real`` is exactly what ``mrbench
leaderboard real`` makes from ``submissions/_real`` and the annotations and published prediction
files in ../shared; the published files score the reference evaluator's numbers; real-data entries
are validated like any input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mrbench.errors import MrbenchError, ValidationError
from mrbench.leaderboard.real import build_real, load_real_entry
from tests.conftest import REPO, require_shared, run_guarded

ENTRIES = REPO / "submissions" / "_real"
BOARDS = REPO / "leaderboards" / "real"
_IMG = re.compile(r'src="data:image/png;base64,[^"]*"')


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    data, predictions = require_shared("data"), require_shared("real_predictions")
    out = tmp_path_factory.mktemp("real")
    result = build_real(ENTRIES, out, data=data, predictions=predictions)
    return out, result.groups


def test_entries_hold_declarations_only() -> None:
    """No ground truth and no predictions derived from it are committed: one yaml per entry."""
    assert {p.name for p in ENTRIES.rglob("*") if p.is_file()} == {"submission.yaml"}
    assert not any(p.suffix in (".jsonl", ".gz", ".json") for p in BOARDS.rglob("*"))


def test_same_set_of_files(rebuilt: tuple[Path, list]) -> None:
    assert _files(BOARDS) == _files(rebuilt[0])


def test_text_outputs_are_identical(rebuilt: tuple[Path, list]) -> None:
    out = rebuilt[0]
    for rel in _files(out):
        if rel.suffix in (".md", ".csv"):
            assert (BOARDS / rel).read_bytes() == (out / rel).read_bytes(), f"{rel} differs: run mrbench leaderboard real"
        if rel.suffix == ".html":
            committed, fresh = (BOARDS / rel).read_text("utf-8"), (out / rel).read_text("utf-8")
            assert _IMG.sub("", committed) == _IMG.sub("", fresh), f"{rel} differs"


def test_published_files_score_the_reference_numbers(rebuilt: tuple[Path, list]) -> None:
    expected = json.loads((require_shared("real_predictions") / "expected.json").read_text(encoding="utf-8"))
    rows = {row.meta["entry"]: row for group in rebuilt[1] for row in group.rows}
    for name, info in expected.items():
        row = rows[f"published-{name.removesuffix('.jsonl').replace('_', '-')}"]
        for key in ("MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "HL-min-VeryGood-mAP"):
            assert row.per_seed[0][key] == pytest.approx(info["reference_brief"][key], abs=0.005), (name, key)


def test_every_board_has_the_blind_baselines(rebuilt: tuple[Path, list]) -> None:
    boards = {(g.dataset.name, g.split): {r.meta["model"] for r in g.rows} for g in rebuilt[1]}
    blind = {"position_prior", "length_prior", "uniform_random", "whole_video"}
    for key in [("qvhighlights", "val"), ("qvhighlights", "test"), ("charades_sta", "test"), ("charades_cd", "test_iid"),
                ("charades_cd", "test_ood"), ("activitynet_cd", "test_iid"), ("activitynet_cd", "test_ood"),
                ("qvhighlights_shift", "test_iid"), ("qvhighlights_shift", "test_ood")]:
        assert blind <= boards[key], key


BASE = """name: x
model: position_prior
kind: baseline
features: []
dataset: charades_cd
split: test_ood
seeds: [0]
date: 2026-11-30
submitted_by: me
test_answers_used: false
self_scored: false
"""
REMOTE = """prediction_file:
  path: p.jsonl
  url: https://example.org/p.jsonl
  sha256: {sha}
  size: 4
"""


def _entry(tmp_path: Path, text: str) -> Path:
    entry = tmp_path / "entries" / "e"
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "submission.yaml").write_text(text, encoding="utf-8")
    return entry


@pytest.mark.parametrize(("text", "field", "words"), [
    (BASE + "baseline: nope\ntrain_split: train\n", "baseline", "unknown baseline"),
    (BASE + "baseline: position_prior\n", "train_split", "name it"),
    (BASE.replace("charades_cd", "imagenet") + "baseline: whole_video\n", "dataset", "unknown catalog dataset"),
    (BASE.replace("kind: baseline", "kind: model") + "baseline: whole_video\n", "prediction_file", "no baseline"),
    (BASE.replace("kind: baseline", "kind: model") + REMOTE.format(sha="abc"), "prediction_file", "sha256"),
    (BASE + "baseline: whole_video\nmasked_predictions: m.jsonl\n", "masked_predictions", "unknown field"),
    (BASE.replace("test_ood", "test") + "baseline: whole_video\n", "split", "has no split 'test'"),
    (BASE.replace("charades_cd", "activitynet_cd") + "baseline: length_prior\ntrain_split: train\n", "train_split",
     "never published"),
])
def test_bad_declarations_name_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        load_real_entry(_entry(tmp_path, text))
    assert info.value.field == field


def test_prediction_file_is_checked_and_never_guessed(tmp_path: Path) -> None:
    entry = _entry(tmp_path, BASE.replace("kind: baseline", "kind: model") + REMOTE.format(sha="a" * 64))
    out, preds = tmp_path / "out", tmp_path / "preds"
    preds.mkdir()
    with pytest.raises(MrbenchError, match="fetch https://example.org/p.jsonl"):
        build_real(entry.parent, out, data=tmp_path, predictions=preds)
    (preds / "p.jsonl").write_text("{}\n", encoding="utf-8")
    outcome = run_guarded(["leaderboard", "real", "--entries", entry.parent, "--out", out, "--data", tmp_path,
                           "--predictions", preds])
    assert outcome.code == 2 and "is not the declared" in outcome.err
