"""CI check: the committed ``leaderboards/`` is exactly what ``mrbench leaderboard build`` makes
from the committed ``submissions/``.

Text outputs (Markdown, CSV, HTML) must be byte-identical. Parquet files are compared by content
(their footer names the writing library's version). PNG files are compared by decoded pixels;
when the installed matplotlib differs from the one that rendered the committed images, the pixel
comparison is skipped with a reason (font rasterization may change between releases) while the
HTML, whose embedded images are part of its bytes, is then compared with the images removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mrbench.leaderboard.build import build
from mrbench.leaderboard.cache import CACHE_DIR

REPO = Path(__file__).resolve().parents[1]
SUBMISSIONS = REPO / "submissions"
LEADERBOARDS = REPO / "leaderboards"
_IMG = re.compile(r'src="data:image/png;base64,[^"]*"')


def _files(root: Path) -> list[Path]:
    """Output files (not the cache, not the real-data boards of leaderboards/real: tests/test_real_leaderboards.py,
    not the experiment reports of leaderboards/experiments: tests/test_experiment_committed.py)."""
    return sorted(rel for p in root.rglob("*") if p.is_file() and CACHE_DIR not in p.parts
                  and (rel := p.relative_to(root)).parts[0] not in ("real", "experiments"))


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SUBMISSIONS.is_dir() or not LEADERBOARDS.is_dir():
        pytest.fail("submissions/ and leaderboards/ must both be committed")
    out = tmp_path_factory.mktemp("leaderboards")
    build(SUBMISSIONS, out, cache=out / "scores.json", use_cache=False)
    (out / "scores.json").unlink()
    return out


def _same_matplotlib(png: Path) -> bool:
    import matplotlib
    from PIL import Image

    with Image.open(png) as image:
        source = image.info.get("Source", "")
    return source.endswith(f"matplotlib {matplotlib.__version__}")


def test_same_set_of_files(rebuilt: Path) -> None:
    assert _files(LEADERBOARDS) == _files(rebuilt)


def test_text_outputs_are_identical(rebuilt: Path) -> None:
    for rel in _files(rebuilt):
        if rel.suffix in (".md", ".csv"):
            assert (LEADERBOARDS / rel).read_bytes() == (rebuilt / rel).read_bytes(), f"{rel} differs: rebuild it"


def test_html_is_identical(rebuilt: Path) -> None:
    pngs = [p for p in _files(rebuilt) if p.suffix == ".png"]
    same = all(_same_matplotlib(LEADERBOARDS / p) for p in pngs)
    for rel in _files(rebuilt):
        if rel.suffix == ".html":
            committed, fresh = (LEADERBOARDS / rel).read_text("utf-8"), (rebuilt / rel).read_text("utf-8")
            if not same:
                committed, fresh = _IMG.sub("", committed), _IMG.sub("", fresh)
            assert committed == fresh, f"{rel} differs: rebuild it"


def test_parquet_content_is_identical(rebuilt: Path) -> None:
    import pandas as pd

    for rel in _files(rebuilt):
        if rel.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(LEADERBOARDS / rel), pd.read_parquet(rebuilt / rel))


def test_png_pixels_are_identical(rebuilt: Path) -> None:
    import numpy as np
    from PIL import Image

    pngs = [p for p in _files(rebuilt) if p.suffix == ".png"]
    assert pngs
    if not all(_same_matplotlib(LEADERBOARDS / p) for p in pngs):
        pytest.skip("the committed plots were rendered by another matplotlib release")
    for rel in pngs:
        with Image.open(LEADERBOARDS / rel) as a, Image.open(rebuilt / rel) as b:
            assert a.size == b.size, rel
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"{rel}: pixels differ"


def test_committed_ground_truth_is_what_the_generator_makes() -> None:
    """The synthetic ground truth in submissions/_datasets is reproducible from its recorded
    generator config (planning only: no features are rendered)."""
    import json

    from mrbench.data.schema import FileStyle, dumps_annotations
    from mrbench.data.synth import GENERATOR_VERSION, SynthConfig, plan

    store = SUBMISSIONS / "_datasets" / "synth-default"
    extra = json.loads((store / "dataset.json").read_text(encoding="utf-8"))["extra"]
    assert extra["generator_version"] == GENERATOR_VERSION, "regenerate the entries: the generator changed"
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in extra["config"].items()}
    _, videos = plan(SynthConfig(**settings))
    for path in sorted((store / "annotations").glob("*.jsonl")):
        records = [q.record for v in videos for q in v.queries if q.split == path.stem]
        text = dumps_annotations(records, FileStyle(final_newline=True))
        assert text == path.read_text(encoding="utf-8"), f"{path.name} differs from `mrbench synth` output"


def test_readme_tables_are_the_committed_leaderboards() -> None:
    """The README's copies of the val and test_ood tables are the committed ones, row for row."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for split in ("val", "test_ood"):
        board = (REPO / "leaderboards" / "synth-default" / split / "leaderboard.md").read_text(encoding="utf-8")
        rows = [line for line in board.splitlines() if line.startswith("|")]
        assert len(rows) >= 3
        assert "\n".join(rows) in readme, f"README.md's {split} table differs from the committed leaderboard"
