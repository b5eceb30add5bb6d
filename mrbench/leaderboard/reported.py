"""Numbers published with the TD-DETR paper (Zhou et al., ICCV 2025; arXiv 2501.07305).

They are copied from the paper's tables as collected in ../shared/reference/tddetr.md §4.3 and §5,
never scored by mrbench, and always rendered as their own, labelled table: they come from other
features, other data (real QVHighlights / Charades-STA videos) and single runs, so they are not
comparable with the scored entries.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER = "https://arxiv.org/abs/2501.07305"


@dataclass(frozen=True)
class ReportedTable:
    """One published table: where it comes from, its columns and rows (``None`` = not reported)."""

    title: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]
    approximate: bool = False


TABLES: tuple[ReportedTable, ...] = (
    ReportedTable(
        "QVHighlights test",
        "TD-DETR paper, main comparison table (SlowFast + CLIP features)",
        ("R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP"),
        (
            ("Moment-DETR", (52.89, 33.02, 54.82, 29.40, 30.73)),
            ("QD-DETR", (62.40, 44.98, 62.52, 39.88, 39.86)),
            ("CG-DETR", (65.40, 48.40, 64.50, 42.80, 42.90)),
            ("BAM-DETR", (64.53, 48.64, 64.57, 46.33, 45.36)),
            ("TD-DETR", (64.53, 50.37, 66.21, 47.32, 46.69)),
            ("SnAG w/ TD-DETR strategies", (66.48, 52.93, 63.71, 49.11, 46.75)),
        ),
    ),
    ReportedTable(
        "QVHighlights val",
        "TD-DETR paper, ablations (full model = alpha 0.7 row; QD-DETR = the sampling ablation's baseline row)",
        ("R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP"),
        (
            ("QD-DETR", (None, 46.66, None, 41.82, 41.22)),
            ("TD-DETR", (65.88, 53.67, 66.43, 49.86, 49.05)),
        ),
    ),
    ReportedTable(
        "Charades-STA test",
        "TD-DETR paper, Charades-STA comparison (SlowFast + CLIP unless stated)",
        ("R1@0.5", "R1@0.7"),
        (
            ("QD-DETR", (57.31, 32.55)),
            ("BAM-DETR", (59.95, 39.38)),
            ("TD-DETR", (60.89, 40.35)),
            ("TD-DETR (InternVideo2 features)", (73.49, 53.01)),
        ),
    ),
    ReportedTable(
        "QVHighlights (presumably val), masked moments (spurious)",
        "TD-DETR paper, Fig. 1(b): approximate values read off the figure, not from a table",
        ("mAP", "Sp mAP"),
        (
            ("QD-DETR", (41.3, 10.3)),
            ("UVCOM", (44.1, 7.9)),
            ("CG-DETR", (45.1, 6.0)),
            ("BAM-DETR", (47.7, 6.6)),
            ("TD-DETR", (48.6, 2.0)),
        ),
        approximate=True,
    ),
)


def _fmt(value: float | None, approximate: bool) -> str:
    if value is None:
        return "—"
    return f"≈ {value:.1f}" if approximate else f"{value:.2f}"


def reported_markdown(level: int = 1) -> str:
    """The reported numbers as Markdown, under a heading of the given level."""
    h = "#" * level
    parts = [
        f"{h} Reported in the TD-DETR paper (not scored by mrbench)\n",
        f"Published numbers from [the TD-DETR paper]({PAPER}), single runs on the real datasets with "
        "their own features. They are not comparable with mrbench's scored entries and are never "
        "mixed into them. — = not reported.\n",
    ]
    for table in TABLES:
        parts.append(f"{h}# {table.title}\n")
        parts.append(f"Source: {table.source}.\n")
        head = ["Method", *table.columns]
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(table.columns)]
        for method, values in table.rows:
            lines.append("| " + " | ".join([method, *(_fmt(v, table.approximate) for v in values)]) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def reported_csv() -> str:
    """Long form: ``table,method,metric,value,approximate,source`` (values as published)."""
    lines = ["table,method,metric,value,approximate,source"]
    for table in TABLES:
        for method, values in table.rows:
            for metric, value in zip(table.columns, values, strict=True):
                if value is None:
                    continue
                cells = [table.title, method, metric, f"{value:.2f}", str(table.approximate).lower(), table.source]
                lines.append(",".join(f'"{c}"' if "," in c else c for c in cells))
    return "\n".join(lines) + "\n"
