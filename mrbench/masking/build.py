"""The masking job: plan every query, write the masked features, then the annotations and manifest.

The split to mask is a :class:`~mrbench.data.catalog.SplitSource` (:func:`~mrbench.data.catalog.resolve_split`).
A variant is built beside ``OUT`` and swapped in only when complete (the staged-output protocol,
:func:`mrbench.io.staged_output`). Every output file is written atomically, so an interrupted run
leaves only whole files; ``resume=True`` redoes exactly the queries whose files are not all there. All randomness is drawn per query from
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
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrbench import __version__
from mrbench.data.catalog import SplitSource, resolve_split
from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.features import TEXT_TYPE, FeatureStore
from mrbench.data.schema import (
    Annotations,
    Query,
    require_plain_names,
    write_annotations,
)
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    atomic_write_text,
    check_output_dir,
    finite_number,
    refuse_overwrite,
    safe_name,
    sha256_file,
    staged_output,
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
from mrbench.masking.variant import MANIFEST, read_manifest, seed_dirs

#: the settings record of a run in progress (in its staging folder)
JOB_FILE = ".mask-job.json"
#: where earlier versions built a variant (``OUT.partial``); ``--resume`` still finishes such a run
PARTIAL_SUFFIX = ".partial"
_EPS = 1e-9


# --- the source: shortcuts of resolve_split --------------------------------------------------
def source_from_catalog(name: str, split: str, features: str | os.PathLike[str],
                        root: str | os.PathLike[str] | None = None) -> SplitSource:
    """A catalog dataset's split (annotation files under ``root``) with features under ``features``."""
    return resolve_split(name, split, root=root, features=features, kind="catalog")


def source_from_file(path: str | os.PathLike[str], clip_len: float, features: str | os.PathLike[str],
                     split: str | None = None, name: str | None = None) -> SplitSource:
    """A custom annotation file with features under ``features`` and clips of ``clip_len`` s
    (``split`` and the dataset ``name`` default to the file's stem)."""
    source = resolve_split(path, split, features=features, clip_len=clip_len, kind="file")
    return dataclasses.replace(source, dataset=name) if name else source


def source_from_dir(data_dir: str | os.PathLike[str], split: str,
                    features: str | os.PathLike[str] | None = None) -> SplitSource:
    """One split of an mrbench dataset directory (``mrbench synth`` output, another variant, ...)."""
    return resolve_split(data_dir, split, features=features, kind="folder")


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


def plan_queries(annotations: Annotations, clip_len: float, lengths: dict[str, int], strategy: str, margin: float,
                 seed: int) -> list[QueryPlan]:
    """One :class:`QueryPlan` per query of ``annotations``, in file order, with clips of
    ``clip_len`` seconds (raises on windows beyond the video, naming the annotation file)."""
    if strategy not in STRATEGIES:
        raise MrbenchError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    file = str(annotations.path) if annotations.path else None
    durations = {}
    for record in annotations.records:
        durations.setdefault(record.vid, float(record.duration))
    all_vids = sorted(lengths)
    # clips of a context video that lie inside its annotated duration (room for a moment)
    usable = {v: min(lengths[v], math.floor(durations[v] / clip_len + _EPS)) for v in all_vids}
    plans = []
    seen: dict[str, object] = {}
    for record in annotations.records:
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
    resumed: int  # queries found complete in the interrupted run


@dataclass(frozen=True)
class _Plan:
    """Everything decided before the first output file: the queries' plans and the settings."""

    plans: list[QueryPlan]
    store: FeatureStore
    types: list[str]
    vids: list[str]
    lengths: dict[str, int]
    header: dict[str, Any]  # the manifest's settings
    settings: dict[str, Any]  # what a resumed run must share: the header and the records' digest


def build(source: SplitSource, out: str | os.PathLike[str], *, strategy: str = "noise",
          margin: float = 3.0, seeds: Sequence[int] = (0,), workers: int = 1, resume: bool = False,
          force: bool = False, progress: bool = False,
          on_query: Callable[[str], None] | None = None) -> list[MaskResult]:
    """Build one variant per seed (``OUT`` for one seed, ``OUT/seed<k>`` for several)."""
    if not seeds:
        raise MrbenchError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise MrbenchError(f"duplicate seeds: {list(seeds)}")
    annotations = source.load()
    return [
        _build_variant(source, annotations, target, strategy, margin, seed, workers, resume, force, progress,
                       on_query)
        for seed, target in zip(seeds, seed_dirs(out, seeds), strict=True)
    ]


