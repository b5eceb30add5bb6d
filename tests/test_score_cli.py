"""``mrbench score`` on the command line: table, JSON report, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mrbench.cli import main
from tests.conftest import require_shared
from tests.test_scoring_inputs import GT, MASKED_0, PERFECT, make_variant, write_jsonl


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_table_then_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_jsonl(tmp_path / "gt.jsonl", GT)
    preds = write_jsonl(tmp_path / "preds.jsonl", PERFECT)
    masked = write_jsonl(tmp_path / "m0.jsonl", MASKED_0)
    variant = make_variant(tmp_path / "variant")
    out = tmp_path / "report.json"
    code = run(["score", str(preds), "--gt", str(gt), "--masked", str(masked), "--variant", str(variant),
                "--json", str(out), "--ci", "--n-boot", "50"])
    printed = capsys.readouterr().out
    assert code == 0
    lines = printed.splitlines()
    assert lines[2] == "-- headline" and lines[3].split()[0] == "R1@0.5"
    assert "HL mAP (VeryGood)" in printed and "Spurious-mAP" in printed and "Center-in-mask" in printed
    report = json.loads(out.read_text())
    assert report["brief"]["MR-full-mAP"] == 100.0
    assert report["spurious"]["brief"]["Spurious-mAP"] == 35.0
    assert set(report["intervals"]) >= {"MR-full-mAP", "HL-min-VeryGood-mAP", "MR-full-mIoU"}
    assert report["meta"]["ground_truth"] == str(gt)


def test_json_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_jsonl(tmp_path / "gt.jsonl", GT)
    preds = write_jsonl(tmp_path / "preds.jsonl", PERFECT)
    assert run(["score", str(preds), "--gt", str(gt), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["mrbench"]["n_queries"] == 3


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (["{not json"], "preds.jsonl:1: invalid JSON"),
        ([{"qid": 1, "pred_relevant_windows": [[6, 2, 1.0]]}], "preds.jsonl:1: qid 1: field 'pred_relevant_windows'"),
        ([json.dumps(p) for p in PERFECT[:2]], "pass --allow-missing"),
    ],
)
def test_invalid_input_exits_2_with_one_line(
    records: list, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = write_jsonl(tmp_path / "gt.jsonl", GT)
    preds = write_jsonl(tmp_path / "preds.jsonl", records)
    assert run(["score", str(preds), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]


def test_allow_missing_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = write_jsonl(tmp_path / "gt.jsonl", GT)
    preds = write_jsonl(tmp_path / "preds.jsonl", PERFECT[:2])
    assert run(["score", str(preds), "--gt", str(gt), "--allow-missing"]) == 0
    assert "1 missing (scored 0)" in capsys.readouterr().out


def test_subprocess_exit_code_and_no_traceback(tmp_path: Path) -> None:
    gt = write_jsonl(tmp_path / "gt.jsonl", GT)
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"qid": 1, "pred_relevant_windows": [[0, float("nan"), 1]]}])
    proc = subprocess.run([sys.executable, "-m", "mrbench", "score", str(preds), "--gt", str(gt)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not finite" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_subprocess_real_file_prints_warning_and_scores(tmp_path: Path) -> None:
    preds = require_shared("real_predictions", "tr_detr_val.jsonl")
    gt = require_shared("data", "qvhighlights", "highlight_val_release.jsonl")
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "mrbench", "score", str(preds), "--gt", str(gt), "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning: " in proc.stderr and "pred_saliency_scores" in proc.stderr
    assert json.loads(out.read_text())["brief"]["MR-full-mAP"] == 45.09


def test_a_split_without_answers_points_at_its_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preds = write_jsonl(tmp_path / "preds.jsonl", PERFECT)
    root = require_shared("data", "qvhighlights")
    assert run(["score", str(preds), "--dataset", "qvhighlights", "--split", "test", "--root", str(root)]) == 2
    assert "--split test_answers" in capsys.readouterr().err


def test_an_entry_folder_is_scored_as_the_build_scores_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``mrbench score ENTRY_DIR --entry-seed K``: the entry's ground truth, masked predictions and
    variant come from its dataset store; the numbers are the build's."""
    from mrbench.leaderboard.entries import export_dataset, write_entry
    from mrbench.leaderboard.runs import load_entry, score_run
    from mrbench.scoring.report import flatten_report
    from tests.test_leaderboard import META, _preds, make_dataset

    data, masked = make_dataset(tmp_path)
    root = tmp_path / "submissions"
    export_dataset(root, "toy", data, ["val"], variants={"masked": masked}, title="Toy", columns="qvhighlights")
    entry = write_entry(root, "grounded", {**META, "name": "Grounded", "model": "g"}, {0: _preds(0.0), 1: _preds(1.0)},
                        {0: _preds(60.0, True), 1: _preds(61.0, True)})
    assert run(["score", str(entry), "--entry-seed", "1", "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert flatten_report(report) == score_run(*load_entry(entry), 1)
    assert report["spurious"]["brief"]["Spurious-mAP"] == 0.0
    assert report["meta"]["predictions"].endswith("preds_seed1.jsonl.gz")
    capsys.readouterr()
    for args, words in ((["--json", "-"], "choose one with --entry-seed"), (["--entry-seed", "5"], "the entry has seeds 0, 1"),
                        (["--entry-seed", "0", "--gt", "gt.jsonl"], "drop --gt"),
                        (["--entry-seed", "0", "--clip-len", "1"], "--variant and --clip-len")):
        assert run(["score", str(entry), *args]) == 2
        assert words in capsys.readouterr().err
    assert run(["score", str(tmp_path / "nothing.jsonl"), "--entry-seed", "0"]) == 2
    assert "--entry-seed applies to an entry folder" in capsys.readouterr().err


def test_clip_len_option_sets_the_saliency_clip_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Labels in 1 s clips: refused at the 2 s default (one line, exit 2), scored with
    ``--clip-len 1``; a clip length that is not positive is a usage error."""
    from tests.test_hand_scoring import one_second_clips

    gt_records, pred_records = one_second_clips()
    gt = write_jsonl(tmp_path / "gt.jsonl", gt_records)
    preds = write_jsonl(tmp_path / "preds.jsonl", pred_records)
    assert run(["score", str(preds), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "clip ids must lie below int(duration / clip_len) = 5" in err
    assert run(["score", str(preds), "--gt", str(gt), "--clip-len", "1", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["HL-min-VeryGood"]["HL-Hit1"] == 100.0
    for bad in ("0", "-1", "nan"):
        assert run(["score", str(preds), "--gt", str(gt), "--clip-len", bad]) == 2
        assert "--clip-len" in capsys.readouterr().err


def test_cli_bootstrap_defaults_are_the_librarys() -> None:
    """``--seed`` and ``--n-boot`` default to the library's bootstrap seed and replicate count
    (the CLI imports no numpy at startup, so it spells them out)."""
    from mrbench.cli.score import score
    from mrbench.scoring.bootstrap import BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED

    defaults = {param.name: param.default for param in score.params}
    assert (defaults["seed"], defaults["n_boot"]) == (BOOTSTRAP_SEED, BOOTSTRAP_REPLICATES) == (0, 1000)
