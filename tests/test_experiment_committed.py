"""The committed experiment reports rebuild from the committed cell results: markdown and csv byte
for byte, the cells table by content (parquet bytes depend on the pyarrow release), every plot a
PNG of the same size."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
REPORTS = ROOT / "leaderboards" / "experiments"
NAMES = sorted(p.name for p in RESULTS.iterdir() if (p / "experiment.json").is_file()) if RESULTS.is_dir() else []


def test_every_committed_report_has_its_results() -> None:
    reports = sorted(p.name for p in REPORTS.iterdir() if p.is_dir()) if REPORTS.is_dir() else []
    assert reports == NAMES
    assert "validity-cpu" in NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_committed_report_rebuilds(name: str, tmp_path: Path) -> None:
    from mrbench.experiment.report import build_report

    written = build_report(RESULTS / name, tmp_path)
    committed = REPORTS / name
    assert sorted(p.name for p in written) == sorted(p.name for p in committed.iterdir())
    for path in written:
        rel = path.name
        if path.suffix in (".md", ".csv"):
            assert path.read_bytes() == (committed / rel).read_bytes(), f"{rel} differs: rerun mrbench experiment report"
        elif path.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(committed / rel))
        else:
            from PIL import Image

            with Image.open(path) as new, Image.open(committed / rel) as old:
                assert new.size == old.size
