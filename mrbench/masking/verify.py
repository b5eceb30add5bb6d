"""``mrbench mask verify``: check a masked variant against its manifest and its source features.

Checks: the manifest and ``dataset.json`` (kind ``masked``); every listed file's sha256, and no
unlisted feature file; the annotation file names exactly the manifest's queries and video ids;
the text-feature link resolves; for every query and feature source, every clip outside the
masked ranges equals the source clip and every masked clip differs from it (``recontext``: the
outside clips equal the context video's, the masked ones the source moment's; ``swap``: the
masked ones also equal the donor's clips; ``zero``: they are zeros).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrbench.data.dataset import DatasetDir
from mrbench.data.features import TEXT_TYPE, FeatureStore
from mrbench.data.schema import read_annotations
from mrbench.errors import MrbenchError
from mrbench.io import sha256_file
from mrbench.masking.variant import Variant, read_manifest


@dataclass
class VerifyReport:
    """What a successful verification found."""

    path: Path
    strategy: str
    seed: int
    margin: float
    clip_len: float
    queries: int
    files: int
    clips_masked: int
    clips_total: int
    share_mean: float  # share of each masked video's clips that were replaced
    share_min: float
    share_max: float

    def summary(self) -> str:
        return (
            f"{self.path}: OK (strategy {self.strategy}, seed {self.seed}, margin {self.margin:g} s, "
            f"clip {self.clip_len:g} s)\n"
            f"  queries {self.queries}, files {self.files} (checksums match)\n"
            f"  clips masked {self.clips_masked} of {self.clips_total} "
            f"({100 * self.clips_masked / max(self.clips_total, 1):.1f}%); share of each video masked: "
            f"mean {100 * self.share_mean:.1f}%, min {100 * self.share_min:.1f}%, "
            f"max {100 * self.share_max:.1f}%"
        )


def verify(path: str | os.PathLike[str], features: str | os.PathLike[str] | None = None,
           max_errors: int = 10) -> list[VerifyReport]:
    """Verify every variant under ``path``; raise :class:`MrbenchError` listing the problems.

    ``features`` overrides the source feature root recorded in the manifest (moved data).
    """
    return [_verify_one(v.path, features, max_errors) for v in Variant.find(path)]


class _Problems:
    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit, self.items, self.count = path, limit, [], 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(message)

    def raise_if_any(self) -> None:
        if self.count:
            more = f"; ... (+{self.count - len(self.items)} more)" if self.count > len(self.items) else ""
            raise MrbenchError(f"{self.path}: verification failed, {self.count} problem(s): "
                               + "; ".join(self.items) + more)


def _verify_one(path: Path, features: str | os.PathLike[str] | None, limit: int) -> VerifyReport:
    problems = _Problems(path, limit)
    manifest = read_manifest(path)
    info = DatasetDir(path).info()
    if info.kind != "masked":
        problems.add(f"dataset.json kind is {info.kind!r}, not 'masked'")

    files: dict[str, str] = manifest["files"]
    for rel, digest in files.items():
        file = path / rel
        if not file.is_file():
            problems.add(f"{rel} is missing")
        elif sha256_file(file) != digest:
            problems.add(f"{rel}: sha256 differs from the manifest")
    for file in sorted((path / "features").glob("*/*")):
        rel = file.relative_to(path).as_posix()
        if file.parent.name != TEXT_TYPE and rel not in files:
            problems.add(f"{rel} is not listed in the manifest")
    text = path / "features" / TEXT_TYPE
    if not text.is_dir():
        problems.add(f"features/{TEXT_TYPE} does not resolve to a directory")
    problems.raise_if_any()

    queries: dict[str, dict] = manifest["queries"]
    annotations = read_annotations(path / "annotations" / f"{manifest['split']}.jsonl")
    seen = {str(r.qid): r.vid for r in annotations}
    if set(seen) != set(queries):
        problems.add(f"annotation qids and manifest queries differ ({len(set(seen) ^ set(queries))} qids)")
    for key, entry in queries.items():
        if key in seen and seen[key] != entry["vid"]:
            problems.add(f"qid {key}: annotation vid {seen[key]!r} != manifest vid {entry['vid']!r}")

    types = manifest.get("types") or sorted(info.video_features)
    source = FeatureStore(features or manifest["source"]["features"])
    out = FeatureStore(path / "features")
    shares = []
    cache: dict[str, dict[str, np.ndarray]] = {}

    def load_source(vid: str) -> dict[str, np.ndarray]:
        if vid not in cache:
            if len(cache) > 8:
                cache.clear()
            arrays = source.load_video(vid, types)
            n = min(a.shape[0] for a in arrays.values())
            cache[vid] = {t: a[:n] for t, a in arrays.items()}
        return cache[vid]

    for key, entry in queries.items():
        masked = np.zeros(entry["n_clips"], dtype=bool)
        for first, last in entry["masked_clips"]:
            masked[first:last] = True
        shares.append(masked.mean())
        original = load_source(entry["source_vid"])
        context = load_source(entry["context_vid"]) if "context_vid" in entry else None
        donor = load_source(entry["donor_vid"]) if "donor_vid" in entry else None
        result = out.load_video(entry["vid"], types)
        for feature_type in types:
            got = result[feature_type]
            where = f"qid {key} {feature_type}"
            if got.shape[0] != entry["n_clips"]:
                problems.add(f"{where}: {got.shape[0]} clips, manifest says {entry['n_clips']}")
                continue
            if context is not None:
                first, last = entry["moment_clips"]
                expected = context[feature_type].copy()
                start = entry["masked_clips"][0][0]
                expected[start : start + last - first] = original[feature_type][first:last]
                if not np.array_equal(got, expected):
                    problems.add(f"{where}: clips differ from the context video with the moment moved in")
                continue
            reference = original[feature_type]
            same = np.all(got == reference, axis=1)
            if not same[~masked].all():
                problems.add(f"{where}: unmasked clips {np.flatnonzero(~masked & ~same)[:5].tolist()} differ from the source")
            if same[masked].any():
                problems.add(f"{where}: masked clips {np.flatnonzero(masked & same)[:5].tolist()} equal the source")
            if donor is not None:
                clips = donor[feature_type]
                for (first, last), offset in zip(entry["masked_clips"], entry["donor_offsets"], strict=True):
                    take = (offset + np.arange(last - first)) % clips.shape[0]
                    if not np.array_equal(got[first:last], clips[take]):
                        problems.add(f"{where}: clips {first}..{last - 1} are not the donor's")
            if manifest["strategy"] == "zero" and np.any(got[masked]):
                problems.add(f"{where}: masked clips are not zero")
    problems.raise_if_any()
    return VerifyReport(
        path=path, strategy=manifest["strategy"], seed=int(manifest["seed"]), margin=float(manifest["margin"]),
        clip_len=float(manifest["clip_len"]), queries=len(queries), files=len(files),
        clips_masked=int(sum(b - a for e in queries.values() for a, b in e["masked_clips"])),
        clips_total=int(sum(e["n_clips"] for e in queries.values())),
        share_mean=float(np.mean(shares)) if shares else 0.0,
        share_min=float(np.min(shares)) if shares else 0.0,
        share_max=float(np.max(shares)) if shares else 0.0,
    )
