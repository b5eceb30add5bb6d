"""The score report's keys and the column profiles built from them: the one place that names them.

Key strings follow the reference evaluator (``MR-full-mAP``, ``HL-min-VeryGood-mAP``) and
docs/contracts.md (mrbench's additions, the spurious block). The report printer
(:mod:`mrbench.scoring.report`), the leaderboard and the CLI read them from here.
This module imports nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass

# report sections (top-level keys of the report dict)
BRIEF = "brief"
MRBENCH = "mrbench"
SPURIOUS = "spurious"
INTERVALS = "intervals"
META = "meta"
FULL = "full"
MR_BUCKETS = ("short", "middle", "long")
HL_LEVELS = ("Fair", "Good", "VeryGood")
# keys inside the per-bucket and highlight blocks
BLOCK_R1 = "MR-R1"
BLOCK_MAP = "MR-mAP"
BLOCK_AVERAGE = "average"
BLOCK_HL_MAP = "HL-mAP"
BLOCK_HL_HIT1 = "HL-Hit1"
N_QUERIES = "n_queries"
N_MISSING = "n_missing"
N_FILES = "n_files"
STD = "std"


def mr_r1(threshold: float) -> str:
    """Recall@1 at an IoU threshold over all moments, e.g. ``MR-full-R1@0.7``."""
    return f"MR-full-R1@{threshold}"


def mr_r5(threshold: float) -> str:
    """Recall@5 at an IoU threshold, e.g. ``MR-full-R5@0.5`` (an mrbench addition)."""
    return f"MR-full-R5@{threshold}"


def mr_dr(n: int, threshold: float) -> str:
    """Discounted recall dR@n at an IoU threshold (Yuan et al. 2021), e.g. ``MR-full-dR5@0.5``."""
    return f"MR-full-dR{n}@{threshold}"


def mr_map_at(threshold: float) -> str:
    """mAP at one IoU threshold, e.g. ``MR-full-mAP@0.75``."""
    return f"MR-full-mAP@{threshold}"


def mr_bucket_map(bucket: str) -> str:
    """mAP of a length bucket (or ``full``), e.g. ``MR-short-mAP``."""
    return f"MR-{bucket}-mAP"


def hl_block(level: str) -> str:
    """The highlight block of a saliency level, e.g. ``HL-min-VeryGood``."""
    return f"HL-min-{level}"


def hl_map(level: str) -> str:
    """Highlight mAP of a saliency level, e.g. ``HL-min-VeryGood-mAP``."""
    return f"{hl_block(level)}-mAP"


def hl_hit1(level: str) -> str:
    """Highlight HIT@1 of a saliency level, e.g. ``HL-min-VeryGood-Hit1``."""
    return f"{hl_block(level)}-Hit1"


def spurious(key: str) -> str:
    """The spurious block's name for a metric, e.g. ``Spurious-mAP@0.75`` for ``mAP@0.75``."""
    return f"Spurious-{key}"


MR_MAP = "MR-full-mAP"
MR_MIOU = "MR-full-mIoU"
CENTER_IN_MASK = "Center-in-mask"
TOP1_AGREEMENT = "Top1-IoU-orig-vs-masked"
PER_FILE = "per_file"
MR_PREFIX = "MR-"
MR_FULL_PREFIX = "MR-full-"
SPURIOUS_MAP = spurious("mAP")
RATIO_MAP = "Ratio-mAP"


@dataclass(frozen=True)
class Column:
    """A metric column of a table: header, report key, and whether higher is better."""

    header: str
    key: str
    higher_better: bool = True
    spurious: bool = False


SPURIOUS_COLUMNS = (
    Column("Sp R1@0.7", spurious("R1@0.7"), False, True),
    Column("Sp R1@0.9", spurious("R1@0.9"), False, True),
    Column("Sp mAP@0.75", spurious("mAP@0.75"), False, True),
    Column("Sp mAP", SPURIOUS_MAP, False, True),
    Column("Ratio", RATIO_MAP, True, True),
)

#: Column sets, following how papers report each kind of dataset (``columns:`` in source.yaml).
PROFILES: dict[str, tuple[Column, ...]] = {
    "qvhighlights": (
        Column("R1@0.5", mr_r1(0.5)),
        Column("R1@0.7", mr_r1(0.7)),
        Column("mAP@0.5", mr_map_at(0.5)),
        Column("mAP@0.75", mr_map_at(0.75)),
        Column("mAP", MR_MAP),
        Column("HL mAP", hl_map("VeryGood")),
        Column("HIT@1", hl_hit1("VeryGood")),
        *SPURIOUS_COLUMNS,
    ),
    "charades_sta": (
        Column("R1@0.3", mr_r1(0.3)),
        Column("R1@0.5", mr_r1(0.5)),
        Column("R1@0.7", mr_r1(0.7)),
        Column("R5@0.5", mr_r5(0.5)),
        Column("R5@0.7", mr_r5(0.7)),
        Column("mIoU", MR_MIOU),
        *SPURIOUS_COLUMNS,
    ),
}
COLUMN_PROFILES = tuple(PROFILES)
#: The metric a profile's rows are ranked by (descending).
SORT_KEY = {"qvhighlights": MR_MAP, "charades_sta": mr_r1(0.7)}

#: Headline rows of the printed report, as papers report them: QVHighlights-style (with
#: highlights) and Charades-STA-style (moment retrieval only). (label, section, key)
HEADLINE_HL = (
    ("R1@0.5", BRIEF, mr_r1(0.5)),
    ("R1@0.7", BRIEF, mr_r1(0.7)),
    ("mAP@0.5", BRIEF, mr_map_at(0.5)),
    ("mAP@0.75", BRIEF, mr_map_at(0.75)),
    ("mAP", BRIEF, MR_MAP),
    ("HL mAP (VeryGood)", BRIEF, hl_map("VeryGood")),
    ("HL HIT@1 (VeryGood)", BRIEF, hl_hit1("VeryGood")),
)
HEADLINE_MR = (
    ("R1@0.3", MRBENCH, mr_r1(0.3)),
    ("R1@0.5", BRIEF, mr_r1(0.5)),
    ("R1@0.7", BRIEF, mr_r1(0.7)),
    ("R5@0.3", MRBENCH, mr_r5(0.3)),
    ("R5@0.5", MRBENCH, mr_r5(0.5)),
    ("R5@0.7", MRBENCH, mr_r5(0.7)),
    ("mIoU", MRBENCH, MR_MIOU),
    ("mAP", BRIEF, MR_MAP),
)
