"""The masking job: plan every query, write the masked features, then the annotations and manifest.

A variant is built in ``<OUT>.partial`` and renamed to ``OUT`` only when complete. Every output
file is written atomically, so an interrupted run leaves only whole files; ``resume=True``
redoes exactly the queries whose files are not all there. All randomness is drawn per query from
``SeedSequence([seed, key(qid), stream])`` (``key`` a hash of the qid), so the bytes depend
neither on the worker count nor on where a run was interrupted.

Memory stays at a few videos per worker: features are streamed one source video at a time
(with all its queries); only the ``mean`` strategy reads the split once more beforehand to
average the clips.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mrbench import __version__
from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.features import TEXT_TYPE, FeatureStore
from mrbench.data.schema import (
    Annotations,
    FileStyle,
    Query,
    read_annotations,
    require_plain_names,
    write_annotations,
)
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    MAX_CLIP_LEN,
    MAX_CLIPS,
    MIN_CLIP_LEN,
    atomic_write_text,
    check_output_dir,
    finite_number,
    folder_lock,
    path_inside,
    read_text,
    refuse_overwrite,
    safe_name,
    sha256_file,
)
from mrbench.masking.fastio import read_features, read_shape, write_features
from mrbench.masking.ranges import Range, masked_ranges, moment_block, ranges_to_seconds
from mrbench.masking.strategies import (
    STRATEGIES,
    apply_constant,
    apply_noise,
    apply_recontext,
    apply_swap,
)

MANIFEST = "manifest.json"
JOB_FILE = ".mask-job.json"
PARTIAL_SUFFIX = ".partial"
_EPS = 1e-9


# --- the source ----------------------------------------------------------------------------
@dataclass
class MaskSource:
    """What gets masked: one split's annotations, its per-file feature root and clip length."""

    records: list[Query]
    features: Path
    clip_len: float
    split: str
    name: str
    annotations: Path | None = None
    style: FileStyle = field(default_factory=FileStyle)
    max_clips: int | None = None
    types: list[str] | None = None  # video feature types (default: every directory found)
    data_dir: Path | None = None


def source_from_catalog(name: str, split: str, features: str | os.PathLike[str],
                        root: str | os.PathLike[str] | None = None) -> MaskSource:
    """A catalog dataset's split (annotation files under ``root``) with features under ``features``."""
    from mrbench.data.catalog import get_spec, load_split

    spec = get_spec(name)
    annotations = load_split(name, split, root)
    return MaskSource(annotations.records, Path(features), spec.clip_len, split, name,
                      annotations.path, annotations.style, spec.max_clips)


def source_from_file(path: str | os.PathLike[str], clip_len: float, features: str | os.PathLike[str],
                     split: str | None = None, name: str | None = None) -> MaskSource:
    """A custom annotation file with features under ``features`` and clips of ``clip_len`` s."""
    _check_clip_len(clip_len)
    annotations = read_annotations(path, require_windows=True)
    stem = Path(path).stem
    return MaskSource(annotations.records, Path(features), float(clip_len), split or stem,
                      name or stem, annotations.path, annotations.style)


def _check_clip_len(clip_len: object) -> None:
    if not finite_number(clip_len) or not MIN_CLIP_LEN <= clip_len <= MAX_CLIP_LEN:  # type: ignore[operator]
        raise MrbenchError(f"--clip-len must be a positive number of seconds in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}], got {clip_len}")


def source_from_dir(data_dir: str | os.PathLike[str], split: str,
                    features: str | os.PathLike[str] | None = None) -> MaskSource:
    """One split of an mrbench dataset directory (``mrbench synth`` output, another variant, ...)."""
    directory = DatasetDir(data_dir)
    info = directory.info()
    annotations = directory.load(split)
    types = sorted(info.video_features) or None
    return MaskSource(annotations.records, Path(features) if features else directory.features_root,
                      float(info.clip_len), split, info.name, annotations.path, annotations.style,
                      info.max_clips, types, Path(data_dir))


