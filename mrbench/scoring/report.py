"""The score report: a JSON-ready dict in the reference evaluator's layout plus mrbench's
additions (see docs/contracts.md), printable as a table with the headline numbers first."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

#: Headline metrics as papers report them: QVHighlights-style (with highlights) and
#: Charades-STA-style (moment retrieval only). (label, section, key)
HEADLINE_HL = (
    ("R1@0.5", "brief", "MR-full-R1@0.5"),
    ("R1@0.7", "brief", "MR-full-R1@0.7"),
    ("mAP@0.5", "brief", "MR-full-mAP@0.5"),
    ("mAP@0.75", "brief", "MR-full-mAP@0.75"),
    ("mAP", "brief", "MR-full-mAP"),
    ("HL mAP (VeryGood)", "brief", "HL-min-VeryGood-mAP"),
    ("HL HIT@1 (VeryGood)", "brief", "HL-min-VeryGood-Hit1"),
)
HEADLINE_MR = (
    ("R1@0.3", "mrbench", "MR-full-R1@0.3"),
    ("R1@0.5", "brief", "MR-full-R1@0.5"),
    ("R1@0.7", "brief", "MR-full-R1@0.7"),
    ("R5@0.3", "mrbench", "MR-full-R5@0.3"),
    ("R5@0.5", "mrbench", "MR-full-R5@0.5"),
    ("R5@0.7", "mrbench", "MR-full-R5@0.7"),
    ("mIoU", "mrbench", "MR-full-mIoU"),
    ("mAP", "brief", "MR-full-mAP"),
)


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
        return self.data.get("brief", {})

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def format_table(self) -> str:
        """A readable table: headline metrics first, then buckets, highlights, additions and the
        spurious block, each value with its 95% interval when bootstrapped."""
        intervals = self.data.get("intervals", {})
        rows: list[tuple[str, str, str]] = []

        def add(label: str, value: Any, key: str | None = None) -> None:
            ci = intervals.get(key) if key else None
            rows.append((label, _fmt(value), f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))

        meta = self.data.get("meta", {})
        title = " ".join(str(v) for v in (meta.get("dataset"), meta.get("split")) if v)
        lines = [f"mrbench score: {meta.get('predictions', '')}" + (f" ({title})" if title else "")]
        counts = self.data.get("mrbench", {})
        if "n_queries" in counts:
            missing = counts.get("n_missing", 0)
            lines.append(f"{counts['n_queries']} queries" + (f", {missing} missing (scored 0)" if missing else ""))

        def section(name: str) -> None:
            rows.append((f"-- {name}", "", ""))

        headline = HEADLINE_HL if "HL-min-VeryGood" in self.data else HEADLINE_MR
        section("headline")
        for label, part, key in headline:
            value = self.data.get(part, {}).get(key)
            if value is not None or key in self.data.get(part, {}):
                add(label, value, key)
        mr_buckets = [b for b in ("short", "middle", "long") if b in self.data]
        if "full" in self.data:
            section("moment retrieval")
            full = self.data["full"]
            add("R1@0.5:0.95", " ".join(f"{v:.2f}" for v in full["MR-R1"].values()))
            add("mAP@0.5:0.95", " ".join(f"{v:.2f}" for k, v in full["MR-mAP"].items() if k != "average"))
            for bucket in mr_buckets:
                add(f"{bucket} mAP / R1@0.5", f"{self.data[bucket]['MR-mAP']['average']:.2f} / "
                    f"{self.data[bucket]['MR-R1']['0.5']:.2f}", f"MR-{bucket}-mAP")
            in_headline = {key for _, _, key in headline}
            for key, value in counts.items():
                if key.startswith("MR-") and key not in in_headline:
                    add(key.removeprefix("MR-full-"), value, key)
        if "HL-min-Fair" in self.data:
            section("highlight detection")
            for level in ("Fair", "Good", "VeryGood"):
                block = self.data[f"HL-min-{level}"]
                add(f"{level} mAP", block["HL-mAP"], f"HL-min-{level}-mAP")
                add(f"{level} HIT@1", block["HL-Hit1"], f"HL-min-{level}-Hit1")
        spurious = self.data.get("spurious")
        if spurious:
            section(f"spurious (masked targets, {spurious['n_files']} file(s); lower is better)")
            std = spurious.get("std", {})
            for key, value in spurious["brief"].items():
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
