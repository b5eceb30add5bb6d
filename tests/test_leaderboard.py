"""``mrbench leaderboard build``: scoring, caching, aggregation, rendering, stale outputs, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mrbench.cli import main
from mrbench.errors import ValidationError
from mrbench.leaderboard.build import build
from mrbench.leaderboard.entries import export_dataset, make_baseline_entries, write_entry
from mrbench.leaderboard.render import csv_table, fmt_cell, markdown_table
from mrbench.leaderboard.runs import check_path
from mrbench.leaderboard.table import aggregate
from mrbench.scoring.report import flatten_report

DURATION = 150.0
# qid -> (vid, window); masked region = the window widened by 3 s, floored to 2 s clips
VAL = {
    0: ("vA", [20.0, 30.0]),
    1: ("vB", [100.0, 120.0]),
    2: ("vC", [50.0, 56.0]),
    3: ("vD", [0.0, 14.0]),
}
TRAIN = {10 + i: (f"t{i}", [float(10 * i), float(10 * i + 12)]) for i in range(8)}


def _record(qid: int, vid: str, window: list[float]) -> dict:
    clips = list(range(int(window[0] // 2), int(window[1] // 2)))
    return {
        "qid": qid, "query": f"query {qid}", "duration": DURATION, "vid": vid,
        "relevant_clip_ids": clips, "saliency_scores": [[4, 3, 2 + (c % 3)] for c in clips],
        "relevant_windows": [window],
    }


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _dataset_json(path: Path, kind: str) -> None:
    info = {"name": "toy", "clip_len": 2.0, "max_clips": 75, "kind": kind, "splits": ["train", "val"],
            "video_features": {"clip_features": 8}, "text_features": {"clip_text_features": 8}, "extra": {}}
    path.write_text(json.dumps(info), encoding="utf-8")


def make_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset directory (annotations only) and its masked variant, in the contract layout."""
    data = tmp_path / "data"
    _jsonl(data / "annotations" / "train.jsonl", [_record(q, v, w) for q, (v, w) in TRAIN.items()])
    _jsonl(data / "annotations" / "val.jsonl", [_record(q, v, w) for q, (v, w) in VAL.items()])
    _dataset_json(data / "dataset.json", "synthetic")
    masked = tmp_path / "masked"
    _jsonl(masked / "annotations" / "val.jsonl",
           [_record(q, f"{v}__mask_q{q}", w) for q, (v, w) in VAL.items()])
    _dataset_json(masked / "dataset.json", "masked")
    queries = {}
    for q, (v, (s, e)) in VAL.items():
        lo, hi = int(max(0.0, s - 3) // 2), int(-(-min(DURATION, e + 3) // 2))
        queries[str(q)] = {"qid": q, "vid": f"{v}__mask_q{q}", "source_vid": v,
                           "masked_clips": [[lo, hi]], "masked_windows": [[2.0 * lo, 2.0 * hi]]}
    manifest = {"mrbench_version": "test", "source": {"features": "features"}, "split": "val", "strategy": "noise",
                "margin": 3.0, "seed": 0, "clip_len": 2.0, "queries": queries, "files": {}}
    (masked / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return data, masked


def _preds(shift: float, masked: bool = False) -> list[dict]:
    out = []
    for q, (v, (s, e)) in VAL.items():
        start = min(max(0.0, s + shift), DURATION - (e - s))
        saliency = [1.0 if s <= 2 * c + 1 < e else 0.0 for c in range(75)]
        out.append({"qid": q, "vid": f"{v}__mask_q{q}" if masked else v,
                    "pred_relevant_windows": [[start, start + (e - s), 0.9]], "pred_saliency_scores": saliency})
    return out


META = {"kind": "model", "paper": None, "code": None, "features": ["clip_features"], "dataset": "toy",
        "split": "val", "date": "2026-11-27", "submitted_by": "tests", "test_answers_used": False,
        "self_scored": False}


@pytest.fixture
def submissions(tmp_path: Path) -> Path:
    data, masked = make_dataset(tmp_path)
    root = tmp_path / "submissions"
    export_dataset(root, "toy", data, ["val"], variants={"masked": masked}, title="Toy dataset", columns="qvhighlights")
    make_baseline_entries(root, data_dir=data, dataset="toy", split="val", masked_dir=masked, seeds=[0, 1],
                          date="2026-11-27")
    # "grounded": exact on the original videos, 60 s off on the masked ones (two seeds)
    write_entry(root, "grounded", {**META, "name": "Grounded", "model": "g"},
                {0: _preds(0.0), 1: _preds(1.0)}, {0: _preds(60.0, True), 1: _preds(61.0, True)})
    # "shortcut": the same answer whether the moment is there or not
    write_entry(root, "shortcut", {**META, "name": "Shortcut", "model": "s"},
                {0: _preds(2.0)}, {0: _preds(2.0, True)}, compress=False)
    return root


def test_aggregate_hand_computed() -> None:
    assert aggregate([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert aggregate([5.0]) == (5.0, None, 1)
    assert aggregate([1.0, None]) == (None, None, 2)
    mean, std, n = aggregate([40.0, 44.0])
    assert (mean, n) == (42.0, 2) and std == pytest.approx(2.8284271247)
    assert fmt_cell(aggregate([40.0, 44.0])) == "42.00 ± 2.83"
    assert fmt_cell((None, None, 1)) == "—"


def test_flatten_report_keeps_the_contract_keys() -> None:
    report = {"brief": {"MR-full-mAP": 40.0, "MR-full-R1@0.5": 50.0}, "mrbench": {"MR-full-mIoU": 30.5, "n_queries": 4},
              "spurious": {"brief": {"Spurious-mAP": 10.0, "Ratio-mAP": None}, "std": {"Spurious-mAP": 1.0}}}
    assert flatten_report(report) == {"MR-full-mAP": 40.0, "MR-full-R1@0.5": 50.0, "MR-full-mIoU": 30.5,
                                      "n_queries": 4.0, "Spurious-mAP": 10.0, "Ratio-mAP": None}


def test_build_scores_aggregates_and_renders(submissions: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    result = build(submissions, out)
    assert (result.scored, result.cached, result.rendered) == (1 + 1 + 1 + 2 + 2 + 1, 0, True)
    (group,) = result.groups
    rows = {r.meta["entry"]: r for r in group.rows}
    assert set(rows) == {"baseline-position-prior", "baseline-length-prior", "baseline-whole-video",
                         "baseline-uniform-random",
                         "grounded", "shortcut"}
    # exact predictions: every standard metric at 100; 60 s away on the masked videos: spurious 0
    assert rows["grounded"].per_seed[0]["MR-full-mAP"] == 100.0
    assert rows["grounded"].per_seed[0]["Spurious-mAP"] == 0.0
    # blind and shortcut entries predict the same on masked videos: spurious = standard
    for entry in ("baseline-position-prior", "baseline-length-prior", "baseline-whole-video",
                  "baseline-uniform-random", "shortcut"):
        for metrics in rows[entry].per_seed.values():
            assert metrics["Spurious-mAP"] == metrics["MR-full-mAP"]
            assert metrics["Spurious-R1@0.7"] == metrics["MR-full-R1@0.7"]
    assert rows["baseline-uniform-random"].stats["MR-full-mAP"][2] == 2
    mean = rows["grounded"].stats["MR-full-R1@0.7"][0]
    seeds = [rows["grounded"].per_seed[s]["MR-full-R1@0.7"] for s in (0, 1)]
    assert mean == pytest.approx(sum(seeds) / 2)

    base = out / "toy" / "val"
    names = sorted(p.name for p in base.iterdir())
    assert names == ["bars.png", "leaderboard.csv", "leaderboard.html", "leaderboard.md", "results.parquet",
                     "standard_vs_spurious.png"]
    md = (base / "leaderboard.md").read_text(encoding="utf-8")
    assert md.index("Grounded") < md.index("Shortcut")  # sorted by mAP
    assert "| 1 | Grounded | model | 2 | " in md
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "Reported in the TD-DETR paper (not scored by mrbench)" in readme
    assert readme.index("Grounded") < readme.index("Reported in the TD-DETR paper")
    html = (base / "leaderboard.html").read_text(encoding="utf-8")
    assert "<script>" in html and "http://" not in html and "https://" not in html
    assert "src=\"data:image/png;base64," in html

    import pandas as pd

    frame = pd.read_parquet(base / "results.parquet")
    assert len(frame[(frame.entry == "grounded") & (frame.metric == "MR-full-mAP")]) == 2
    csv = (base / "leaderboard.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0].startswith("rank,entry,name,kind,model,dataset,split,seeds,flags,MR-full-R1@0.5_mean")
    assert csv[1].startswith("1,grounded,Grounded,model,g,toy,val,0 1,,")


def test_rebuild_uses_the_cache_and_rescores_only_what_changed(submissions: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    build(submissions, out)
    again = build(submissions, out)
    assert (again.scored, again.cached, again.rendered) == (0, 8, False)

    (out / "toy" / "val" / "bars.png").unlink()  # a lost output is re-rendered, nothing rescored
    repaired = build(submissions, out)
    assert (repaired.scored, repaired.rendered) == (0, True)
    assert (out / "toy" / "val" / "bars.png").is_file()

    pred = submissions / "shortcut" / "preds_seed0.jsonl"
    pred.write_text(json.dumps(_preds(0.0)[0]) + "\n" + "".join(json.dumps(p) + "\n" for p in _preds(4.0)[1:]))
    changed = build(submissions, out)
    assert (changed.scored, changed.cached, changed.rendered) == (1, 7, True)

    forced = build(submissions, out, use_cache=False)
    assert (forced.scored, forced.rendered) == (8, True)


def test_fast_path_imports_neither_pandas_nor_matplotlib(submissions: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    build(submissions, out)
    code = (
        "import sys; from mrbench.leaderboard.build import build; "
        f"r = build({str(submissions)!r}, {str(out)!r}); "
        "print(r.scored, r.rendered, 'pandas' in sys.modules, 'matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "False", "False", "False"]


def test_removed_entries_and_groups_leave_no_stale_files(submissions: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    build(submissions, out)
    other = json.loads(json.dumps(META))
    other["split"] = "train"
    # a second group (split train) exists, then goes away again
    data = tmp_path / "data"
    (submissions / "_datasets" / "toy" / "annotations" / "train.jsonl").write_bytes(
        (data / "annotations" / "train.jsonl").read_bytes())
    preds = [{"qid": q, "pred_relevant_windows": [[w[0], w[1], 1.0]]} for q, (_, w) in TRAIN.items()]
    write_entry(submissions, "train-fit", {**other, "name": "Train fit", "model": "t"}, {0: preds})
    build(submissions, out)
    assert (out / "toy" / "train" / "leaderboard.md").is_file()
    import shutil

    shutil.rmtree(submissions / "train-fit")
    build(submissions, out)
    assert not (out / "toy" / "train" / "leaderboard.md").exists()
    assert "Train fit" not in (out / "README.md").read_text(encoding="utf-8")


def test_rendering_is_deterministic(submissions: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    build(submissions, first, use_cache=False)
    build(submissions, second, use_cache=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file() and ".cache" not in p.parts)
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_markdown_and_csv_golden(submissions: Path, tmp_path: Path) -> None:
    (group,) = build(submissions, tmp_path / "boards").groups
    lines = markdown_table(group).splitlines()
    assert lines[0] == ("| # | Entry | Type | Seeds | R1@0.5 ↑ | R1@0.7 ↑ | mAP@0.5 ↑ | mAP@0.75 ↑ | mAP ↑ | HL mAP ↑ "
                        "| HIT@1 ↑ | Sp R1@0.7 ↓ | Sp R1@0.9 ↓ | Sp mAP@0.75 ↓ | Sp mAP ↓ | Ratio ↑ | Flags |")
    grounded = next(line for line in lines if "Grounded" in line).split(" | ")
    # seed 0 exact, seed 1 shifted by 1 s: R1@0.5 100 in both -> "100.00 ± 0.00"; spurious 0
    assert grounded[4] == "100.00 ± 0.00"
    assert grounded[11:15] == ["0.00 ± 0.00"] * 4
    assert csv_table(group).count("\n") == 7


def test_check_cli_ok_and_errors(submissions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(check_path(submissions)) == 6
    main(["submission", "check", str(submissions)])
    assert "ok  grounded: Grounded" in capsys.readouterr().out

    bad = submissions / "shortcut" / "preds_masked_seed0.jsonl"
    lines = bad.read_text().splitlines()
    lines[2] = lines[2].replace('"qid": 2', '"qid": 99')
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as done:
        main(["submission", "check", str(submissions / "shortcut")])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "preds_masked_seed0.jsonl" in err and "\n" not in err


def test_entry_errors_name_the_field(submissions: Path, tmp_path: Path) -> None:
    (submissions / "grounded" / "preds_seed1.jsonl.gz").unlink()
    with pytest.raises(ValidationError, match="seed 1 is absent") as info:
        build(submissions, tmp_path / "boards")
    assert info.value.field == "predictions"
    text = (submissions / "shortcut" / "submission.yaml").read_text()
    (submissions / "shortcut" / "submission.yaml").write_text(text.replace("dataset: toy", "dataset: nope"))
    with pytest.raises(ValidationError, match="dataset 'nope'") as info:
        check_path(submissions / "shortcut")
    assert info.value.field == "dataset"
    (submissions / "aaa-stray").mkdir()
    with pytest.raises(ValidationError, match="without submission.yaml"):
        check_path(submissions)


def test_build_cli(submissions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "boards"
    for expected in ("8 run(s) scored, 0 cached; outputs rendered", "0 run(s) scored, 8 cached; outputs up to date"):
        main(["leaderboard", "build", "--submissions", str(submissions), "--out", str(out)])
        assert expected in capsys.readouterr().out


def test_reported_numbers_match_the_reference_notes(shared_dir: Path) -> None:
    """Every exact reported row appears, value for value, in ../shared/reference/tddetr.md."""
    import re

    from mrbench.leaderboard.reported import TABLES, reported_csv, reported_markdown

    notes = (shared_dir / "reference" / "tddetr.md").read_text(encoding="utf-8")
    checked = 0
    for table in TABLES:
        if table.approximate or table.title == "QVHighlights val":  # val rows: prose and ablations, below
            continue
        for method, values in table.rows:
            if "InternVideo2" in method or None in values:
                continue
            cells = [re.escape(method)] + [re.escape(f"{v:.2f}") for v in values]
            pattern = r"\|\s*" + r"\s*\|\s*".join(rf"(\*\*)?{c}(\*\*)?" for c in cells) + r"\s*\|"
            assert re.search(pattern, notes), f"{table.title}: {method} {values}"
            checked += 1
    assert checked == 9
    for fig_method, fig_values in TABLES[-1].rows:
        assert re.search(rf"\| {re.escape(fig_method)} \| ≈ {fig_values[0]} \| ≈ {fig_values[1]} \|", notes)
    assert "R1@0.5 65.88, R1@0.7 53.67, mAP@0.5 66.43, mAP@0.75 49.86, mAP 49.05" in notes
    assert "| QD-DETR baseline | 46.66 | 41.82 | 41.22 |" in notes
    assert "R1@0.5 **73.49** and R1@0.7 **53.01**" in notes
    text = reported_markdown()
    assert all(t.title in text for t in TABLES) and "not scored by mrbench" in text
    assert reported_csv().count("\n") == 1 + sum(v is not None for t in TABLES for _, vs in t.rows for v in vs)


def test_submission_baselines_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, masked = make_dataset(tmp_path)
    root = tmp_path / "subs"
    main(["submission", "baselines", "--data", str(data), "--dataset", "toy", "--split", "val",
          "--masked", str(masked), "--submissions", str(root), "--seeds", "3,4", "--date", "2026-11-27"])
    assert "wrote" in capsys.readouterr().out
    subs = {s.entry_id: s for s in check_path(root)}
    assert sorted(subs) == ["baseline-length-prior", "baseline-position-prior", "baseline-uniform-random",
                            "baseline-whole-video"]
    assert subs["baseline-uniform-random"].seeds == (3, 4)
    assert subs["baseline-whole-video"].seeds == (0,)
    assert (root / "_datasets" / "toy" / "masked" / "manifest.json").is_file()
    with pytest.raises(SystemExit) as done:
        main(["submission", "baselines", "--data", str(data), "--dataset", "bad", "--seeds", "x",
              "--submissions", str(root)])
    assert done.value.code == 2
    assert not (root / "_datasets" / "bad").exists(), "a rejected command must write nothing"