# --- planning ------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryPlan:
    """Everything decided about one query before any feature is touched (picklable)."""

    key: str  # str(qid): the manifest key
    qid: object
    vid: str  # the new, per-query video id
    source_vid: str
    source_clips: int  # clips of the source video after truncating to the shortest source
    n_clips: int  # clips of the masked video
    ranges: tuple[Range, ...]  # masked (replaced) clip ranges of the new video, half-open
    noise_key: tuple[int, int]  # (seed, qid hash) for the per-query random streams
    donor: str | None = None  # swap: the video the clips come from
    donor_clips: int = 0
    offsets: tuple[int, ...] = ()
    context: str | None = None  # recontext: the video whose clips surround the moment
    moment: Range | None = None  # recontext: the moment's clips in the source video


def qid_hash(qid: object) -> int:
    """A stable 64-bit key of a qid (``5`` and ``"5"`` differ)."""
    return int.from_bytes(hashlib.sha256(json.dumps(qid).encode("utf-8")).digest()[:8], "little")


def masked_vid(vid: str, qid: object) -> str:
    """The per-query video id of a masked copy: ``<vid>__mask_q<qid>`` (a plain name)."""
    return safe_name(f"{vid}__mask_q{qid}", "vid", qid=qid)


def _rng(seed: int, key: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, key, stream]))


def _clip_counts(root: Path, vid: str, types: Sequence[str]) -> dict[str, int]:
    store = FeatureStore(root)
    return {t: read_shape(store, t, vid)[0] for t in types}


def video_lengths(store: FeatureStore, vids: Sequence[str], types: Sequence[str],
                  mapper: Callable = map) -> dict[str, int]:
    """Clips per video, truncated to the shortest source; warns once about every mismatch.

    Only the files' headers are read; ``mapper`` (``map`` or a pool's) spreads the reads.
    """
    lengths: dict[str, int] = {}
    mismatched: list[str] = []
    all_counts = mapper(_clip_counts, [store.root] * len(vids), vids, [tuple(types)] * len(vids))
    for vid, counts in zip(vids, all_counts, strict=True):
        lengths[vid] = min(counts.values())
        if len(set(counts.values())) > 1:
            mismatched.append(f"{vid} ({', '.join(f'{t} {n}' for t, n in counts.items())})")
    if mismatched:
        shown = "; ".join(mismatched[:5]) + (f"; ... (+{len(mismatched) - 5} more)" if len(mismatched) > 5 else "")
        warnings.warn(
            f"{len(mismatched)} video(s) have feature sources with different clip counts; each is "
            f"truncated to the shorter, as the reference loaders do: {shown}",
            UserWarning, stacklevel=2,
        )
    return lengths


def plan_queries(source: MaskSource, lengths: dict[str, int], strategy: str, margin: float,
                 seed: int) -> list[QueryPlan]:
    """One :class:`QueryPlan` per query, in file order (raises on windows beyond the video)."""
    if strategy not in STRATEGIES:
        raise MrbenchError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    file = str(source.annotations) if source.annotations else None
    clip_len = source.clip_len
    durations = {}
    for record in source.records:
        durations.setdefault(record.vid, float(record.duration))
    all_vids = sorted(lengths)
    # clips of a context video that lie inside its annotated duration (room for a moment)
    usable = {v: min(lengths[v], math.floor(durations[v] / clip_len + _EPS)) for v in all_vids}
    plans = []
    seen: dict[str, object] = {}
    for record in source.records:
        key = str(record.qid)
        if key in seen:
            raise ValidationError(f"qid collides with qid {seen[key]!r} as a manifest key", file=file,
                                  qid=record.qid, field="qid")
        seen[key] = record.qid
        if not record.windows:
            raise ValidationError("no ground-truth windows: masking needs them", file=file,
                                  qid=record.qid, field="relevant_windows")
        if "/" in key or key in (".", ".."):
            raise ValidationError("cannot be part of a file name", file=file, qid=record.qid, field="qid")
        n = lengths[record.vid]
        ranges = masked_ranges(record.windows, clip_len, margin, n, qid=record.qid, vid=record.vid, file=file)
        base = dict(key=key, qid=record.qid, vid=masked_vid(record.vid, record.qid), source_vid=record.vid,
                    source_clips=n, n_clips=n, ranges=tuple(ranges), noise_key=(seed, qid_hash(record.qid)))
        rng = _rng(seed, qid_hash(record.qid), 0) if strategy in ("swap", "recontext") else None
        if strategy == "swap":
            donors = [v for v in all_vids if v != record.vid]
            if not donors:
                raise MrbenchError("strategy 'swap' needs at least two videos in the split")
            donor = donors[int(rng.integers(len(donors)))]
            offsets = tuple(int(rng.integers(lengths[donor])) for _ in ranges)
            plans.append(QueryPlan(**base, donor=donor, donor_clips=lengths[donor], offsets=offsets))
        elif strategy == "recontext":
            moment = moment_block(record.windows, clip_len, n)
            size = moment[1] - moment[0]
            hosts = [v for v in all_vids if v != record.vid and usable[v] >= size]
            if not hosts:
                raise ValidationError(f"no other video has room for the {size}-clip moment (strategy recontext)",
                                      file=file, qid=record.qid, field="relevant_windows")
            host = hosts[int(rng.integers(len(hosts)))]
            position = int(rng.integers(usable[host] - size + 1))
            base.update(n_clips=lengths[host], ranges=((position, position + size),))
            plans.append(QueryPlan(**base, context=host, moment=moment))
        else:
            plans.append(QueryPlan(**base))
    return plans


