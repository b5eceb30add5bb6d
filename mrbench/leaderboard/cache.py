"""The build's cache file (``OUT/.cache/scores.json``): scored runs, the render stamp, outputs.

``runs`` maps a run key (:func:`mrbench.leaderboard.runs.run_key`) to the run's metrics;
``stamp`` hashes everything the rendered files depend on; ``outputs`` maps each file the last
build wrote (relative to ``--out``) to its sha256, so that a build deletes only its own files.
A cache of another shape is ignored with a warning and rebuilt.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from mrbench.errors import ValidationError
from mrbench.io import atomic_write_text, safe_name
from mrbench.leaderboard.render import GROUP_OUTPUTS, TOP_OUTPUTS

CACHE_VERSION = 1
CACHE_DIR = ".cache"
CACHE_FILE = "scores.json"


def empty_cache() -> dict[str, Any]:
    """A cache with nothing in it."""
    return {"version": CACHE_VERSION, "runs": {}}


def is_output_name(rel: object) -> bool:
    """Whether ``rel`` (a cache entry) names a file a build writes: ``<dataset>/<split>/<one of
    GROUP_OUTPUTS>`` or one of TOP_OUTPUTS, with plain names (see :func:`mrbench.io.safe_name`)."""
    if not isinstance(rel, str):
        return False
    parts = rel.split("/")
    try:
        for part in parts:
            safe_name(part, "outputs")
    except ValidationError:
        return False
    return (len(parts) == 1 and parts[0] in TOP_OUTPUTS) or (len(parts) == 3 and parts[2] in GROUP_OUTPUTS)


def _valid_cache(data: object) -> bool:
    """The shape a cache file must have to be used: version, runs (key -> metrics), outputs
    (build output -> sha256) and stamp."""
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return False
    runs, outputs = data.get("runs", {}), data.get("outputs", {})
    return (
        isinstance(runs, dict)
        and all(isinstance(m, dict) and all(isinstance(k, str) for k in m) for m in runs.values())
        and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for m in runs.values() for v in m.values())
        and isinstance(outputs, dict)
        and all(is_output_name(rel) and isinstance(digest, str) for rel, digest in outputs.items())
        and isinstance(data.get("stamp", ""), str)
    )


def read_cache(path: Path) -> dict[str, Any]:
    """The cache, or an empty one (with a warning when a file was there but unusable)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return empty_cache()
    except (OSError, ValueError, RecursionError) as exc:
        warnings.warn(f"{path}: unreadable score cache ignored, rebuilding it ({str(exc)[:120]})", UserWarning,
                      stacklevel=2)
        return empty_cache()
    if isinstance(data, dict) and data.get("version") != CACHE_VERSION:
        return empty_cache()  # another mrbench version's cache: silently rebuilt
    if not _valid_cache(data):
        warnings.warn(f"{path}: malformed score cache ignored, rebuilding it", UserWarning, stacklevel=2)
        return empty_cache()
    return data


def write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write the cache; a cache directory named ``.cache`` ignores itself in git (``*``)."""
    atomic_write_text(path, json.dumps(data, sort_keys=True, indent=1) + "\n")
    ignore = path.parent / ".gitignore"
    if path.parent.name == CACHE_DIR and not ignore.exists():
        atomic_write_text(ignore, "# written by mrbench leaderboard build\n*\n")
