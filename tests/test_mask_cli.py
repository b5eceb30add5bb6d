"""``mrbench mask`` and ``mrbench mask verify`` end to end (in-process CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrbench.data.features import FeatureStore
from mrbench.data.schema import read_annotations, write_annotations
from mrbench.masking import build_variant, source_from_file
from tests.conftest import require_shared, run_cli
from tests.test_masking import Interrupt, make_dataset_dir, make_tree


@pytest.fixture(scope="module")
def catalog_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data root holding the first 100 QVHighlights val and Charades-STA test queries under the
    catalog's file names, and one feature tree for both."""
    root = tmp_path_factory.mktemp("data")
    records = []
    for dataset, name, clip_len in (("qvhighlights", "highlight_val_release.jsonl", 2.0),
                                    ("charades_sta", "charades_test_release.jsonl", 1.0)):
        annotations = read_annotations(require_shared("data", dataset, name))
        subset = annotations.records[:100]
        write_annotations(root / dataset / name, subset, annotations.style)
        make_tree(root / dataset / "features", subset, clip_len)
        records += subset
    return root, root / "qvhighlights" / "features"


def test_catalog_dataset(tmp_path: Path, catalog_root: tuple, capsys: pytest.CaptureFixture) -> None:
    root, _ = catalog_root
    for dataset, split, clip_len in (("qvhighlights", "val", 2), ("charades_sta", "test", 1)):
        out = tmp_path / dataset
        code = run_cli(["mask", "--dataset", dataset, "--root", str(root / dataset), "--split", split,
                        "--features", str(root / dataset / "features"), "--out", str(out), "--quiet"])
        assert code == 0
        assert f"wrote {out}: 100 queries" in capsys.readouterr().out
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["clip_len"] == clip_len and manifest["source"]["dataset"] == dataset
        assert run_cli(["mask", "verify", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "OK (strategy noise, seed 0, margin 3 s" in printed and "queries 100" in printed
        assert "share of each video masked: mean" in printed


def test_annotations_file_with_clip_len(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    annotations = read_annotations(require_shared("data", "tacos", "tacos_test_release.jsonl"))
    records = annotations.records[:30] + annotations.records[-30:]  # two videos at least
    write_annotations(tmp_path / "tacos.jsonl", records, annotations.style)
    make_tree(tmp_path / "features", records, 2.0)
    out = tmp_path / "out"
    code = run_cli(["mask", "--annotations", str(tmp_path / "tacos.jsonl"), "--clip-len", "2",
                    "--features", str(tmp_path / "features"), "--out", str(out), "--strategy", "swap",
                    "--margin", "1.5", "--quiet"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"] == "tacos" and manifest["margin"] == 1.5 and manifest["strategy"] == "swap"
    # TACoS qids are strings: s30-d52_0 [4.80, 12.04] widened by 1.5 s -> floor(3.30/2), floor(13.54/2)
    assert manifest["queries"]["s30-d52_0"]["masked_clips"] == [[1, 7]]
    assert (out / "features/clip_features/s30-d52__mask_qs30-d52_0.npz").is_file()
    assert run_cli(["mask", "verify", str(out)]) == 0


def test_dataset_directory_several_seeds_workers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = make_dataset_dir(tmp_path / "synth")
    out = tmp_path / "out"
    code = run_cli(["mask", "--data", str(directory.root), "--split", "val_ood", "--out", str(out),
                    "--seeds", "0,1,2", "--workers", "2", "--strategy", "recontext", "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0", "seed1", "seed2"]
    assert run_cli(["mask", "verify", str(out)]) == 0
    assert capsys.readouterr().out.count(": OK (strategy recontext") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --dataset, --annotations or --data"),
        (["--dataset", "qvhighlights", "--data", "."], "give exactly one of"),
        (["--annotations", "{ann}", "--features", "{feat}", "--out", "{out}"], "--annotations needs --clip-len"),
        (["--annotations", "{ann}", "--clip-len", "2", "--features", "{feat}"], "--out is required"),
        (["--dataset", "nope", "--split", "val", "--features", "{feat}", "--out", "{out}"], "unknown dataset 'nope'"),
        (["--annotations", "{ann}", "--clip-len", "2", "--features", "{feat}", "--out", "{out}",
          "--seeds", "a,b"], "comma-separated integers"),
        (["--annotations", "{ann}", "--clip-len", "0", "--features", "{feat}", "--out", "{out}"],
         "positive"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, args: list, message: str) -> None:
    (tmp_path / "a.jsonl").write_text('{"qid": 1, "query": "q", "duration": 10, "vid": "v", '
                                      '"relevant_windows": [[1, 2]]}\n')
    (tmp_path / "f").mkdir()
    values = {"ann": str(tmp_path / "a.jsonl"), "feat": str(tmp_path / "f"), "out": str(tmp_path / "o")}
    assert run_cli(["mask", *[a.format(**values) for a in args]]) == 2
    assert message in capsys.readouterr().err


def test_missing_features_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a.jsonl").write_text('{"qid": 1, "query": "q", "duration": 10, "vid": "v"'
                                      ', "relevant_windows": [[1, 2]]}\n')
    (tmp_path / "f" / "clip_features").mkdir(parents=True)
    code = run_cli(["mask", "--annotations", str(tmp_path / "a.jsonl"), "--clip-len", "1",
                    "--features", str(tmp_path / "f"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "clip_features: v" in err and "qid1" in err
    assert "Traceback" not in err


def test_resume_and_verify_failure(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    annotations = read_annotations(require_shared("data", "qvhighlights", "highlight_val_release.jsonl"))
    write_annotations(tmp_path / "val.jsonl", annotations.records[:30], annotations.style)
    make_tree(tmp_path / "f", annotations.records[:30], 2.0)
    source = source_from_file(tmp_path / "val.jsonl", 2.0, tmp_path / "f", split="val")

    def interrupt(key: str) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):
        build_variant(source, tmp_path / "out", on_query=interrupt)
    args = ["mask", "--annotations", str(tmp_path / "val.jsonl"), "--clip-len", "2", "--split", "val",
            "--features", str(tmp_path / "f"), "--out", str(tmp_path / "out"), "--quiet"]
    assert run_cli(args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert run_cli([*args, "--resume"]) == 0
    assert "30 queries" in capsys.readouterr().out
    assert run_cli(["mask", "verify", str(tmp_path / "out")]) == 0
    assert run_cli([*args, "--resume", "--strategy", "zero"]) == 2
    assert "differing: strategy" in capsys.readouterr().err
    assert run_cli([*args, "--force", "--resume"]) == 2
    assert run_cli([*args, "--force", "--strategy", "zero"]) == 0  # built beside, swapped in
    assert json.loads((tmp_path / "out/manifest.json").read_text())["strategy"] == "zero"
    assert run_cli([*args, "--force"]) == 0

    entry = json.loads((tmp_path / "out/manifest.json").read_text())["queries"]["2579"]
    FeatureStore(tmp_path / "out/features").write_video(
        "slowfast_features", entry["vid"], np.zeros((75, 6), np.float32))
    capsys.readouterr()
    assert run_cli(["mask", "verify", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "verification failed, 1 problem(s)" in err and entry["vid"] in err
    assert run_cli(["mask", "verify", str(tmp_path)]) == 2
    assert "not a masked variant" in capsys.readouterr().err


def test_on_mrbench_synth_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    if importlib.util.find_spec("mrbench.cli.synth") is None:
        pytest.skip("mrbench synth is not available")
    assert run_cli(["synth", "--out", str(tmp_path / "syn"), "--n-train", "10", "--n-val", "10",
                    "--n-ood", "10"]) == 0
    for split in ("train", "val", "val_ood", "test_ood"):
        out = tmp_path / split
        assert run_cli(["mask", "--data", str(tmp_path / "syn"), "--split", split, "--out", str(out),
                        "--quiet"]) == 0
        assert run_cli(["mask", "verify", str(out)]) == 0
        assert "queries 10," in capsys.readouterr().out