def relabel(record: Query, plan: QueryPlan, clip_len: float, duration: float | int) -> Query:
    """The annotation of a masked query: new vid; for ``recontext`` also moved labels."""
    if plan.context is None:
        return dataclasses.replace(record, vid=plan.vid)
    shift_clips = plan.ranges[0][0] - plan.moment[0]
    shift = shift_clips * clip_len

    def move(value: float) -> float:
        moved = min(max(value + shift, 0.0), duration)
        return int(moved) if isinstance(value, int) and float(moved).is_integer() else moved

    windows = [[move(s), move(e)] for s, e in record.windows]
    clip_ids, scores = record.relevant_clip_ids, record.saliency_scores
    if clip_ids is not None:
        keep = [i for i, c in enumerate(clip_ids) if 0 <= c + shift_clips < plan.n_clips]
        clip_ids = [clip_ids[i] + shift_clips for i in keep]
        scores = None if scores is None else [scores[i] for i in keep]
    return dataclasses.replace(record, vid=plan.vid, duration=duration, windows=windows,
                               relevant_clip_ids=clip_ids, saliency_scores=scores)


# --- the per-video work (runs in worker processes) -------------------------------------------
@dataclass(frozen=True)
class _Job:
    source: Path
    work: Path
    types: tuple[str, ...]
    strategy: str
    resuming: bool  # some files may exist already
    means: dict[str, np.ndarray] | None = None


def _relpath(feature_type: str, vid: str) -> str:
    return f"features/{feature_type}/{vid}.npz"


def _load(store: FeatureStore, vid: str, n: int, types: Sequence[str]) -> dict[str, np.ndarray]:
    return {t: read_features(store, t, vid)[:n] for t in types}


def _mask_video(job: _Job, source_vid: str, plans: Sequence[QueryPlan]) -> list[tuple[str, dict[str, str]]]:
    """Write the masked copies of one source video; ``(key, {relpath: sha256})`` per query."""
    store = FeatureStore(job.source)
    paths = [{t: job.work / _relpath(t, plan.vid) for t in job.types} for plan in plans]
    todo = [i for i, p in enumerate(paths) if not (job.resuming and all(f.is_file() for f in p.values()))]
    source = _load(store, source_vid, plans[0].source_clips, job.types) if todo else None
    other: tuple[str, dict[str, np.ndarray]] | None = None
    results = []
    for index, plan in enumerate(plans):
        if index not in todo:
            sums = {t: sha256_file(f) for t, f in paths[index].items()}
            results.append((plan.key, {_relpath(t, plan.vid): sums[t] for t in job.types}))
            continue
        last = index == todo[-1]  # the source arrays may then be masked in place
        if job.strategy == "noise":
            arrays = apply_noise(source, plan.ranges, _rng(*plan.noise_key, 1), inplace=last)
        elif job.strategy in ("zero", "mean"):
            arrays = apply_constant(source, plan.ranges, job.means, inplace=last)
        else:
            name = plan.donor or plan.context
            if other is None or other[0] != name:
                other = (name, _load(store, name, plan.donor_clips or plan.n_clips, job.types))
            if job.strategy == "swap":
                arrays = apply_swap(source, plan.ranges, other[1], plan.offsets, inplace=last)
            else:
                arrays = apply_recontext(source, plan.moment, other[1], plan.ranges[0][0])
        sums = {t: write_features(paths[index][t], arrays[t]) for t in job.types}
        results.append((plan.key, {_relpath(t, plan.vid): sums[t] for t in job.types}))
    return results


