"""Content fingerprints of code paths, computed from the import graph (never listed by hand).

:func:`source_closure` follows every ``import`` statement (top level, inside functions and
``TYPE_CHECKING`` blocks alike, found with :mod:`ast`) from a set of entry modules through the
``mrbench`` package, parent packages' ``__init__`` included, without importing anything. :func:`code_fingerprint`
hashes those files' bytes together with the Python release and the version of every third-party
package the closure imports, so a cache keyed by it goes stale exactly when code it ran may differ.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = "mrbench"
#: The ``mrbench`` package folder this module belongs to.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def module_file(name: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """The source file of module ``name`` (``mrbench`` or ``mrbench.x.y``) under ``root`` (the
    ``mrbench`` folder), or ``None`` when no such module exists (e.g. a function's name)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if len(parts) > 1 and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _import_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a statement list and of every block nested in it (functions,
    classes, ``if``, ``try``, ``with``, loops, ``match``); expressions are not searched."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for value in ast.iter_fields(node):
            items = value[1] if isinstance(value[1], list) else []
            for item in items:
                if isinstance(item, ast.stmt):
                    yield from _import_nodes([item])
                elif isinstance(item, (ast.excepthandler, ast.match_case)):
                    yield from _import_nodes(item.body)


@functools.lru_cache(maxsize=1024)
def imported_names(source: str, name: str, is_package: bool) -> frozenset[str]:
    """Every module name an ``import`` in ``source`` (module ``name``) may load: ``import a.b``
    gives ``a.b``; ``from a import b`` gives ``a`` and ``a.b`` (``b`` may be a submodule);
    relative imports are resolved against ``name``."""
    names: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in _import_nodes(ast.parse(source).body):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{node.module}" if node.module else anchor
        else:
            base = node.module or ""
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b]``: the packages whose ``__init__`` runs before ``a.b.c``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def source_closure(entries: Iterable[str], root: Path = PACKAGE_ROOT) -> tuple[dict[str, Path], set[str]]:
    """The ``mrbench`` modules reachable by imports from ``entries`` (name -> source file) and
    the top-level names of the other (third-party) packages they import; the standard library
    is left out. The ``__init__`` of a package that is only the parent of an imported module is
    hashed too, but its own imports are followed only when the package itself is imported."""
    found: dict[str, Path] = {}
    followed: set[str] = set()
    external: set[str] = set()
    todo = [(name, True) for name in entries]
    while todo:
        name, follow = todo.pop()
        path = found.get(name) or module_file(name, root)
        if path is None:
            continue
        found[name] = path
        todo.extend((parent, False) for parent in _parents(name) if parent not in found)
        if not follow or name in followed:
            continue
        followed.add(name)
        for imported in imported_names(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            top = imported.partition(".")[0]
            if top == PACKAGE:
                todo.append((imported, True))
            elif top and top != "__future__" and top not in sys.stdlib_module_names:
                external.add(top)
    return found, external


def _package_version(top: str) -> str:
    """A third-party package's version (its distribution's, or its ``__init__`` bytes' hash when
    the distribution has another name), found without importing it."""
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        return "absent"
    return "sha256:" + hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def code_fingerprint(entries: Iterable[str], root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the source of every ``mrbench`` module in the import closure of ``entries``,
    the Python release and the versions of the third-party packages the closure imports."""
    modules, external = source_closure(entries, root)
    digest = hashlib.sha256(f"python {sys.version_info[:3]}\n".encode())
    for name in sorted(modules):
        digest.update(f"module {name}\n".encode())
        digest.update(modules[name].read_bytes())
    for top in sorted(external):
        digest.update(f"package {top} {_package_version(top)}\n".encode())
    return digest.hexdigest()
