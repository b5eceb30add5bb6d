"""``mrbench leaderboard build``: score every entry (cached), aggregate seeds, render.

Orchestration over the other modules: :mod:`~mrbench.leaderboard.submission` (the entries),
:mod:`~mrbench.leaderboard.runs` (scoring a run and its cache key),
:mod:`~mrbench.leaderboard.table` (rows and groups), :mod:`~mrbench.leaderboard.render` (the
files) and :mod:`~mrbench.leaderboard.cache` (the cache file). Rendering is skipped when the
render stamp (the groups' metadata and per-seed metrics, and the fingerprint of the rendering code
path) and every previously written output are unchanged; a rebuild with nothing new therefore
reads only the cache and hashes files (no pandas, no matplotlib import).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrbench.errors import MrbenchError
from mrbench.io import check_output_dir, ensure_inside, folder_lock, refuse_overwrite, sha256_file
from mrbench.leaderboard.cache import CACHE_DIR, CACHE_FILE, CACHE_VERSION, read_cache, write_cache
from mrbench.leaderboard.fingerprint import code_fingerprint
from mrbench.leaderboard.render import render_all
from mrbench.leaderboard.runs import entries_of, load_entry, run_key, score_run, scorer_fingerprint
from mrbench.leaderboard.submission import DatasetRef, Submission
from mrbench.leaderboard.table import Group, make_row

#: The module whose import closure decides how groups are rendered (its fingerprint is in the stamp).
RENDERER = "mrbench.leaderboard.render"


@dataclass
class BuildResult:
    """What a build did."""

    groups: list[Group]
    scored: int  # runs scored now
    cached: int  # runs taken from the cache
    rendered: bool  # False when the outputs were already up to date
    outputs: list[Path]


def _group_payload(groups: list[Group]) -> str:
    """A canonical text of everything rendering reads from the groups (the render stamp's input)."""
    payload = []
    for group in groups:
        payload.append(
            {
                "dataset": group.dataset.name,
                "title": group.dataset.title,
                "columns": group.dataset.columns,
                "split": group.split,
                "rows": [
                    {"meta": r.meta, "per_seed": {str(s): m for s, m in sorted(r.per_seed.items())}}
                    for r in group.rows
                ],
            }
        )
    return json.dumps(payload, sort_keys=True)


def render_stamp(groups: list[Group]) -> str:
    """sha256 of everything the rendered files depend on: the groups and the rendering code path
    (the renderer, the table model with its aggregation, the report keys, the reported numbers,
    and the versions of pandas, pyarrow and matplotlib)."""
    return hashlib.sha256((code_fingerprint([RENDERER]) + _group_payload(groups)).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# build

#: Leaderboards of a dataset are listed in this split order (others after, by name).
SPLIT_ORDER = ("val", "test", "test_iid", "val_ood", "test_ood", "train")


def _split_rank(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def collect(submissions_root: Path) -> list[tuple[Submission, DatasetRef]]:
    """Load and validate every entry (schema and files) and its dataset."""
    return [load_entry(entry, submissions_root) for entry in entries_of(submissions_root)]


def build(
    submissions: str | os.PathLike[str] = "submissions",
    out: str | os.PathLike[str] = "leaderboards",
    *,
    cache: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> BuildResult:
    """Score every entry under ``submissions`` and write the leaderboards to ``out``.

    ``cache`` defaults to ``<out>/.cache/scores.json``; ``use_cache=False`` rescores everything
    and re-renders (the cache file is still written).
    """
    submissions_root, out_dir = Path(submissions), Path(out)
    cache_path = Path(cache) if cache is not None else out_dir / CACHE_DIR / CACHE_FILE
    refuse_overwrite(out_dir, [submissions_root], "--out", read_whole=[submissions_root])
    refuse_overwrite(cache_path, [submissions_root], "--cache", read_whole=[submissions_root])
    check_output_dir(out_dir, "--out")
    check_output_dir(cache_path.parent, "--cache")
    if cache is None:
        ensure_inside(cache_path.parent, out_dir, "--cache")
    with folder_lock(out_dir):
        return _build(submissions_root, out_dir, cache_path, use_cache, progress)


def _build(submissions_root: Path, out_dir: Path, cache_path: Path, use_cache: bool, progress: bool) -> BuildResult:
    """:func:`build` while holding the lock of ``out_dir``."""
    data = read_cache(cache_path)
    old_runs: dict[str, Any] = data.get("runs", {}) if use_cache else {}
    entries = collect(submissions_root)
    if not entries:
        raise MrbenchError(f"{submissions_root} holds no entries")

    scorer = scorer_fingerprint()
    hashes: dict[Path, str] = {}
    runs: dict[str, Any] = {}
    scored = cached = 0
    todo = [(sub, ref, seed) for sub, ref in entries for seed in sub.seeds]
    from tqdm import tqdm

    per_entry: dict[str, dict[int, dict[str, float | None]]] = {}
    with tqdm(total=len(todo), desc="scoring", unit="run", leave=False, disable=not progress) as bar:
        for sub, ref, seed in todo:  # the bar is gone before an error is printed
            key = run_key(sub, ref, seed, scorer, hashes)
            if key in old_runs:
                metrics = old_runs[key]
                cached += 1
            else:
                metrics = score_run(sub, ref, seed)
                scored += 1
            runs[key] = metrics
            per_entry.setdefault(sub.entry_id, {})[seed] = metrics
            bar.update()

    groups: dict[tuple[str, str], Group] = {}
    for sub, ref in entries:
        group = groups.setdefault((ref.name, sub.split), Group(ref, sub.split))
        group.rows.append(make_row(sub, per_entry[sub.entry_id]))
    ordered = [groups[k] for k in sorted(groups, key=lambda k: (k[0], _split_rank(k[1]), k[1]))]

    stamp = render_stamp(ordered)
    previous: dict[str, str] = data.get("outputs", {})
    up_to_date = (
        use_cache
        and data.get("stamp") == stamp
        and bool(previous)
        and all((out_dir / rel).is_file() and sha256_file(out_dir / rel) == digest for rel, digest in previous.items())
    )
    if up_to_date:
        outputs = [out_dir / rel for rel in sorted(previous)]
        rendered = False
        written = previous
    else:
        outputs = render_all(ordered, out_dir)
        written = {p.relative_to(out_dir).as_posix(): sha256_file(p) for p in outputs}
        for rel in set(previous) - set(written):  # outputs of entries now gone
            _remove_own_output(out_dir, rel, previous[rel])
        rendered = True
    write_cache(cache_path, {"version": CACHE_VERSION, "runs": runs, "stamp": stamp, "outputs": written})
    return BuildResult(groups=ordered, scored=scored, cached=cached, rendered=rendered, outputs=outputs)


def _remove_own_output(out_dir: Path, rel: str, digest: str) -> None:
    """Delete ``out_dir/rel`` only when a build provably wrote it: an output name (checked when
    the cache was read), a regular file inside ``out_dir`` (symlinks resolved) whose bytes are
    still those the cache recorded. Anything else stays."""
    stale = out_dir / rel
    if stale.is_symlink() or not stale.is_file():
        return
    base, resolved = out_dir.resolve(), stale.resolve()
    if base in resolved.parents and sha256_file(stale) == digest:
        stale.unlink()