def _mask_video_in_worker(job: _Job, source_vid: str, plans: Sequence[QueryPlan]) -> list[tuple[str, dict[str, str]]]:
    """:func:`_mask_video` for a worker process: user errors cross back as plain MrbenchError
    (some subclasses do not survive pickling)."""
    try:
        return _mask_video(job, source_vid, plans)
    except MrbenchError as exc:
        raise MrbenchError(str(exc)) from None


def _clip_sums(job: _Job, vid: str, n: int) -> dict[str, np.ndarray]:
    """Float64 sums over the first ``n`` clips of each source."""
    arrays = _load(FeatureStore(job.source), vid, n, job.types)
    return {t: a.astype(np.float64).sum(axis=0) for t, a in arrays.items()}


# --- the job -------------------------------------------------------------------------------
@dataclass
class MaskResult:
    """A finished variant."""

    path: Path
    seed: int
    queries: int
    clips_masked: int
    resumed: int  # queries found complete in the partial directory


def variant_dirs(out: str | os.PathLike[str], seeds: Sequence[int]) -> list[Path]:
    """``OUT`` for one seed, ``OUT/seed<k>`` for several (the contract)."""
    out = Path(out)
    return [out] if len(seeds) == 1 else [out / f"seed{s}" for s in seeds]


def build(source: MaskSource, out: str | os.PathLike[str], *, strategy: str = "noise",
          margin: float = 3.0, seeds: Sequence[int] = (0,), workers: int = 1, resume: bool = False,
          progress: bool = False, on_query: Callable[[str], None] | None = None) -> list[MaskResult]:
    """Build one variant per seed (``OUT`` for one seed, ``OUT/seed<k>`` for several)."""
    if not seeds:
        raise MrbenchError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise MrbenchError(f"duplicate seeds: {list(seeds)}")
    return [
        build_variant(source, target, strategy=strategy, margin=margin, seed=seed, workers=workers,
                      resume=resume, progress=progress, on_query=on_query)
        for seed, target in zip(seeds, variant_dirs(out, seeds), strict=True)
    ]


def build_variant(source: MaskSource, out: str | os.PathLike[str], *, strategy: str = "noise",
                  margin: float = 3.0, seed: int = 0, workers: int = 1, resume: bool = False,
                  progress: bool = False,
                  on_query: Callable[[str], None] | None = None) -> MaskResult:
    """Build one masked variant in ``OUT`` (via ``OUT.partial``); see the module docstring.

    ``on_query(key)`` is called in this process after each query's files are complete.
    """
    target = Path(out)
    if strategy not in STRATEGIES:
        raise MrbenchError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not finite_number(margin) or margin < 0:
        raise MrbenchError(f"--margin must be a finite number >= 0 seconds, got {margin}")
    _check_clip_len(source.clip_len)
    if not source.records:
        raise ValidationError("has no queries to mask", file=source.annotations)
    require_plain_names(Annotations(source.records, path=source.annotations))
    refuse_overwrite(target, [source.annotations, source.data_dir], "--out", read_whole=[source.features])
    check_output_dir(target, "--out")
    with folder_lock(target):
        return _build_variant(source, target, strategy, margin, seed, workers, resume, progress, on_query)


