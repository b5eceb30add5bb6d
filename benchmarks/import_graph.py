"""The import graph of ``mrbench`` and ``reference_models``, read from the source with ``ast``.

    python benchmarks/import_graph.py            # package graph, cycles, CLI imports
    python benchmarks/import_graph.py --modules  # every module edge too
    python benchmarks/import_graph.py --rev REV  # the graph of a git revision (e.g. HEAD~20)

Every import counts: module level, inside functions (lazy) and under ``TYPE_CHECKING``, because
each is a dependency a reader has to follow. A cycle is a strongly connected component of more
than one module. ``tests/test_architecture.py`` asserts what docs/architecture.md promises.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

ROOTS = ("mrbench", "reference_models")


def module_name(path: Path, root: Path) -> str:
    """``mrbench/scoring/core.py`` -> ``mrbench.scoring.core``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest known module that ``name`` is or lies in (``pkg.mod.func`` -> ``pkg.mod``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` for every module under ``root/{mrbench,reference_models}``."""
    files = {module_name(p, root): p for top in ROOTS for p in sorted((root / top).rglob("*.py"))}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                found = _resolve(target, modules)
                if found and found != name:
                    graph[name].add(found)
    for name in list(graph):  # a package's __init__ is not a dependency of its own modules
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative),
    sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def package_of(module: str) -> str:
    """The package a module belongs to for the layering: ``mrbench.scoring.core`` ->
    ``mrbench.scoring``; top-level modules are their own (``mrbench.io``)."""
    parts = module.split(".")
    if parts[0] == "reference_models":
        return "reference_models"
    return ".".join(parts[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between :func:`package_of` packages (self-edges dropped)."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[package_of(module)]
        for target in targets:
            if package_of(target) != package_of(module):
                packages[package_of(module)].add(package_of(target))
    return dict(packages)


def cli_importers(graph: dict[str, set[str]]) -> list[str]:
    """Modules outside ``mrbench.cli`` that import ``mrbench.cli``."""
    return sorted(m for m, targets in graph.items()
                  if not m.startswith("mrbench.cli") and any(t.startswith("mrbench.cli") for t in targets))


def _checkout(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", rev, *ROOTS], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", help="a git revision to read instead of the working tree")
    parser.add_argument("--modules", action="store_true", help="print every module edge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = _checkout(args.rev, Path(tmp)) if args.rev else Path(__file__).resolve().parents[1]
        graph = import_graph(root)
    label = args.rev or "working tree"
    print(f"# import graph ({label}): {len(graph)} modules, {sum(map(len, graph.values()))} edges")
    print("\n## packages (A -> what A imports)")
    for package, targets in sorted(package_graph(graph).items()):
        print(f"{package} -> {', '.join(sorted(targets)) or '-'}")
    found = cycles(graph)
    print(f"\n## import cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    importers = cli_importers(graph)
    print(f"\n## modules outside mrbench.cli importing mrbench.cli: {len(importers)}")
    for module in importers:
        print("  " + module)
    if args.modules:
        print("\n## modules")
        for module, targets in sorted(graph.items()):
            print(f"{module} -> {', '.join(sorted(targets)) or '-'}")


if __name__ == "__main__":
    main()
