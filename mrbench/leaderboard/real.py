"""Leaderboards on real data: entries that name a catalog split, scored against the downloaded
annotations, with nothing derived from them committed.

A real-data entry is a folder ``<declarations>/<entry>/`` holding only ``submission.yaml``: the
fields of :data:`~mrbench.leaderboard.submission.SCHEMA` (without the prediction-file patterns,
the masked variant and strategies), ``dataset`` being a catalog name, plus either

* ``kind: baseline`` with ``baseline`` (a :data:`mrbench.baselines.REGISTRY` name) and
  ``train_split`` (the split it is fitted on): the build generates its predictions; or
* ``kind: model`` with ``prediction_file: {path, url, sha256, size}``: a published prediction
  file, fetched like an annotation file into the predictions root (``$MRBENCH_PREDICTIONS``, by
  default ``~/.cache/mrbench/predictions``) and refused unless its checksum is the declared one.

The ground truth is the catalog split read from the data home (``$MRBENCH_DATA``; a split
released without windows is scored against its answers split). There are no masked
predictions, so the tables have no spurious columns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrbench.data.catalog import CATALOG, RemoteFile, default_root, get_spec, resolve_split
from mrbench.data.schema import Query
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    atomic_write_text,
    check_output_dir,
    folder_lock,
    refuse_overwrite,
    safe_name,
    sha256_file,
    short_repr,
)
from mrbench.leaderboard.render import index_page, render_group
from mrbench.leaderboard.submission import (
    SCHEMA,
    SUBMISSION_FILE,
    Field,
    Submission,
    check_value,
    find_entries,
    load_yaml_with_lines,
)
from mrbench.leaderboard.table import Group, is_strict_https_url, make_row

#: Environment variable naming the folder that holds published prediction files.
PREDICTIONS_HOME_ENV = "MRBENCH_PREDICTIONS"
_DROPPED = ("predictions", "masked_predictions", "masked_variant", "strategies", "selected_on_training_data")
#: The schema of a real-data entry's ``submission.yaml``.
REAL_SCHEMA: dict[str, Field] = {
    **{key: field for key, field in SCHEMA.items() if key not in _DROPPED},
    "dataset": Field(True, "name", "a catalog dataset name (mrbench data info NAME)"),
    "baseline": Field(False, "name", "kind baseline: a registered blind baseline"),
    "train_split": Field(False, "name", "kind baseline: the split it is fitted on"),
    "prediction_file": Field(False, "remote", "kind model: {path, url, sha256, size} of a published file"),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: Leaderboards are listed in catalog order, then in this split order.
_SPLIT_ORDER = ("val", "test", "test_iid", "test_ood")


@dataclass(frozen=True)
class RealEntry:
    """A validated real-data entry: its row metadata and how its predictions are had."""

    sub: Submission
    baseline: str | None
    train_split: str | None
    remote: RemoteFile | None


@dataclass(frozen=True)
class RealDataset:
    """What a real-data group shows of its catalog dataset."""

    name: str
    title: str
    columns: str


def _remote(value: Any, fail: Any) -> RemoteFile:
    keys = ("path", "url", "sha256", "size")
    if not isinstance(value, dict) or sorted(value) != sorted(keys):
        raise fail(f"must be a mapping with exactly {', '.join(keys)}, got {short_repr(value)}")
    try:
        safe_name(value["path"], "path")
    except ValidationError as exc:
        raise fail(f"path: {exc.reason}") from None
    if not is_strict_https_url(value["url"]):
        raise fail(f"url must be an https URL of plain characters, got {short_repr(value['url'])}")
    if not isinstance(value["sha256"], str) or not _SHA256.match(value["sha256"]):
        raise fail(f"sha256 must be 64 lower-case hex digits, got {short_repr(value['sha256'])}")
    size = value["size"]
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size < 1 << 40:
        raise fail(f"size must be a positive number of bytes, got {short_repr(size)}")
    return RemoteFile(value["path"], value["url"], value["sha256"], size)


def load_real_entry(entry_dir: str | os.PathLike[str]) -> RealEntry:
    """Read and validate ``<entry_dir>/submission.yaml``; errors name the file, line and field."""
    from mrbench.baselines import get_baseline

    root = Path(entry_dir)
    path = root / SUBMISSION_FILE
    if not path.is_file():
        raise ValidationError(f"entry directory without {SUBMISSION_FILE}", file=root)
    data, lines = load_yaml_with_lines(path)
    unknown = sorted(set(data) - set(REAL_SCHEMA), key=str)
    if unknown:
        raise ValidationError(f"unknown field (allowed: {', '.join(REAL_SCHEMA)})", file=path,
                              line=lines.get(unknown[0]), field=unknown[0])
    values: dict[str, Any] = {}
    for name, spec in REAL_SCHEMA.items():
        def fail(message: str, _name: str = name) -> ValidationError:
            return ValidationError(message, file=path, line=lines.get(_name), field=_name)

        if name not in data or data[name] is None:
            if spec.required:
                raise fail(f"missing field ({spec.help})")
            continue
        values[name] = _remote(data[name], fail) if spec.kind == "remote" else check_value(name, spec, data[name], fail)

    def fail_on(name: str, message: str) -> ValidationError:
        return ValidationError(message, file=path, line=lines.get(name), field=name)

    if values["dataset"] not in CATALOG:
        raise fail_on("dataset", f"unknown catalog dataset {values['dataset']!r} (known: {', '.join(CATALOG)})")
    baseline, train_split, remote = (values.pop(k, None) for k in ("baseline", "train_split", "prediction_file"))
    spec = get_spec(values["dataset"])
    for key, split in (("split", values["split"]), ("train_split", train_split)):
        if split is not None and split not in spec.splits:
            raise fail_on(key, spec.unpublished.get(split)
                          or f"dataset {spec.name!r} has no split {split!r} (splits: {', '.join(spec.splits)})")
    if values["kind"] == "baseline":
        if baseline is None or remote is not None:
            raise fail_on("baseline", "a baseline entry names a registered baseline and no prediction_file")
        try:
            needs_train = get_baseline(baseline).needs_train
        except MrbenchError as exc:
            raise fail_on("baseline", str(exc)) from None
        if needs_train and train_split is None:
            raise fail_on("train_split", f"baseline {baseline!r} is fitted on a split: name it")
    elif remote is None or baseline is not None or train_split is not None:
        raise fail_on("prediction_file", "a model entry names a prediction_file and no baseline or train_split")
    elif values["seeds"] != (0,):
        raise fail_on("seeds", "a published prediction file is one run: seeds [0]")
    sub = Submission(entry_id=safe_name(root.name, "entry"), root=root, masked_predictions=None, **values)
    return RealEntry(sub, baseline, train_split, remote)


def predictions_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding published prediction files (``$MRBENCH_PREDICTIONS`` by default)."""
    if home is not None:
        return Path(home)
    env = os.environ.get(PREDICTIONS_HOME_ENV)
    return Path(env) if env else Path.home() / ".cache" / "mrbench" / "predictions"