def _build_variant(source: MaskSource, target: Path, strategy: str, margin: float, seed: int, workers: int,
                   resume: bool, progress: bool, on_query: Callable[[str], None] | None) -> MaskResult:
    """:func:`build_variant` while holding the lock of ``target``."""
    work = target.with_name(target.name + PARTIAL_SUFFIX)
    if (target / MANIFEST).is_file() and resume:
        manifest = read_manifest(target)
        wanted = {"split": source.split, "strategy": strategy, "margin": float(margin), "seed": int(seed),
                  "clip_len": float(source.clip_len)}
        differing = [key for key, value in wanted.items() if manifest.get(key) != value]
        if manifest.get("source", {}).get("features") != str(source.features.resolve()):
            differing.append("features")
        if differing:
            raise MrbenchError(f"{target} is a complete variant made with other settings "
                               f"(differing: {', '.join(differing)}); remove it or choose another --out")
        (target / JOB_FILE).unlink(missing_ok=True)  # interrupted right after the final rename
        queries = manifest["queries"].values()
        return MaskResult(target, seed, len(queries),
                          sum(b - a for q in queries for a, b in q["masked_clips"]), len(queries))
    if target.exists():
        raise MrbenchError(f"{target} already exists; remove it or choose another --out")
    if work.exists() and not resume:
        raise MrbenchError(f"{work} holds an interrupted run: pass --resume to finish it, or delete it")

    for record in source.records:  # before touching any feature file
        if not record.windows:
            raise ValidationError("no ground-truth windows: masking needs them", file=source.annotations,
                                  qid=record.qid, field="relevant_windows")
    executor = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    existed = work.exists()
    try:
        plans, checksums, already, store, types, vids, header = _run(
            source, work, strategy, margin, seed, progress, on_query, executor)
    except BaseException as exc:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if isinstance(exc, MrbenchError) and work.exists() and not existed:
            if any(work.glob("features/*/*.npz")):
                raise MrbenchError(f"{exc} ({work} is kept: --resume continues it)") from None
            shutil.rmtree(work)  # nothing that --resume could use
        raise
    if executor is not None:
        executor.shutdown()

    queries = {}
    records = []
    plan_of = {p.key: p for p in plans}
    durations = {}
    for record in source.records:
        durations.setdefault(record.vid, record.duration)
    for record in source.records:
        plan = plan_of[str(record.qid)]
        duration = durations[plan.context] if plan.context else record.duration
        records.append(relabel(record, plan, source.clip_len, duration))
        queries[plan.key] = _manifest_entry(plan, source.clip_len)

    annotations_rel = f"annotations/{source.split}.jsonl"
    write_annotations(work / annotations_rel, Annotations(records, source.style))
    dims = {t: read_shape(store, t, vids[0])[1] for t in types}
    text_dim = int(store.load_text(source.records[0].qid)["last_hidden_state"].shape[-1])
    info = DatasetInfo(
        name=source.name, clip_len=float(source.clip_len), video_features=dims,
        text_features={TEXT_TYPE: text_dim}, splits=[source.split], max_clips=source.max_clips,
        kind="masked", extra={"strategy": strategy, "margin": float(margin), "seed": int(seed),
                              "source": header["source"]},
    )
    DatasetDir(work).write_info(info)
    for rel in (annotations_rel, "dataset.json"):
        checksums[rel] = sha256_file(work / rel)
    manifest = {**header, "text_features": str((source.features / TEXT_TYPE).resolve()),
                "queries": queries, "files": dict(sorted(checksums.items()))}
    atomic_write_text(work / MANIFEST, dump_manifest(manifest))
    os.replace(work, target)
    (target / JOB_FILE).unlink()
    return MaskResult(target, seed, len(plans), sum(b - a for p in plans for a, b in p.ranges), already)


