"""mrbench: benchmark and evaluation toolkit for spurious correlations in video moment retrieval.

Importing :mod:`mrbench` never imports torch; the scoring, masking and data paths are numpy-only.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "score"]


def score(*args: Any, **kwargs: Any) -> Any:
    """Score predictions; see :func:`mrbench.scoring.score` (imported lazily to keep start-up fast)."""
    from mrbench.scoring import score as _score

    return _score(*args, **kwargs)
