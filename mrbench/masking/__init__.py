"""Masked-target variants of a dataset (``mrbench mask``): ranges, strategies, the job, the
:class:`Variant` type, verification.

Importing this package never imports torch.
"""

from mrbench.masking.build import (
    MaskResult,
    build,
    build_variant,
    source_from_catalog,
    source_from_dir,
    source_from_file,
)
from mrbench.masking.ranges import masked_ranges, merge_ranges, window_range
from mrbench.masking.strategies import STRATEGIES
from mrbench.masking.variant import Variant, read_manifest
from mrbench.masking.verify import VerifyReport, verify

__all__ = [
    "STRATEGIES",
    "MaskResult",
    "Variant",
    "VerifyReport",
    "build",
    "build_variant",
    "masked_ranges",
    "merge_ranges",
    "read_manifest",
    "source_from_catalog",
    "source_from_dir",
    "source_from_file",
    "verify",
    "window_range",
]
