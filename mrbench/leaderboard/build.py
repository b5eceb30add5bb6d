"""``mrbench leaderboard build``: score every entry (cached by content hash), aggregate seeds, render.

Every (entry, seed) run is scored with :func:`mrbench.score` against the entry's ground truth in
``submissions/_datasets``. Its metrics are cached under a key that hashes the bytes of the
prediction files, the ground truth, the masked variant's manifest and annotations, and the source
of the scorer, so a run is rescored exactly when one of them changes. Rendering is skipped when the
aggregated table, the renderer and every previously written output are unchanged; a rebuild with
nothing new therefore reads only the cache and hashes files (no pandas, no matplotlib import).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    atomic_write_text,
    check_output_dir,
    ensure_inside,
    folder_lock,
    refuse_overwrite,
    safe_name,
    sha256_file,
)
from mrbench.leaderboard.submission import (
    SUBMISSION_FILE,
    DatasetRef,
    Submission,
    find_entries,
    load_dataset_ref,
    load_submission,
    resolve_files,
)

CACHE_VERSION = 1
CACHE_DIR = ".cache"
CACHE_FILE = "scores.json"


@dataclass
class Row:
    """One entry on a leaderboard: metadata, per-seed metrics and their aggregate."""

    meta: dict[str, Any]
    per_seed: dict[int, dict[str, float | None]]
    stats: dict[str, tuple[float | None, float | None, int]]  # metric -> (mean, std, n)


@dataclass
class Group:
    """All entries of one (dataset, split)."""

    dataset: DatasetRef
    split: str
    rows: list[Row] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return f"{self.dataset.name}/{self.split}"


@dataclass
class BuildResult:
    """What a build did."""

    groups: list[Group]
    scored: int  # runs scored now
    cached: int  # runs taken from the cache
    rendered: bool  # False when the outputs were already up to date
    outputs: list[Path]


# --------------------------------------------------------------------------------------------
# scoring one run


def flatten_report(report: dict[str, Any]) -> dict[str, float | None]:
    """The numbers of a score report as one flat ``{key: value}`` dict: the reference ``brief``,
    mrbench's additions and the spurious ``brief`` (keys as in docs/contracts.md)."""
    out: dict[str, float | None] = {}
    blocks = [report.get("brief", {}), report.get("mrbench", {})]
    spurious = report.get("spurious")
    if spurious:
        blocks.append(spurious.get("brief", {}))
    for block in blocks:
        for key, value in block.items():
            if value is None:
                out[key] = None
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value) if math.isfinite(value) else None
    return out


def score_run(sub: Submission, ref: DatasetRef, seed: int) -> dict[str, float | None]:
    """Score one seed of an entry (standard and, if present, masked predictions); the files are
    read within the bounds the ground truth sets (``$MRBENCH_SIZE_LIMIT_FACTOR`` raises them)."""
    from mrbench.scoring import Bundle, score

    masked = sub.masked_path(seed)
    bundle = Bundle(
        path=sub.yaml_path,
        meta={"dataset": sub.dataset, "split": sub.split, "model": sub.model, "seed": seed},
        predictions=sub.prediction_path(seed),
        masked=[] if masked is None else [masked],
    )
    variant = None if masked is None else ref.variant_dir(sub.masked_variant)
    report = score(bundle, gt=ref.gt_path(sub.split), variant=variant, clip_len=ref.clip_len)
    return flatten_report(report.to_dict())


