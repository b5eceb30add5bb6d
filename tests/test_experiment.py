"""The experiment runner and report: specs, shards, per-query measures against the scorer, a tiny
grid end to end (resume, a changed spec, shards sharing a folder, a failing cell), and the
report's statistics against hand values."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from mrbench.errors import MrbenchError
from mrbench.experiment import analysis as A
from mrbench.experiment.spec import Cell, MaskSpec, load_spec, parse_shard, parse_spec
from tests.conftest import run_guarded

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch (the models extra)")

TINY = {
    "name": "tiny",
    "title": "Tiny grid",
    "synth": {"n_train": 40, "n_val": 16, "n_ood": 16, "n_clips": 30, "dims": "32,16"},
    "train": {"preset": "tiny", "set": ["train.epochs=1", "train.eval_split=", "train.progress=false"]},
    "mask_sets": {"main": ["noise@3", "zero@0", "recontext@3"]},
    "datasets": [
        {"name": "nocue", "label": "no cue", "synth": {"rho_scene": 0, "rho_flank": 0, "rho_position": 0},
         "masks": "main"},
        {"name": "context-only", "synth": {"content": 0.0, "rho_scene": 0, "rho_flank": 1.0, "rho_position": 0},
         "masks": "main"},
        {"name": "default", "synth": {}, "masks": "main"},
    ],
    "baselines": ["position_prior", "mask_detector"],
    "grid": [{"datasets": ["nocue", "context-only", "default"], "models": ["qd_detr"], "seeds": [0]},
             {"datasets": ["default"], "models": ["qd_detr", "tddetr"], "seeds": [0]}],
}


def write_spec(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# --- specs ----------------------------------------------------------------------------------------
def test_spec_cells_and_masks() -> None:
    spec = parse_spec(TINY, "tiny.yaml", check_models=False)
    baselines = [c for c in spec.cells if c.kind == "baseline"]
    models = [c for c in spec.cells if c.kind == "model"]
    assert len(baselines) == 6 and len(models) == 3 + 2 - 1  # default/qd_detr seed 0 is listed twice
    assert Cell("default", "model", "tddetr", 0) in models
    assert spec.dataset("nocue").masks == (MaskSpec("noise", 3.0), MaskSpec("zero", 0.0), MaskSpec("recontext", 3.0))
    assert [m.name for m in spec.dataset("nocue").masks] == ["noise-m3", "zero-m0", "recontext-m3"]
    assert spec.dataset("default").synth == TINY["synth"]  # the shared base
    assert spec.dataset("nocue").synth["rho_flank"] == 0 and spec.dataset("nocue").synth["n_train"] == 40
    assert Cell("default", "model", "cg_detr+tddetr", 2).slug == "cg-detr-w-tddetr-seed2"
    assert Cell("nocue", "baseline", "mask_detector").key == "nocue/baseline-mask-detector"


@pytest.mark.parametrize(("change", "words"), [
    ({"colour": 1}, "unknown field"),
    ({"name": "../up"}, "name must be a name"),
    ({"mask_sets": {"main": ["blur@3"]}}, "STRATEGY@MARGIN"),
    ({"mask_sets": {"main": ["noise@3", "noise@3.0"]}}, "listed twice"),
    ({"synth": {"n_train": -1}}, "n_train"),
    ({"synth": {"rho_flenk": 0.5}}, "unknown synth setting"),
    ({"train": {"set": ["train.seed=3"]}}, "train.seed"),
    ({"train": {"set": ["epochs"]}}, "KEY=VALUE"),
    ({"baselines": ["oracle"]}, "unknown baseline 'oracle'"),
    ({"grid": [{"datasets": ["nope"], "models": ["qd_detr"]}]}, "unknown dataset"),
    ({"grid": [{"datasets": ["nocue"], "models": ["qd_detr"], "seeds": [0, 0]}]}, "distinct"),
    ({"grid": []}, "non-empty list"),
])
def test_bad_specs_name_the_field(change: dict, words: str) -> None:
    with pytest.raises(MrbenchError, match=words) as info:
        parse_spec({**TINY, **change}, "bad.yaml", check_models=False)
    assert str(info.value).startswith("bad.yaml")


def test_bad_yaml_and_bad_shard_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    outcome = run_guarded(["experiment", "run", bad, "--out", tmp_path / "run"])
    assert outcome.code == 2 and "bad.yaml, line" in outcome.err and "not valid YAML" in outcome.err
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    for shard in ("0/2", "3/2", "1", "a/b"):
        outcome = run_guarded(["experiment", "run", spec, "--out", tmp_path / "run", "--shard", shard])
        assert outcome.code == 2 and "--shard must be K/N" in outcome.err
    assert not (tmp_path / "run").exists()


def test_shards_partition_the_cells_and_balance_the_cost() -> None:
    spec = parse_spec(TINY, "tiny.yaml", check_models=False)
    costs = {cell: 1.0 + 10.0 * (cell.kind == "model") + 3.0 * (cell.name == "tddetr") for cell in spec.cells}
    for count in (1, 2, 3, 7):
        for cost in (None, costs.__getitem__):
            shards = [spec.shard(k, count, cost) for k in range(1, count + 1)]
            flat = [c for s in shards for c in s]
            assert sorted(flat, key=spec.cells.index) == list(spec.cells) and len(set(flat)) == len(flat)
            assert shards == [spec.shard(k, count, cost) for k in range(1, count + 1)]  # deterministic
    loads = [sum(costs[c] for c in spec.shard(k, 2, costs.__getitem__)) for k in (1, 2)]
    assert abs(loads[0] - loads[1]) <= max(costs.values())  # the greedy bound
    assert parse_shard(" 2 / 5 ") == (2, 5)


# --- per-query measures against the scorer ----------------------------------------------------------
def test_query_measures_equal_the_scorer(tmp_path: Path) -> None:
    from mrbench.baselines import predict_baseline
    from mrbench.data.dataset import DatasetDir
    from mrbench.data.synth import SynthConfig, generate
    from mrbench.experiment.measures import query_measures
    from mrbench.masking.build import build, source_from_dir
    from mrbench.masking.variant import Variant
    from mrbench.scoring import keys as K
    from mrbench.scoring import load_ground_truth, score

    data = generate(SynthConfig(n_train=30, n_val=25, n_ood=2, n_clips=30, dims="16,8", seed=3), tmp_path / "d",
                    progress=False)
    build(source_from_dir(data, "val"), tmp_path / "m", strategy="noise", margin=3.0, seeds=[0], progress=False)
    source = DatasetDir(data)
    preds = predict_baseline("uniform_random", source.load("val").records, clip_len=2.0, seed=4)
    truth = load_ground_truth(data / "annotations" / "val.jsonl", clip_len=2.0)
    report = score(preds, truth, masked=[preds], variant=tmp_path / "m").data
    plain = query_measures(preds, truth)
    masked = query_measures(preds, load_ground_truth(Variant(tmp_path / "m").annotations, clip_len=2.0), tmp_path / "m")
    assert 100 * plain["ap"].mean() == pytest.approx(report[K.BRIEF][K.MR_MAP], abs=0.006)
    assert 100 * np.mean(plain["iou"] >= 0.7) == pytest.approx(report[K.BRIEF][K.mr_r1(0.7)], abs=0.006)
    spurious = report[K.SPURIOUS][K.BRIEF]
    assert 100 * masked["ap"].mean() == pytest.approx(spurious[K.SPURIOUS_MAP], abs=0.006)
    assert 100 * masked["in_mask"].mean() == pytest.approx(spurious[K.CENTER_IN_MASK], abs=0.006)
    assert np.isnan(plain["ap_span"]).all() and not np.isnan(masked["ap_span"]).any()
    # the masked span contains each original window, so a top-1 window inside a window hits the span
    # at least as often: check one query by hand
    variant = Variant(tmp_path / "m")
    qid = masked["qid"][0]
    span = variant.masked_windows(qid)
    top1 = next(p for p in preds if p["qid"] == qid)["pred_relevant_windows"][0][:2]
    centre = (top1[0] + top1[1]) / 2
    assert bool(masked["in_mask"][0]) == any(s <= centre <= e for s, e in span)


# --- statistics -----------------------------------------------------------------------------------
def test_rank_correlations_by_hand() -> None:
    # x and y agree on 5 of the 6 pairs: tau = (5 - 1) / 6
    assert A.kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # a tie in x: 5 pairs are ordered in x; concordant 4, discordant 0 (the tied pair counts in y only)
    assert A.kendall_tau_b([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(5 * 6))
    assert math.isnan(A.kendall_tau_b([1, 1, 1], [1, 2, 3]))
    # Spearman: ranks [1, 2, 3, 4] against [2, 1, 4, 3]: 1 - 6 * 4 / (4 * 15) = 0.6
    assert A.spearman([10, 20, 30, 40], [2, 1, 4, 3]) == pytest.approx(0.6)
    assert A.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_intervals() -> None:
    t = A.t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(2) = 4.303
    assert (t.value, t.low, t.high) == pytest.approx((2.0, 2.0 - 4.303 / math.sqrt(3), 2.0 + 4.303 / math.sqrt(3)))
    assert math.isnan(A.t_interval([5.0]).low) and A.t_interval([5.0]).value == 5.0
    values = np.r_[np.zeros(60), np.ones(40)]
    estimate = A.pct_mean(values, offset=7)
    assert estimate.value == pytest.approx(40.0) and estimate == A.pct_mean(values, offset=7)
    # brute force: the same resamples, their means, the 2.5 / 97.5 percentiles
    index = A.rng(7).integers(0, 100, size=(A.N_BOOT, 100))
    means = 100 * values[index].mean(1)
    assert (estimate.low, estimate.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert 29 < estimate.low < 40 < estimate.high < 51  # binomial sd ~4.9 points: about +- 9.6
    ratio = A.ratio_of_means(np.full(10, 1.0), np.full(10, 2.0))
    assert (ratio.value, ratio.low, ratio.high) == (0.5, 0.5, 0.5)
    assert A.Estimate(1.0, -0.5, 2.0).excludes_zero is False and A.Estimate(1.0, 0.5, 2.0).excludes_zero


# --- the grid end to end --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("experiment")
    spec = write_spec(root / "tiny.yaml", TINY)
    for shard in ("1/2", "2/2"):  # two shards into one folder, one after the other
        outcome = run_guarded(["experiment", "run", spec, "--out", root / "run", "--shard", shard, "--quiet"])
        assert outcome.code == 0, outcome.err
    return spec, root / "run"


@needs_torch
@pytest.mark.slow
def test_grid_runs_every_cell_once(tiny_run: tuple[Path, Path]) -> None:
    spec_path, run = tiny_run
    spec = load_spec(spec_path)
    records = sorted(run.glob("cells/*/*/cell.json"))
    assert len(records) == len(spec.cells) == 10
    import pandas as pd

    frame = pd.read_parquet(run / "cells" / "default" / "tddetr-seed0" / "queries.parquet")
    assert sorted(set(frame["eval"])) == ["masked:noise-m3", "masked:recontext-m3", "masked:zero-m0", "val", "val_ood"]
    assert (frame.groupby("eval").size() == 16).all()
    detector = pd.read_parquet(run / "cells" / "nocue" / "baseline-mask-detector" / "queries.parquet")
    assert sorted(set(detector["eval"])) == ["masked:noise-m3", "masked:recontext-m3", "masked:zero-m0"]
    record = json.loads((run / "cells" / "default" / "tddetr-seed0" / "cell.json").read_text())
    assert record["settings"]["seed"] == 0 and record["title"] == "TD-DETR" and record["samples_per_s"] > 0
    assert json.loads((run / "experiment.json").read_text())["models"] == ["qd_detr", "tddetr"]


@needs_torch
@pytest.mark.slow
def test_grid_resumes_and_refuses_a_changed_spec(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    spec_path, run = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("runs"))
    before = (copy / "cells" / "nocue" / "qd-detr-seed0" / "queries.parquet").read_bytes()
    (copy / "cells" / "default" / "baseline-position-prior" / "cell.json").unlink()  # killed before its record
    outcome = run_guarded(["experiment", "run", spec_path, "--out", copy, "--quiet"])
    assert outcome.code == 0, outcome.err
    assert "1 to compute" in outcome.err and (copy / "cells" / "default" / "baseline-position-prior" / "cell.json").is_file()
    assert (copy / "cells" / "nocue" / "qd-detr-seed0" / "queries.parquet").read_bytes() == before
    changed = write_spec(tmp_path / "changed.yaml", {**TINY, "synth": {**TINY["synth"], "n_val": 17}})
    outcome = run_guarded(["experiment", "run", changed, "--out", copy, "--quiet"])
    assert outcome.code == 2 and "computed with other settings (n_val)" in outcome.err


@needs_torch
@pytest.mark.slow
def test_a_failing_cell_does_not_stop_the_others(tmp_path: Path) -> None:
    data = {**TINY, "grid": [{"datasets": ["nocue"], "models": ["qd_detr"], "seeds": [0]}],
            "train": {"preset": "tiny", "set": ["train.epochs=1", "train.eval_split=", "train.progress=false",
                                                "train.lr=-1"]}}
    spec = write_spec(tmp_path / "fail.yaml", data)
    outcome = run_guarded(["experiment", "run", spec, "--out", tmp_path / "run", "--quiet"])
    assert outcome.code == 2 and "1 cells failed (nocue/qd-detr-seed0)" in outcome.err
    assert len(list((tmp_path / "run" / "cells").glob("*/*/cell.json"))) == 6  # the baselines finished
    assert (tmp_path / "run" / "errors" / "nocue--qd-detr-seed0.txt").read_text().startswith("Traceback")


@needs_torch
@pytest.mark.slow
def test_report_rebuilds_identically(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = tiny_run
    for out in ("a", "b"):
        outcome = run_guarded(["experiment", "report", run, "--out", tmp_path / out])
        assert outcome.code == 0, outcome.err
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {"README.md", "sensitivity.png", "claim.md", "score_against.csv", "specificity.md"} <= set(names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    page = (tmp_path / "a" / "README.md").read_text()
    assert "10 of 10 cells" in page and "## 7. The paper's claim" in page
    claim = (tmp_path / "a" / "claim.csv").read_text()
    assert "QD-DETR" in claim and "TD-DETR" in claim
    outcome = run_guarded(["experiment", "report", run, "--out", run / "cells" / "x"])
    assert outcome.code == 2 and "inside the input folder" in outcome.err


def test_report_refuses_broken_cells_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    outcome = run_guarded(["experiment", "report", run, "--out", tmp_path / "out"])
    assert outcome.code == 2 and "not an experiment run folder" in outcome.err
    (run / "cells" / "nocue" / "qd-detr-seed0").mkdir(parents=True)
    (run / "experiment.json").write_text('{"name": "x"}', encoding="utf-8")
    outcome = run_guarded(["experiment", "report", run, "--out", tmp_path / "out"])
    assert outcome.code == 2 and "experiment.json: not an experiment record" in outcome.err
    record = {"name": "x", "title": "x", "split": "val", "ood_split": "val_ood", "preset": "tiny", "train_sets": [],
              "datasets": [{"name": "nocue", "label": "no cue", "synth": {}, "masks": []}], "models": ["qd_detr"],
              "baselines": [], "cells": 1}
    (run / "experiment.json").write_text(json.dumps(record), encoding="utf-8")
    cell = run / "cells" / "nocue" / "qd-detr-seed0"
    (cell / "cell.json").write_text('{"settings": {"dataset": "nocue"}}', encoding="utf-8")
    outcome = run_guarded(["experiment", "report", run, "--out", tmp_path / "out"])
    assert outcome.code == 2 and "cell.json: not a cell record (KeyError" in outcome.err
    (cell / "cell.json").write_text(json.dumps({"settings": {"dataset": "nocue", "kind": "model", "name": "qd_detr",
                                                             "seed": 0}}), encoding="utf-8")
    (cell / "queries.parquet").write_bytes(b"PAR1 truncated")
    outcome = run_guarded(["experiment", "report", run, "--out", tmp_path / "out"])
    assert outcome.code == 2 and "queries.parquet: not a cell's per-query table" in outcome.err