def prediction_path(entry: RealEntry, home: Path, *, fetch: bool = False) -> Path:
    """The entry's published file under ``home``, checked against its sha256 (``fetch``: download
    it from its URL first when absent)."""
    assert entry.remote is not None
    remote = entry.remote
    path = home / remote.path
    if not path.is_file():
        if not fetch:
            raise MrbenchError(f"{path} not found: fetch {remote.url} there (mrbench leaderboard real --fetch)")
        from mrbench.data.download import fetch_file

        fetch_file(remote, home)
    digest = sha256_file(path)
    if digest != remote.sha256:
        raise MrbenchError(f"{path}: sha256 {digest[:16]}... is not the declared {remote.sha256[:16]}... of "
                           f"{entry.sub.yaml_path}: fetch {remote.url} again")
    return path


@dataclass
class RealBuildResult:
    """What a real-data build made."""

    groups: list[Group]
    outputs: list[Path]


class _Splits:
    """Catalog splits read once per build, from the dataset folders under ``home`` (None: the
    data home, :func:`mrbench.data.catalog.data_home`)."""

    def __init__(self, home: Path | None) -> None:
        self.home = home
        self.cache: dict[tuple[str, str], tuple[list[Query], float]] = {}

    def truth(self, dataset: str, split: str) -> tuple[list[Query], float]:
        """Records with windows (a split released without them: its answers split) and clip length."""
        if (dataset, split) not in self.cache:
            root = default_root(dataset, self.home)
            source = resolve_split(dataset, split, root=root, kind="catalog")
            if source.answers:
                source = resolve_split(dataset, source.answers, root=root, kind="catalog")
            self.cache[(dataset, split)] = (source.load().records, source.clip_len)
        return self.cache[(dataset, split)]


