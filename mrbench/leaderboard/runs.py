"""Scoring the runs of submission entries, the cache key of a run, and ``submission check``.

A run is one seed of an entry: its standard predictions and, if the entry has them, its
predictions on the masked variant, scored with :func:`mrbench.score` against the entry's ground
truth in ``submissions/_datasets``. Its cache key hashes the bytes of every file the score reads
and the source of the whole scoring code path (:func:`scorer_fingerprint`: the import closure of
this module, computed), so a run is rescored exactly when one of them changes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import sha256_file
from mrbench.leaderboard.fingerprint import code_fingerprint
from mrbench.leaderboard.submission import (
    SUBMISSION_FILE,
    DatasetRef,
    Submission,
    find_entries,
    load_dataset_ref,
    load_submission,
    resolve_files,
)
from mrbench.scoring import Report, score
from mrbench.scoring.report import flatten_report

#: Bumped when the meaning of a cached run changes in a way the code fingerprint cannot see.
RUN_KEY_VERSION = 1


def score_entry_run(sub: Submission, ref: DatasetRef, run_seed: int, **options: Any) -> Report:
    """The full report of one seed of an entry (standard and, if present, masked predictions);
    the files are read within the bounds the ground truth sets (``$MRBENCH_SIZE_LIMIT_FACTOR``
    raises them). ``options`` go to :func:`mrbench.score` (``ci``, the bootstrap ``seed``, ``n_boot``, ...)."""
    masked = sub.masked_path(run_seed)
    return score(
        sub.prediction_path(run_seed),
        ref.gt_path(sub.split),
        masked=[] if masked is None else [masked],
        variant=None if masked is None else ref.variant_dir(sub.masked_variant),
        clip_len=ref.clip_len,
        **options,
    )


def score_run(sub: Submission, ref: DatasetRef, seed: int) -> dict[str, float | None]:
    """The leaderboard numbers of one seed of an entry (see :func:`flatten_report`)."""
    return flatten_report(score_entry_run(sub, ref, seed).to_dict())


def scorer_fingerprint() -> str:
    """sha256 of the scoring code path: every ``mrbench`` module this module imports, directly
    or not (the scorer, the metrics, the readers, the schema, ``mrbench.io``), and the versions
    of the third-party packages among them."""
    return code_fingerprint([__name__])


def run_key(sub: Submission, ref: DatasetRef, seed: int, scorer: str, hashes: dict[Path, str]) -> str:
    """Cache key of one run: the scorer fingerprint and the bytes of every file the score reads
    (``hashes`` memoizes file digests across runs)."""

    def digest(path: Path) -> str:
        if path not in hashes:
            hashes[path] = sha256_file(path)
        return hashes[path]

    parts = [str(RUN_KEY_VERSION), scorer, digest(ref.gt_path(sub.split)), digest(sub.prediction_path(seed))]
    masked = sub.masked_path(seed)
    if masked is not None:
        variant = ref.variant_dir(sub.masked_variant)
        parts += [digest(masked), digest(variant / "manifest.json"),
                  digest(variant / "annotations" / f"{sub.split}.jsonl")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_entry(entry_dir: str | os.PathLike[str],
               submissions_root: str | os.PathLike[str] | None = None) -> tuple[Submission, DatasetRef]:
    """An entry and its dataset store, with every file it names checked (not yet scored);
    ``submissions_root`` defaults to the entry's parent folder."""
    entry = Path(entry_dir)
    root = Path(submissions_root) if submissions_root is not None else entry.resolve().parent
    sub = load_submission(entry)
    try:
        ref = load_dataset_ref(root, sub.dataset)
    except MrbenchError as exc:
        raise ValidationError(str(exc), file=sub.yaml_path, field="dataset") from None
    resolve_files(sub, ref)
    return sub, ref


def entries_of(submissions_root: str | os.PathLike[str]) -> list[Path]:
    """The entry folders of a submissions root; one without ``submission.yaml`` is an error."""
    entries = find_entries(submissions_root)
    for entry in entries:
        if not (entry / SUBMISSION_FILE).is_file():
            raise ValidationError(f"entry directory without {SUBMISSION_FILE}", file=entry)
    return entries


def check_submission(entry_dir: str | os.PathLike[str],
                     submissions_root: str | os.PathLike[str] | None = None) -> Submission:
    """Validate one entry completely: the yaml schema, the files it names, the dataset it refers
    to, and every prediction file against the ground truth (by scoring it, as the build does)."""
    sub, ref = load_entry(entry_dir, submissions_root)
    for seed in sub.seeds:
        score_run(sub, ref, seed)
    return sub


def check_path(path: str | os.PathLike[str]) -> list[Submission]:
    """Check one entry (a directory holding ``submission.yaml``) or every entry of a
    submissions root. Raises at the first invalid entry."""
    path = Path(path)
    if (path / SUBMISSION_FILE).is_file():
        return [check_submission(path)]
    if not path.is_dir():
        raise MrbenchError(f"{path} is not a directory")
    entries = entries_of(path)
    if not entries:
        raise MrbenchError(f"{path} holds no {SUBMISSION_FILE} and no entry directories")
    return [check_submission(entry, path) for entry in entries]
