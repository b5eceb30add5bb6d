"""The leaderboard package's structure: no import circle, a pure table model, rendering that
imports only the table model, and cache keys computed from the code path (changing any module
on the scoring path, ``mrbench/io.py`` included, or ``aggregate()`` invalidates them)."""

from __future__ import annotations

import ast
import graphlib
import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mrbench.leaderboard.build import build
from mrbench.leaderboard.entries import export_dataset, write_entry
from mrbench.leaderboard.fingerprint import (
    PACKAGE_ROOT,
    code_fingerprint,
    imported_names,
    source_closure,
)
from tests.test_leaderboard import META, _preds, make_dataset

LEADERBOARD = PACKAGE_ROOT / "leaderboard"
#: The modules (the package's ``build`` attribute is the function, hence import_module).
build_module = importlib.import_module("mrbench.leaderboard.build")
runs_module = importlib.import_module("mrbench.leaderboard.runs")


def package_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (anywhere in its source, function
    bodies included); the package's ``__init__`` is not a node."""
    modules = {path.stem for path in folder.glob("*.py") if path.name != "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        source = (folder / f"{name}.py").read_text(encoding="utf-8")
        targets = {imported.split(".")[2] for imported in imported_names(source, f"{package}.{name}", False)
                   if imported.startswith(f"{package}.") and len(imported.split(".")) > 2}
        graph[name] = (targets & modules) - {name}
    return graph


def mrbench_imports(path: Path) -> set[str]:
    """Every ``mrbench`` module name a file's imports mention."""
    names = imported_names(path.read_text(encoding="utf-8"), "mrbench.x", False)
    return {name for name in names if name.split(".")[0] == "mrbench"}


def test_the_leaderboard_package_has_no_import_circle() -> None:
    graph = package_graph(LEADERBOARD, "mrbench.leaderboard")
    assert {"table", "submission", "render", "runs", "cache", "build"} <= set(graph)
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a circle
    assert order.index("table") < order.index("render") < order.index("build")


def test_a_circle_is_detected() -> None:
    """The check itself: the graph of the package before the split had a circle."""
    before = {"build": {"submission", "render"}, "submission": {"build"}, "render": {"build"}}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(before).static_order())


def test_the_table_model_is_pure_and_rendering_imports_only_it() -> None:
    table = mrbench_imports(LEADERBOARD / "table.py")
    assert table <= {"mrbench.scoring", "mrbench.scoring.keys"}, table
    tree = ast.parse((LEADERBOARD / "table.py").read_text(encoding="utf-8"))
    stdlib = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
              for alias in node.names}
    stdlib |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not stdlib & {"os", "io", "pathlib", "shutil", "json", "tempfile"}  # no I/O
    render = {name for name in mrbench_imports(LEADERBOARD / "render.py") if name.startswith("mrbench.leaderboard")}
    assert {name.split(".")[2] for name in render if len(name.split(".")) > 2} <= {"table", "reported"}, render


def test_no_library_module_imports_the_cli() -> None:
    for path in (*LEADERBOARD.glob("*.py"), *(PACKAGE_ROOT / "scoring").glob("*.py")):
        assert not any(name.startswith("mrbench.cli") for name in mrbench_imports(path)), path


def test_the_scoring_closure_is_computed_and_complete() -> None:
    modules, external = source_closure(["mrbench.leaderboard.runs"])
    assert {"mrbench.io", "mrbench.scoring.core", "mrbench.scoring.predictions", "mrbench.metrics.retrieval",
            "mrbench.data.schema", "mrbench.leaderboard.submission"} <= set(modules)
    assert "mrbench.leaderboard.render" not in modules and "mrbench.cli" not in modules
    assert {"numpy", "yaml"} <= external
    rendering, _ = source_closure(["mrbench.leaderboard.render"])
    assert {"mrbench.leaderboard.table", "mrbench.leaderboard.reported", "mrbench.scoring.keys"} <= set(rendering)


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the ``mrbench`` sources to edit."""
    copy = tmp_path / "src" / "mrbench"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _append(path: Path, text: str = "\n# edited\n") -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@pytest.mark.parametrize("rel", ["io.py", "scoring/core.py", "scoring/predictions.py", "metrics/iou.py",
                                 "data/schema.py", "leaderboard/runs.py", "leaderboard/submission.py",
                                 "errors.py", "scoring/__init__.py"])
def test_editing_a_module_on_the_scoring_path_changes_the_scorer_fingerprint(package_copy: Path, rel: str) -> None:
    before = code_fingerprint(["mrbench.leaderboard.runs"], package_copy)
    _append(package_copy / rel)
    assert code_fingerprint(["mrbench.leaderboard.runs"], package_copy) != before


@pytest.mark.parametrize("rel", ["cli/demo.py", "leaderboard/render.py", "leaderboard/build.py"])
def test_modules_off_the_scoring_path_leave_the_scorer_fingerprint(package_copy: Path, rel: str) -> None:
    before = code_fingerprint(["mrbench.leaderboard.runs"], package_copy)
    _append(package_copy / rel)
    assert code_fingerprint(["mrbench.leaderboard.runs"], package_copy) == before


def test_editing_aggregate_changes_the_render_fingerprint(package_copy: Path) -> None:
    before = code_fingerprint([build_module.RENDERER], package_copy)
    table = package_copy / "leaderboard" / "table.py"
    source = table.read_text(encoding="utf-8")
    edited = source.replace("/ (n - 1)", "/ n")
    assert edited != source
    table.write_text(edited, encoding="utf-8")
    assert code_fingerprint([build_module.RENDERER], package_copy) != before


@pytest.fixture
def small_submissions(tmp_path: Path) -> Path:
    data, masked = make_dataset(tmp_path)
    root = tmp_path / "submissions"
    export_dataset(root, "toy", data, ["val"], variants={"masked": masked}, title="Toy", columns="qvhighlights")
    write_entry(root, "grounded", {**META, "name": "Grounded", "model": "g"}, {0: _preds(0.0), 1: _preds(1.0)},
                {0: _preds(60.0, True), 1: _preds(61.0, True)})
    return root


def _from(copy: Path) -> Callable[..., str]:
    """``code_fingerprint`` reading the sources of ``copy`` instead of the installed package."""
    return lambda entries: code_fingerprint(entries, copy)


def test_a_build_rescores_when_io_changes_and_rerenders_when_aggregate_changes(
        small_submissions: Path, package_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module, "code_fingerprint", _from(package_copy))
    monkeypatch.setattr(build_module, "code_fingerprint", _from(package_copy))
    out = tmp_path / "boards"
    first = build(small_submissions, out)
    assert (first.scored, first.rendered) == (2, True)
    again = build(small_submissions, out)
    assert (again.scored, again.cached, again.rendered) == (0, 2, False)

    _append(package_copy / "io.py")  # the prediction reader's module: every run is rescored
    after_io = build(small_submissions, out)
    assert (after_io.scored, after_io.cached) == (2, 0)

    table = package_copy / "leaderboard" / "table.py"
    table.write_text(table.read_text(encoding="utf-8").replace("/ (n - 1)", "/ n"), encoding="utf-8")
    assert build(small_submissions, out).rendered  # the same numbers, but the rendering code changed