def _run(source: MaskSource, work: Path, strategy: str, margin: float, seed: int, progress: bool,
         on_query: Callable[[str], None] | None, executor: ProcessPoolExecutor | None) -> tuple:
    """Plan and write every query's files into ``work`` (the executor, if any, does the reading
    and writing); returns (plans, checksums, queries already done, store, types, vids, header)."""
    from tqdm import tqdm

    def mapper(function: Callable, *iterables: Sequence) -> Iterable:
        return executor.map(function, *iterables, chunksize=32) if executor else map(function, *iterables)

    store = FeatureStore(source.features)
    if (source.features / "index.parquet").is_file() and not store.video_types():
        raise MrbenchError(f"{source.features} is a packed store; masking reads per-file features")
    types = list(source.types or store.video_types())
    vids = list(dict.fromkeys(r.vid for r in source.records))
    store.check(vids, [r.qid for r in source.records], types)
    lengths = video_lengths(store, vids, types, mapper)
    plans = plan_queries(source, lengths, strategy, margin, seed)

    header = {
        "mrbench_version": __version__,
        "source": {
            "annotations": str(source.annotations.resolve()) if source.annotations else None,
            "features": str(source.features.resolve()),
            "dataset": source.name,
            **({"data_dir": str(source.data_dir.resolve())} if source.data_dir else {}),
        },
        "split": source.split,
        "strategy": strategy,
        "margin": float(margin),
        "seed": int(seed),
        "clip_len": float(source.clip_len),
        "types": types,
    }
    job_state = {**header, "records_sha256": _records_digest(source.records)}
    resuming = work.exists()
    if resuming:
        previous = _read_job(work / JOB_FILE) if (work / JOB_FILE).is_file() else None
        if previous != job_state:
            raise MrbenchError(f"{work} was started with other settings or inputs; delete it to start over")
        for leftover in work.glob("features/*/.*.tmp"):
            leftover.unlink()
    else:
        (work / "features").mkdir(parents=True)
        atomic_write_text(work / JOB_FILE, json.dumps(job_state, indent=2) + "\n")
    for feature_type in types:
        (work / "features" / feature_type).mkdir(exist_ok=True)
    text_link = work / "features" / TEXT_TYPE
    if not text_link.is_symlink():
        os.symlink((source.features / TEXT_TYPE).resolve(), text_link, target_is_directory=True)

    already = sum(all((work / _relpath(t, p.vid)).is_file() for t in types) for p in plans) if resuming else 0
    by_video: dict[str, list[QueryPlan]] = {}
    for plan in plans:
        by_video.setdefault(plan.source_vid, []).append(plan)
    checksums: dict[str, str] = {}
    job = _Job(source.features, work, tuple(types), strategy, resuming)
    bar = tqdm(total=len(plans), desc=f"mask {strategy} seed {seed}", unit="query", disable=not progress)
    try:
        if strategy == "mean":
            job = dataclasses.replace(job, means=_dataset_means(job, lengths, mapper))
        if executor is None:
            for vid, group in by_video.items():
                _collect(_mask_video(job, vid, group), checksums, bar, on_query)
        else:
            futures = [executor.submit(_mask_video_in_worker, job, vid, group) for vid, group in by_video.items()]
            for future in as_completed(futures):
                _collect(future.result(), checksums, bar, on_query)
    finally:
        bar.close()
    return plans, checksums, already, store, types, vids, header


def _collect(results: list[tuple[str, dict[str, str]]], checksums: dict[str, str], bar,  # noqa: ANN001
             on_query: Callable[[str], None] | None) -> None:
    for key, files in results:
        checksums.update(files)
        bar.update(1)
        if on_query is not None:
            on_query(key)


def _dataset_means(job: _Job, lengths: dict[str, int], mapper: Callable) -> dict[str, np.ndarray]:
    """Mean clip feature per source over every clip of the split's videos (fixed summation order)."""
    vids = sorted(lengths)
    totals = {t: 0.0 for t in job.types}
    for sums in mapper(_clip_sums, [job] * len(vids), vids, [lengths[v] for v in vids]):
        for feature_type, value in sums.items():
            totals[feature_type] = totals[feature_type] + value
    count = sum(lengths.values())
    return {t: np.asarray(totals[t] / count) for t in job.types}


def _read_job(path: Path) -> dict[str, Any]:
    """The settings an interrupted run recorded (``.mask-job.json``)."""
    try:
        job = json.loads(read_text(path, what="job file"))
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"invalid JSON ({exc}); delete the interrupted run to start over"[:200], file=path) from None
    if not isinstance(job, dict):
        raise ValidationError("expected a JSON object; delete the interrupted run to start over", file=path)
    return job


def _manifest_entry(plan: QueryPlan, clip_len: float) -> dict:
    entry = {
        "qid": plan.qid,
        "vid": plan.vid,
        "source_vid": plan.source_vid,
        "n_clips": plan.n_clips,
        "masked_clips": [list(r) for r in plan.ranges],
        "masked_windows": ranges_to_seconds(plan.ranges, clip_len),
    }
    if plan.donor is not None:
        entry.update(donor_vid=plan.donor, donor_offsets=list(plan.offsets))
    if plan.context is not None:
        entry.update(context_vid=plan.context, moment_clips=list(plan.moment))
    return entry


