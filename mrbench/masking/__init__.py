"""Masked-target variants of a dataset (``mrbench mask``): ranges, strategies, the job, verification.

Importing this package never imports torch.
"""

from mrbench.masking.build import (
    MaskResult,
    MaskSource,
    build,
    build_variant,
    source_from_catalog,
    source_from_dir,
    source_from_file,
)
from mrbench.masking.ranges import masked_ranges, merge_ranges, window_range
from mrbench.masking.strategies import STRATEGIES
from mrbench.masking.verify import VerifyReport, verify

__all__ = [
    "STRATEGIES",
    "MaskResult",
    "MaskSource",
    "VerifyReport",
    "build",
    "build_variant",
    "masked_ranges",
    "merge_ranges",
    "source_from_catalog",
    "source_from_dir",
    "source_from_file",
    "verify",
    "window_range",
]