def score_real_entry(entry: RealEntry, splits: _Splits, predictions: Path, *,
                     fetch: bool = False) -> dict[int, dict[str, float | None]]:
    """The leaderboard numbers of every seed of one entry."""
    from mrbench.baselines import predict_baseline
    from mrbench.scoring import score
    from mrbench.scoring.report import flatten_report

    sub = entry.sub
    path = None if entry.baseline is not None else prediction_path(entry, predictions, fetch=fetch)
    truth, clip_len = splits.truth(sub.dataset, sub.split)
    if path is not None:
        return {0: flatten_report(score(path, truth, clip_len=clip_len).to_dict())}
    train = None if entry.train_split is None else splits.truth(sub.dataset, entry.train_split)[0]
    return {seed: flatten_report(score(predict_baseline(entry.baseline, truth, clip_len=clip_len, train=train,
                                                        seed=seed), truth, clip_len=clip_len).to_dict())
            for seed in sub.seeds}


def _group_order(key: tuple[str, str]) -> tuple[int, int, str]:
    dataset, split = key
    rank = _SPLIT_ORDER.index(split) if split in _SPLIT_ORDER else len(_SPLIT_ORDER)
    return list(CATALOG).index(dataset), rank, split


def build_real(declarations: str | os.PathLike[str], out: str | os.PathLike[str], *,
               data: str | os.PathLike[str] | None = None, predictions: str | os.PathLike[str] | None = None,
               fetch: bool = False) -> RealBuildResult:
    """Score every real-data entry under ``declarations`` and write one leaderboard per (catalog
    dataset, split) to ``out`` (Markdown, CSV, Parquet, HTML, plot) with an index ``README.md``."""
    decl_root, out_dir = Path(declarations), Path(out)
    refuse_overwrite(out_dir, [decl_root], "--out", read_whole=[decl_root])
    check_output_dir(out_dir, "--out")
    entries = [load_real_entry(entry) for entry in find_entries(decl_root)]
    if not entries:
        raise MrbenchError(f"{decl_root} holds no entries")
    splits = _Splits(None if data is None else Path(data))
    groups: dict[tuple[str, str], Group] = {}
    for entry in entries:
        sub = entry.sub
        spec = get_spec(sub.dataset)
        dataset = RealDataset(sub.dataset, spec.title, "qvhighlights" if spec.has_highlights else "charades_sta")
        group = groups.setdefault((sub.dataset, sub.split), Group(dataset, sub.split))
        group.rows.append(make_row(sub, score_real_entry(entry, splits, predictions_home(predictions), fetch=fetch)))
    ordered = [groups[key] for key in sorted(groups, key=_group_order)]
    with folder_lock(out_dir):
        outputs = [path for group in ordered for path in render_group(group, out_dir)]
        index = out_dir / "README.md"
        atomic_write_text(index, index_page(ordered, command="mrbench leaderboard real",
                                            source="the real-data entries (submissions/_real/) and the "
                                                   "downloaded annotations", reported=False))
    return RealBuildResult(ordered, sorted([*outputs, index]))
