"""The leaderboard's table model: rows, groups, aggregation over seeds, order and families.

Pure: no file is read or written here. A :class:`Row` is built from an entry's metadata and its
per-seed metrics; a :class:`Group` holds the rows of one (dataset, split). Rows are ordered by the
column profile's main metric; an entry run "w/ TD-DETR" (metadata ``strategies: [tddetr]``) forms a
family with the entry of the same ``model`` without strategies, shown next to it with the change
(Δ) of standard and spurious mAP.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from mrbench.scoring import keys

Stat = tuple[float | None, float | None, int]  # (mean, std, n)

#: Strategies an entry may declare (metadata ``strategies``), each with its base model: the model
#: that, with the strategy, is the registered model of the strategy's name (as in
#: ``reference_models.register_strategy``: ``tddetr`` is QD-DETR w/ TD-DETR).
STRATEGIES = {"tddetr": "qd_detr"}
#: The change a strategy row shows against its model's row (columns of the metric's key).
DELTA_COLUMNS = (
    keys.Column("Δ mAP", keys.MR_MAP),
    keys.Column("Δ Sp mAP", keys.SPURIOUS_MAP, False, True),
)

#: A link we render: https, a plain host name, then only characters that need no escaping in
#: Markdown or HTML (no parentheses, brackets, quotes, angle brackets, backslashes or spaces).
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
_URL_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#@!$&*+,;=%]+$")
MAX_URL_LENGTH = 2000


def is_strict_https_url(value: object) -> bool:
    """True for an ``https://host/...`` URL that is safe to emit as a Markdown or HTML link."""
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH or not _URL_CHARS.match(value):
        return False
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    return (value.startswith("https://") and parts.username is None and parts.password is None
            and bool(_HOST.match(parts.hostname or "")) and port in (None, 443))


class EntryLike(Protocol):
    """What a row is made from (a :class:`~mrbench.leaderboard.submission.Submission`)."""

    @property
    def seeds(self) -> tuple[int, ...]: ...

    def metadata(self) -> dict[str, Any]: ...


class DatasetLike(Protocol):
    """What a group shows of its dataset (a :class:`~mrbench.leaderboard.submission.DatasetRef`)."""

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def columns(self) -> str: ...


@dataclass
class Row:
    """One entry on a leaderboard: metadata, per-seed metrics and their aggregate."""

    meta: dict[str, Any]
    per_seed: dict[int, dict[str, float | None]]
    stats: dict[str, Stat]  # metric -> (mean, std, n)


@dataclass
class Group:
    """All entries of one (dataset, split)."""

    dataset: DatasetLike
    split: str
    rows: list[Row] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return f"{self.dataset.name}/{self.split}"


def aggregate(values: Sequence[float | None]) -> Stat:
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


def make_row(entry: EntryLike, per_seed: dict[int, dict[str, float | None]]) -> Row:
    """A row: the entry's metadata and every metric aggregated over its seeds."""
    names = sorted({k for metrics in per_seed.values() for k in metrics})
    stats = {k: aggregate([per_seed[s].get(k) for s in entry.seeds]) for k in names}
    return Row(meta=entry.metadata(), per_seed=per_seed, stats=stats)


def has_spurious(group: Group) -> bool:
    """Whether some entry of the group has masked predictions (spurious metrics)."""
    return any(keys.SPURIOUS_MAP in row.stats for row in group.rows)


def columns_for(group: Group) -> list[keys.Column]:
    """The profile's columns; spurious columns only when some entry has masked predictions."""
    spurious = has_spurious(group)
    return [c for c in keys.PROFILES[group.dataset.columns] if spurious or not c.spurious]


def mean_of(row: Row, key: str) -> float | None:
    """The mean of a metric over the row's seeds (``None`` when absent)."""
    return row.stats.get(key, (None, None, 0))[0]


def strategies_of(row: Row) -> tuple[str, ...]:
    """The strategies an entry declares (``()`` for a model as published)."""
    return tuple(row.meta.get("strategies") or ())


def base_model(row: Row) -> str:
    """The model a row runs without its strategies: its ``model``, or the strategy's base model
    when the ``model`` is named after one of its strategies (``tddetr`` -> ``qd_detr``)."""
    model = row.meta["model"]
    return STRATEGIES[model] if model in strategies_of(row) else model


def base_of(row: Row, group: Group) -> Row | None:
    """The row a strategy row is compared with: same kind, its base model, no strategies (the
    first by entry id when several); ``None`` for rows without strategies or without a base."""
    if not strategies_of(row):
        return None
    bases = [r for r in group.rows if not strategies_of(r) and r.meta["model"] == base_model(row)
             and r.meta["kind"] == row.meta["kind"]]
    return min(bases, key=lambda r: r.meta["entry"]) if bases else None


def has_families(group: Group) -> bool:
    """Whether some strategy row of the group has its model's row to compare with."""
    return any(base_of(row, group) is not None for row in group.rows)


def delta_columns(group: Group) -> list[keys.Column]:
    """The Δ columns: only when some strategy row has its model's row, Δ Sp mAP only with
    spurious metrics."""
    if not has_families(group):
        return []
    spurious = has_spurious(group)
    return [c for c in DELTA_COLUMNS if spurious or not c.spurious]


def delta(row: Row, group: Group, key: str) -> float | None:
    """Mean of ``key`` in a strategy row minus the mean in its model's row (``None`` when either
    is absent or the row has no base)."""
    base = base_of(row, group)
    if base is None:
        return None
    value, reference = mean_of(row, key), mean_of(base, key)
    return None if value is None or reference is None else value - reference


def sorted_rows(group: Group) -> list[Row]:
    """Rows by the profile's main metric (descending, missing last), then by entry id; a strategy
    row follows its model's row, and such a family is placed by its best member."""
    key = keys.SORT_KEY[group.dataset.columns]

    def order(row: Row) -> tuple[int, float, str]:
        mean = mean_of(row, key)
        return (1, 0.0, row.meta["entry"]) if mean is None else (0, -mean, row.meta["entry"])

    families: dict[str, list[Row]] = {}
    for row in group.rows:
        base = base_of(row, group)
        families.setdefault((base or row).meta["entry"], []).append(row)
    ranked = sorted(families.values(), key=lambda rows: min(order(r) for r in rows))
    return [row for rows in ranked for row in sorted(rows, key=lambda r: (bool(strategies_of(r)), order(r)))]
