"""Scoring: read and validate a submission, compute every metric, return one :class:`Report`.

``mrbench.scoring`` imports numpy only (no pandas, matplotlib or torch) so that ``mrbench score``
starts fast.
"""

from mrbench.scoring.bundle import Bundle, read_bundle, write_bundle
from mrbench.scoring.core import score
from mrbench.scoring.groundtruth import GroundTruth, load_ground_truth
from mrbench.scoring.predictions import PredictionSet, align_predictions, read_records
from mrbench.scoring.report import Report

__all__ = [
    "Bundle",
    "GroundTruth",
    "PredictionSet",
    "Report",
    "align_predictions",
    "load_ground_truth",
    "read_bundle",
    "read_records",
    "score",
    "write_bundle",
]