def _scorer_fingerprint() -> str:
    """sha256 over the source files of the scorer (``mrbench.metrics``, ``mrbench.scoring``)
    and of this module, found without importing them."""
    digest = hashlib.sha256()
    for name in ("mrbench.metrics", "mrbench.scoring", "mrbench.data.schema"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            digest.update(f"{name}:absent".encode())
            continue
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            digest.update(str(path.relative_to(origin.parent)).encode())
            digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def run_key(sub: Submission, ref: DatasetRef, seed: int, scorer: str, hashes: dict[Path, str]) -> str:
    """Cache key of one run: the scorer and the bytes of every file the score depends on."""

    def h(path: Path) -> str:
        if path not in hashes:
            hashes[path] = sha256_file(path)
        return hashes[path]

    parts = [str(CACHE_VERSION), scorer, h(ref.gt_path(sub.split)), h(sub.prediction_path(seed))]
    masked = sub.masked_path(seed)
    if masked is not None:
        variant = ref.variant_dir(sub.masked_variant)
        parts += [h(masked), h(variant / "manifest.json"), h(variant / "annotations" / f"{sub.split}.jsonl")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# aggregation


def aggregate(values: list[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation (ddof = 1) over seeds; std is ``None`` for one seed.
    A missing (``None``) value in any seed makes the aggregate ``None``."""
    n = len(values)
    if n == 0 or any(v is None for v in values):
        return None, None, n
    mean = math.fsum(values) / n  # type: ignore[arg-type]
    if n == 1:
        return mean, None, 1
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)  # type: ignore[operator]
    return mean, math.sqrt(var), n


def make_row(sub: Submission, per_seed: dict[int, dict[str, float | None]]) -> Row:
    keys = sorted({k for metrics in per_seed.values() for k in metrics})
    stats = {k: aggregate([per_seed[s].get(k) for s in sub.seeds]) for k in keys}
    return Row(meta=sub.metadata(), per_seed=per_seed, stats=stats)


# --------------------------------------------------------------------------------------------
# cache


#: The files a build writes, per (dataset, split) folder and at the top of ``--out``: the only
#: files it ever replaces or deletes.
GROUP_OUTPUTS = ("leaderboard.md", "leaderboard.csv", "results.parquet", "leaderboard.html",
                 "standard_vs_spurious.png", "bars.png")
TOP_OUTPUTS = ("README.md", "reported.md", "reported.csv")


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


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache, or an empty one (with a warning when a file was there but unusable)."""
    empty = {"version": CACHE_VERSION, "runs": {}}
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return empty
    except (OSError, ValueError, RecursionError) as exc:
        warnings.warn(f"{path}: unreadable score cache ignored, rebuilding it ({str(exc)[:120]})", UserWarning,
                      stacklevel=2)
        return empty
    if isinstance(data, dict) and data.get("version") != CACHE_VERSION:
        return empty  # another mrbench version's cache: silently rebuilt
    if not _valid_cache(data):
        warnings.warn(f"{path}: malformed score cache ignored, rebuilding it", UserWarning, stacklevel=2)
        return empty
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write the cache; a cache directory named ``.cache`` ignores itself in git (``*``)."""
    atomic_write_text(path, json.dumps(data, sort_keys=True, indent=1) + "\n")
    ignore = path.parent / ".gitignore"
    if path.parent.name == CACHE_DIR and not ignore.exists():
        atomic_write_text(ignore, "# written by mrbench leaderboard build\n*\n")


def _group_payload(groups: list[Group]) -> str:
    """A canonical text of everything rendering depends on (the render stamp's input)."""
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


def _render_fingerprint() -> str:
    digest = hashlib.sha256()
    for module in ("render", "reported"):
        digest.update((Path(__file__).parent / f"{module}.py").read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# build

#: Leaderboards of a dataset are listed in this split order (others after, by name).
SPLIT_ORDER = ("val", "test", "test_iid", "val_ood", "test_ood", "train")


def _split_rank(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def collect(submissions_root: Path) -> list[tuple[Submission, DatasetRef]]:
    """Load and validate every entry (schema and files) and its dataset."""
    refs: dict[str, DatasetRef] = {}
    out = []
    for entry in find_entries(submissions_root):
        if not (entry / SUBMISSION_FILE).is_file():
            raise ValidationError(f"entry directory without {SUBMISSION_FILE}", file=entry)
        sub = load_submission(entry)
        if sub.dataset not in refs:
            try:
                refs[sub.dataset] = load_dataset_ref(submissions_root, sub.dataset)
            except MrbenchError as exc:
                raise ValidationError(str(exc), file=sub.yaml_path, field="dataset") from None
        resolve_files(sub, refs[sub.dataset])
        out.append((sub, refs[sub.dataset]))
    return out


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
    data = _read_cache(cache_path)
    old_runs: dict[str, Any] = data.get("runs", {}) if use_cache else {}
    entries = collect(submissions_root)
    if not entries:
        raise MrbenchError(f"{submissions_root} holds no entries")

    scorer = _scorer_fingerprint()
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

    stamp = hashlib.sha256((_render_fingerprint() + _group_payload(ordered)).encode()).hexdigest()
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
        from mrbench.leaderboard.render import render_all

        outputs = render_all(ordered, out_dir)
        written = {p.relative_to(out_dir).as_posix(): sha256_file(p) for p in outputs}
        for rel in set(previous) - set(written):  # outputs of entries now gone
            _remove_own_output(out_dir, rel, previous[rel])
        rendered = True
    _write_cache(cache_path, {"version": CACHE_VERSION, "runs": runs, "stamp": stamp, "outputs": written})
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
