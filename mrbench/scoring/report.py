"""The score report: a JSON-ready dict in the reference evaluator's layout plus mrbench's
additions (see docs/contracts.md), printable as a table with the headline numbers first."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any

from mrbench.scoring import keys


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@dataclass
class Report:
    """A scored submission. ``data`` is the full report (``to_dict()`` returns a copy)."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serializable dicts (layout: docs/contracts.md)."""
        return copy.deepcopy(self.data)

    def to_json(self, indent: int | None = 4) -> str:
        """The report as JSON text (no NaN: absent values are null)."""
        return json.dumps(self.data, indent=indent, allow_nan=False)

    @property
    def brief(self) -> dict[str, float]:
        return self.data.get(keys.BRIEF, {})

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def format_table(self) -> str:
        """A readable table: headline metrics first, then buckets, highlights, additions and the
        spurious block, each value with its 95% interval when bootstrapped."""
        intervals = self.data.get(keys.INTERVALS, {})
        rows: list[tuple[str, str, str]] = []

        def add(label: str, value: Any, key: str | None = None) -> None:
            ci = intervals.get(key) if key else None
            rows.append((label, _fmt(value), f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))

        meta = self.data.get(keys.META, {})
        title = " ".join(str(v) for v in (meta.get("dataset"), meta.get("split")) if v)
        lines = [f"mrbench score: {meta.get('predictions', '')}" + (f" ({title})" if title else "")]
        counts = self.data.get(keys.MRBENCH, {})
        if keys.N_QUERIES in counts:
            missing = counts.get(keys.N_MISSING, 0)
            lines.append(f"{counts[keys.N_QUERIES]} queries" + (f", {missing} missing (scored 0)" if missing else ""))

        def section(name: str) -> None:
            rows.append((f"-- {name}", "", ""))

        headline = keys.HEADLINE_HL if keys.hl_block("VeryGood") in self.data else keys.HEADLINE_MR
        section("headline")
        for label, part, key in headline:
            value = self.data.get(part, {}).get(key)
            if value is not None or key in self.data.get(part, {}):
                add(label, value, key)
        mr_buckets = [b for b in keys.MR_BUCKETS if b in self.data]
        if keys.FULL in self.data:
            section("moment retrieval")
            full = self.data[keys.FULL]
            add("R1@0.5:0.95", " ".join(f"{v:.2f}" for v in full[keys.BLOCK_R1].values()))
            add("mAP@0.5:0.95", " ".join(f"{v:.2f}" for k, v in full[keys.BLOCK_MAP].items() if k != keys.BLOCK_AVERAGE))
            for bucket in mr_buckets:
                add(f"{bucket} mAP / R1@0.5", f"{self.data[bucket][keys.BLOCK_MAP][keys.BLOCK_AVERAGE]:.2f} / "
                    f"{self.data[bucket][keys.BLOCK_R1]['0.5']:.2f}", keys.mr_bucket_map(bucket))
            in_headline = {key for _, _, key in headline}
            for key, value in counts.items():
                if key.startswith(keys.MR_PREFIX) and key not in in_headline:
                    add(key.removeprefix(keys.MR_FULL_PREFIX), value, key)
        if keys.hl_block("Fair") in self.data:
            section("highlight detection")
            for level in keys.HL_LEVELS:
                block = self.data[keys.hl_block(level)]
                add(f"{level} mAP", block[keys.BLOCK_HL_MAP], keys.hl_map(level))
                add(f"{level} HIT@1", block[keys.BLOCK_HL_HIT1], keys.hl_hit1(level))
        spurious = self.data.get(keys.SPURIOUS)
        if spurious:
            section(f"spurious (masked targets, {spurious[keys.N_FILES]} file(s); lower is better)")
            std = spurious.get(keys.STD, {})
            for key, value in spurious[keys.BRIEF].items():
                spread = std.get(key)
                add(key, value)
                if spread is not None:
                    rows[-1] = (key, rows[-1][1], f"± {spread:.2f}")
        width = max(len(r[0]) for r in rows if not r[0].startswith("-- "))
        value_width = max([len(r[1]) for r in rows if " " not in r[1]] or [1])
        for label, value, ci in rows:
            if label.startswith("-- "):
                lines.append(label)
            else:
                shown = value if " " in value else f"{value:>{value_width}}"
                lines.append(f"  {label:<{width}}  {shown}  {ci}".rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_table()


def flatten_report(report: dict[str, Any]) -> dict[str, float | None]:
    """The numbers of a report dict as one flat ``{key: value}`` dict: the reference ``brief``,
    mrbench's additions and the spurious ``brief`` (keys as in docs/contracts.md); non-finite
    values become ``None``, non-numbers are left out."""
    out: dict[str, float | None] = {}
    blocks = [report.get(keys.BRIEF, {}), report.get(keys.MRBENCH, {})]
    spurious = report.get(keys.SPURIOUS)
    if spurious:
        blocks.append(spurious.get(keys.BRIEF, {}))
    for block in blocks:
        for key, value in block.items():
            if value is None:
                out[key] = None
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value) if math.isfinite(value) else None
    return out