def build_variant(source: SplitSource, out: str | os.PathLike[str], *, strategy: str = "noise",
                  margin: float = 3.0, seed: int = 0, workers: int = 1, resume: bool = False, force: bool = False,
                  progress: bool = False, on_query: Callable[[str], None] | None = None) -> MaskResult:
    """Build one masked variant in ``OUT``, staged beside it (:func:`mrbench.io.staged_output`).

    ``resume`` finishes an interrupted run of the same settings and inputs (or answers at once
    for a complete variant of them); ``force`` discards an interrupted run and replaces an
    existing variant (swapped in when the new one is complete). ``on_query(key)`` is called in
    this process after each query's files are complete.
    """
    return _build_variant(source, source.load(), Path(out), strategy, margin, seed, workers, resume, force,
                          progress, on_query)


def _build_variant(source: SplitSource, annotations: Annotations, target: Path, strategy: str, margin: float,
                   seed: int, workers: int, resume: bool, force: bool, progress: bool,
                   on_query: Callable[[str], None] | None) -> MaskResult:
    """:func:`build_variant` of already loaded annotations."""
    if strategy not in STRATEGIES:
        raise MrbenchError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not finite_number(margin) or margin < 0:
        raise MrbenchError(f"--margin must be a finite number >= 0 seconds, got {margin}")
    if source.features is None:
        raise MrbenchError(f"masking {source.dataset} {source.split} needs its feature root (--features)")
    if not annotations.records:
        raise ValidationError("has no queries to mask", file=source.annotations)
    require_plain_names(annotations)
    for record in annotations.records:  # before touching any feature file
        if not record.windows:
            raise ValidationError("no ground-truth windows: masking needs them", file=source.annotations,
                                  qid=record.qid, field="relevant_windows")
    refuse_overwrite(target, [source.annotations, source.data_dir], "--out", read_whole=[source.features])
    check_output_dir(target, "--out")
    executor = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None

    def mapper(function: Callable, *iterables: Sequence) -> Iterable:
        return executor.map(function, *iterables, chunksize=32) if executor else map(function, *iterables)

    try:
        plan = _plan(source, annotations.records, strategy, margin, seed, mapper)
        with staged_output(target, plan.settings, recorded=_recorded_settings, resume=resume, replace=force,
                           record=JOB_FILE, resumable=_has_features,
                           legacy=[target.with_name(target.name + PARTIAL_SUFFIX)], what="masked variant") as run:
            if run.done:
                queries = read_manifest(target)["queries"].values()
                return MaskResult(target, seed, len(queries),
                                  sum(b - a for q in queries for a, b in q["masked_clips"]), len(queries))
            checksums, already = _write_features(source, plan, run.folder, run.resumed, strategy, seed, progress,
                                                 on_query, executor, mapper)
            _write_description(source, annotations, plan, run.folder, checksums)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return MaskResult(target, seed, len(plan.plans), sum(b - a for p in plan.plans for a, b in p.ranges), already)


def _recorded_settings(target: Path) -> dict[str, Any] | None:
    """The settings the complete variant at ``target`` records (None when it is not one)."""
    if not (target / MANIFEST).is_file():
        return None
    manifest = read_manifest(target)
    return {key: manifest.get(key) for key in ("split", "strategy", "margin", "seed", "clip_len", "types", "source")}


def _has_features(folder: Path) -> bool:
    """Whether an interrupted run in ``folder`` wrote feature files (worth resuming)."""
    return any(folder.glob("features/*/*.npz"))


def _plan(source: SplitSource, records: list[Query], strategy: str, margin: float, seed: int,
          mapper: Callable) -> _Plan:
    """Check the feature files of every query and plan them (only headers are read)."""
    features = Path(source.features)  # type: ignore[arg-type]
    store = FeatureStore(features)
    if (features / "index.parquet").is_file() and not store.video_types():
        raise MrbenchError(f"{features} is a packed store; masking reads per-file features")
    types = list(source.video_types or store.video_types())
    vids = list(dict.fromkeys(r.vid for r in records))
    store.check(vids, [r.qid for r in records], types)
    lengths = video_lengths(store, vids, types, mapper)
    plans = plan_queries(Annotations(records, path=source.annotations), source.clip_len, lengths, strategy,
                         margin, seed)
    header = {
        "mrbench_version": __version__,
        "source": {
            "annotations": str(source.annotations.resolve()),
            "features": str(features.resolve()),
            "dataset": source.dataset,
            **({"data_dir": str(source.data_dir.resolve())} if source.data_dir else {}),
        },
        "split": source.split,
        "strategy": strategy,
        "margin": float(margin),
        "seed": int(seed),
        "clip_len": float(source.clip_len),
        "types": types,
    }
    settings = {**header, "records_sha256": _records_digest(records)}
    return _Plan(plans, store, types, vids, lengths, header, settings)