def _records_digest(records: Sequence[Query]) -> str:
    text = json.dumps([r.to_dict() for r in records], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()



_MANIFEST_KEYS = ("source", "split", "strategy", "margin", "seed", "clip_len", "queries", "files")


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``DIR/manifest.json`` (the one check of its shape, used by ``mask
    verify`` and ``--resume``): every field a command relies on has its type and range, and every
    name or file in it stays inside the variant. Errors name the file and the field."""
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(read_text(path, what="manifest"))
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"invalid JSON ({exc})"[:200], file=path) from None

    def fail(message: str, field: str, qid: object = None) -> ValidationError:
        return ValidationError(message, file=path, field=field, qid=qid)

    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object", file=path)
    missing = [k for k in _MANIFEST_KEYS if k not in data]
    if missing:
        raise fail(f"missing keys {', '.join(missing)}", missing[0])
    safe_name(data["split"], "split", file=path)
    if data["strategy"] not in STRATEGIES:
        raise fail(f"must be one of {', '.join(STRATEGIES)}", "strategy")
    if not finite_number(data["margin"]) or data["margin"] < 0:
        raise fail("must be a number >= 0", "margin")
    if not finite_number(data["clip_len"]) or not MIN_CLIP_LEN <= data["clip_len"] <= MAX_CLIP_LEN:
        raise fail(f"must be a number of seconds in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}]", "clip_len")
    if isinstance(data["seed"], bool) or not isinstance(data["seed"], int) or data["seed"] < 0:
        raise fail("must be a non-negative integer", "seed")
    if not isinstance(data["source"], dict) or not isinstance(data["source"].get("features"), str):
        raise fail("must be an object with the source feature root", "source")
    types = data.get("types")
    if types is not None and (not isinstance(types, list) or not types):
        raise fail("must be a list of feature types", "types")
    for name in types or ():
        safe_name(name, "types", file=path)
    files = data["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise fail("must map relative paths to sha256 digests", "files")
    for rel in files:
        path_inside(directory, *str(rel).split("/"), field="files", file=path)
    if not isinstance(data["queries"], dict):
        raise fail("must be an object of queries", "queries")
    for key, entry in data["queries"].items():
        _check_manifest_query(entry, lambda message, k=key: fail(message, "queries", k))
    return data


def _check_manifest_query(entry: object, fail: Callable[[str], ValidationError]) -> None:
    """One entry of a manifest's ``queries``: names, clip count and clip ranges in range."""
    if not isinstance(entry, dict) or not all(k in entry for k in ("vid", "source_vid", "n_clips", "masked_clips")):
        raise fail("must be an object with vid, source_vid, n_clips and masked_clips")
    for key in ("vid", "source_vid", "context_vid", "donor_vid"):
        if key in entry:
            try:
                safe_name(entry[key], key)
            except ValidationError as exc:
                raise fail(f"{key} {exc.reason}") from None
    n_clips = entry["n_clips"]
    if isinstance(n_clips, bool) or not isinstance(n_clips, int) or not 0 < n_clips <= MAX_CLIPS:
        raise fail(f"n_clips must be an integer in [1, {MAX_CLIPS}]")

    def clip_ranges(value: object, what: str) -> list[list[int]]:
        if not isinstance(value, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(type(v) is int for v in r) and 0 <= r[0] <= r[1] <= n_clips
            for r in value
        ):
            raise fail(f"{what} must be [first, last) clip ranges within n_clips")
        return value

    masked = clip_ranges(entry["masked_clips"], "masked_clips")
    if "moment_clips" in entry:
        clip_ranges([entry["moment_clips"]], "moment_clips")
    if "donor_offsets" in entry:
        offsets = entry["donor_offsets"]
        if not isinstance(offsets, list) or len(offsets) != len(masked) or not all(
            type(v) is int and 0 <= v <= MAX_CLIPS for v in offsets
        ):
            raise fail("donor_offsets must hold one clip offset per masked range")
    if ("context_vid" in entry) != ("moment_clips" in entry) or ("donor_vid" in entry) != ("donor_offsets" in entry):
        raise fail("context_vid comes with moment_clips, donor_vid with donor_offsets")


def dump_manifest(manifest: dict) -> str:
    """The manifest as JSON text with one line per top-level key, query and file."""
    lines = []
    for key, value in manifest.items():
        if isinstance(value, dict) and key in ("queries", "files") and value:
            items = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
            lines.append(f"{json.dumps(key)}: {{\n" + ",\n".join(items) + "\n }")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"
