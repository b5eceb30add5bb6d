"""The ``submission.yaml`` schema: valid entries load, each kind of mistake names file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mrbench.errors import ValidationError
from mrbench.leaderboard.submission import (
    DEFAULT_MASKED,
    DEFAULT_PREDICTIONS,
    load_submission,
)

VALID = """\
name: QD-DETR (tiny)
model: qd_detr
kind: model
paper: https://arxiv.org/abs/2303.13874
code: null
features: [slowfast_features, clip_features, clip_text_features]
dataset: synth-default
split: val
seeds: [0, 1, 2]
date: 2026-11-27
submitted_by: tests
test_answers_used: false
self_scored: false
"""


def write(tmp_path: Path, text: str, entry: str = "qd-detr-tiny") -> Path:
    root = tmp_path / entry
    root.mkdir(parents=True, exist_ok=True)
    (root / "submission.yaml").write_text(text, encoding="utf-8")
    return root


def replace_line(key: str, new: str | None) -> str:
    lines = [ln for ln in VALID.splitlines() if not ln.startswith(f"{key}:")]
    if new is not None:
        lines.append(new)
    return "\n".join(lines) + "\n"


def test_valid_entry_loads_with_defaults(tmp_path: Path) -> None:
    sub = load_submission(write(tmp_path, VALID))
    assert sub.entry_id == "qd-detr-tiny"
    assert sub.seeds == (0, 1, 2)
    assert sub.date == "2026-11-27"
    assert sub.code is None
    assert sub.features == ("slowfast_features", "clip_features", "clip_text_features")
    assert sub.predictions == DEFAULT_PREDICTIONS and sub.masked_predictions == DEFAULT_MASKED
    assert sub.prediction_path(2).name == "preds_seed2.jsonl"
    assert sub.masked_path(1).name == "preds_masked_seed1.jsonl"
    assert sub.masked_variant == "masked"


def test_masked_predictions_null_means_none(tmp_path: Path) -> None:
    sub = load_submission(write(tmp_path, VALID + "masked_predictions: null\n"))
    assert sub.masked_predictions is None and sub.masked_path(0) is None


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        (replace_line("kind", None), "kind", None, "missing field"),
        (VALID + "seed: 3\n", "seed", 14, "unknown field"),
        (replace_line("kind", "kind: paper"), "kind", 13, "must be one of baseline, model"),
        (replace_line("date", "date: 27/11/2026"), "date", 13, "YYYY-MM-DD"),
        (replace_line("seeds", "seeds: [0, 0]"), "seeds", 13, "repeated"),
        (replace_line("seeds", "seeds: []"), "seeds", 13, "non-empty list"),
        (replace_line("seeds", "seeds: [-1]"), "seeds", 13, "non-negative"),
        (replace_line("paper", "paper: arxiv 2303.13874"), "paper", 13, "https URL"),
        (replace_line("self_scored", "self_scored: maybe"), "self_scored", 13, "true or false"),
        (replace_line("features", "features: clip"), "features", 13, "list of strings"),
        (VALID + "predictions: preds.jsonl\n", "predictions", 14, "{seed}"),
        (VALID + "predictions: ../x_{seed}.jsonl\n", "predictions", 14, "plain file name"),
        (VALID + "predictions: p_{run}.jsonl\n", "predictions", 14, "placeholder {seed}"),
        (VALID + "masked_predictions: preds_seed{seed}.jsonl\n", "masked_predictions", 14, "differ"),
        (replace_line("name", "name: ''"), "name", 13, "non-empty string"),
    ],
)
def test_schema_errors_name_file_line_and_field(tmp_path: Path, text: str, field: str, line: int | None, words: str) -> None:
    root = write(tmp_path, text)
    with pytest.raises(ValidationError) as info:
        load_submission(root)
    err = info.value
    assert err.field == field
    assert err.line == line
    assert err.file == str(root / "submission.yaml")
    assert words in str(err)
    assert "\n" not in str(err)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    root = write(tmp_path, VALID + "notes: [unclosed\n")
    with pytest.raises(ValidationError, match="invalid YAML") as info:
        load_submission(root)
    assert info.value.line is not None and info.value.line >= 14


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mapping"):
        load_submission(write(tmp_path, "- a\n- b\n"))


def test_entry_directory_name_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="entry directory name"):
        load_submission(write(tmp_path, VALID, entry="QD DETR"))


def test_missing_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no such file"):
        load_submission(tmp_path / "empty")


def test_yaml_dates_and_strings_both_accepted(tmp_path: Path) -> None:
    data = yaml.safe_load(VALID)
    data["date"] = "2026-01-05"
    sub = load_submission(write(tmp_path, yaml.safe_dump(data)))
    assert sub.date == "2026-01-05"
