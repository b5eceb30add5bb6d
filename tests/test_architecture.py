"""The house as docs/architecture.md describes it: no import cycle, no library module importing
the CLI, and each package importing only the layers below it (benchmarks/import_graph.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = {"mrbench.errors", "mrbench.io", "mrbench.metrics", "mrbench.data", "mrbench.baselines",
           "mrbench.masking", "mrbench.scoring", "mrbench.probes", "mrbench.leaderboard", "reference_models",
           "mrbench.mask_detector"}
#: what each package may import (docs/architecture.md, "Layers")
ALLOWED = {
    "mrbench.errors": set(),
    "mrbench.metrics": set(),
    "mrbench.io": {"mrbench.errors"},
    "mrbench.data": {"mrbench.errors", "mrbench.io", "mrbench.metrics"},
    "mrbench.baselines": {"mrbench.errors", "mrbench.data"},
    "mrbench.masking": {"mrbench.errors", "mrbench.io", "mrbench.data"},
    "mrbench.scoring": {"mrbench.errors", "mrbench.io", "mrbench.data", "mrbench.metrics", "mrbench.masking"},
    "mrbench.probes": {"mrbench.errors", "mrbench.data", "mrbench.metrics", "mrbench.baselines"},
    "mrbench.leaderboard": {"mrbench.errors", "mrbench.io", "mrbench.data", "mrbench.metrics", "mrbench.masking",
                            "mrbench.scoring", "mrbench.baselines"},
    "reference_models": {"mrbench.errors", "mrbench.io", "mrbench.data", "mrbench.metrics", "mrbench.masking",
                         "mrbench.scoring"},
    "mrbench.mask_detector": {"mrbench.errors", "mrbench.io", "mrbench.data", "mrbench.metrics", "mrbench.masking"},
    "mrbench.pipeline": LIBRARY,
    "mrbench.experiment": LIBRARY | {"mrbench.pipeline"},
    "mrbench.cli": LIBRARY | {"mrbench.pipeline", "mrbench.experiment", "mrbench"},
    "mrbench": {"mrbench.scoring"},
    "mrbench.__main__": {"mrbench.cli"},
}


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "benchmarks" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_graph_tool_finds_a_cycle(tool: ModuleType, tmp_path: Path) -> None:
    """The checks below can fail: a planted circle (lazy import included) and a CLI import are found."""
    package = tmp_path / "mrbench"
    (package / "cli").mkdir(parents=True)
    (tmp_path / "reference_models").mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli" / "__init__.py").write_text("")
    (package / "a.py").write_text("from mrbench import b\n")
    (package / "b.py").write_text("def f():\n    from .a import g\n")
    (package / "c.py").write_text("import mrbench.cli\n")
    graph = tool.import_graph(tmp_path)
    assert graph["mrbench.a"] == {"mrbench.b"} and graph["mrbench.b"] == {"mrbench.a"}
    assert tool.cycles(graph) == [["mrbench.a", "mrbench.b"]]
    assert tool.cli_importers(graph) == ["mrbench.c"]


def test_no_import_cycle(tool: ModuleType) -> None:
    assert tool.cycles(tool.import_graph(ROOT)) == []


def test_only_the_entry_point_imports_the_cli(tool: ModuleType) -> None:
    assert tool.cli_importers(tool.import_graph(ROOT)) == ["mrbench.__main__"]


def test_packages_import_only_the_layers_below(tool: ModuleType) -> None:
    packages = tool.package_graph(tool.import_graph(ROOT))
    unknown = sorted(set(packages) - set(ALLOWED))
    assert not unknown, f"new packages {unknown}: give them a layer in docs/architecture.md and ALLOWED"
    breaches = {p: sorted(t - ALLOWED[p]) for p, t in packages.items() if t - ALLOWED[p]}
    assert not breaches
    assert tool.cycles(packages) == []