def _write_features(source: SplitSource, plan: _Plan, work: Path, resuming: bool, strategy: str, seed: int,
                    progress: bool, on_query: Callable[[str], None] | None, executor: ProcessPoolExecutor | None,
                    mapper: Callable) -> tuple[dict[str, str], int]:
    """Write every query's feature files into ``work`` (the executor, if any, does the reading
    and writing); returns the checksums and the number of queries found complete."""
    from tqdm import tqdm

    features = Path(source.features)  # type: ignore[arg-type]
    types, plans = plan.types, plan.plans
    if resuming:
        for leftover in work.glob("features/*/.*.tmp"):
            leftover.unlink()
    for feature_type in types:
        (work / "features" / feature_type).mkdir(parents=True, exist_ok=True)
    text_link = work / "features" / TEXT_TYPE
    if not text_link.is_symlink():
        os.symlink((features / TEXT_TYPE).resolve(), text_link, target_is_directory=True)

    already = sum(all((work / _relpath(t, p.vid)).is_file() for t in types) for p in plans) if resuming else 0
    by_video: dict[str, list[QueryPlan]] = {}
    for query in plans:
        by_video.setdefault(query.source_vid, []).append(query)
    checksums: dict[str, str] = {}
    job = _Job(features, work, tuple(types), strategy, resuming)
    bar = tqdm(total=len(plans), desc=f"mask {strategy} seed {seed}", unit="query", disable=not progress)
    try:
        if strategy == "mean":
            job = dataclasses.replace(job, means=_dataset_means(job, plan.lengths, mapper))
        if executor is None:
            for vid, group in by_video.items():
                _collect(_mask_video(job, vid, group), checksums, bar, on_query)
        else:
            futures = [executor.submit(_mask_video_in_worker, job, vid, group) for vid, group in by_video.items()]
            for future in as_completed(futures):
                _collect(future.result(), checksums, bar, on_query)
    finally:
        bar.close()
    return checksums, already


def _write_description(source: SplitSource, annotations: Annotations, plan: _Plan, work: Path,
                       checksums: dict[str, str]) -> None:
    """The annotations (relabelled), ``dataset.json`` and the manifest, written last."""
    queries = {}
    records = []
    plan_of = {p.key: p for p in plan.plans}
    durations: dict[str, float] = {}
    for record in annotations.records:
        durations.setdefault(record.vid, record.duration)
    for record in annotations.records:
        query = plan_of[str(record.qid)]
        duration = durations[query.context] if query.context else record.duration
        records.append(relabel(record, query, source.clip_len, duration))
        queries[query.key] = _manifest_entry(query, source.clip_len)

    annotations_rel = f"annotations/{source.split}.jsonl"
    write_annotations(work / annotations_rel, Annotations(records, annotations.style))
    dims = {t: read_shape(plan.store, t, plan.vids[0])[1] for t in plan.types}
    text_dim = int(plan.store.load_text(annotations.records[0].qid)["last_hidden_state"].shape[-1])
    info = DatasetInfo(
        name=source.dataset, clip_len=float(source.clip_len), video_features=dims,
        text_features={TEXT_TYPE: text_dim}, splits=[source.split], max_clips=source.max_clips,
        kind="masked", extra={"strategy": plan.header["strategy"], "margin": plan.header["margin"],
                              "seed": plan.header["seed"], "source": plan.header["source"]},
    )
    DatasetDir(work).write_info(info)
    for rel in (annotations_rel, "dataset.json"):
        checksums[rel] = sha256_file(work / rel)
    features = Path(source.features)  # type: ignore[arg-type]
    manifest = {**plan.header, "text_features": str((features / TEXT_TYPE).resolve()),
                "queries": queries, "files": dict(sorted(checksums.items()))}
    atomic_write_text(work / MANIFEST, dump_manifest(manifest))


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
