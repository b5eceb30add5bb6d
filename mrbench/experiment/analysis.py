"""The statistics of the validity report, over the per-query measures of the cells (numpy, pandas).

Every number is a percentage of queries (mAP, R1, centre-in-mask) unless it is a ratio or a rank
correlation. Intervals are 95 % percentile bootstraps with a fixed seed (so the report rebuilds
byte for byte): over queries for one cell or a paired comparison on the same queries, over cells
for a correlation across cells, and a Student t interval over seeds for the paired seed-level
comparison of the paper's claim.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

N_BOOT = 1000
SEED = 0
#: two-sided 95 % Student t quantiles by degrees of freedom (1..30)
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval (``low``/``high`` NaN when there is none)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    def text(self, digits: int = 1) -> str:
        if math.isnan(self.value):
            return "—"
        if math.isnan(self.low):
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    @property
    def excludes_zero(self) -> bool:
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)


def offset_of(*parts: object) -> int:
    """A stable stream number for a named estimate (the same estimate gets the same interval
    wherever it is shown)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def rng(offset: int = 0) -> np.random.Generator:
    return np.random.default_rng([SEED, offset])


def _interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def boot_queries(statistic: Callable[..., np.ndarray], groups: Sequence[Sequence[np.ndarray]],
                 offset: int = 0, n_boot: int = N_BOOT) -> Estimate:
    """``statistic(*arrays)`` with a bootstrap interval; each group's arrays share their resampled
    queries (paired), different groups are resampled independently. ``statistic`` takes arrays of
    shape ``[B, Q_g]`` and returns ``[B]``."""
    value = float(statistic(*[a[None, :] for group in groups for a in group])[0])
    generator = rng(offset)
    draws = []
    for group in groups:
        n = len(group[0])
        index = generator.integers(0, n, size=(n_boot, n))
        draws.extend(a[index] for a in group)
    low, high = _interval(np.asarray(statistic(*draws), dtype=float))
    return Estimate(value, low, high)


def pct_mean(values: np.ndarray, offset: int = 0) -> Estimate:
    """100 x the mean of per-query ``values`` with its interval."""
    return boot_queries(lambda a: 100.0 * a.mean(1), [[np.asarray(values, dtype=float)]], offset)


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray, offset: int = 0) -> Estimate:
    """``mean(numerator) / mean(denominator)`` over paired queries, with its interval."""
    def statistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        bottom = b.mean(1)
        return np.divide(a.mean(1), bottom, out=np.full(len(bottom), np.nan), where=bottom > 0)

    return boot_queries(statistic, [[np.asarray(numerator, float), np.asarray(denominator, float)]], offset)


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    return pd.Series(np.asarray(values, dtype=float)).rank(method="average").to_numpy()


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (NaN when either side is constant)."""
    rx, ry = ranks(x), ranks(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (ties in either ranking corrected; NaN when either side is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n_x, n_y = np.count_nonzero(dx), np.count_nonzero(dy)
    if n_x == 0 or n_y == 0:
        return math.nan
    return float(np.sum(dx * dy) / math.sqrt(n_x * n_y))


def boot_correlation(x: np.ndarray, y: np.ndarray, correlation: Callable[[np.ndarray, np.ndarray], float],
                     offset: int = 0, n_boot: int = N_BOOT) -> Estimate:
    """A correlation across items (cells) with a bootstrap interval over the items."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    value = correlation(x, y)
    generator = rng(offset)
    index = generator.integers(0, len(x), size=(n_boot, len(x)))
    samples = np.asarray([correlation(x[k], y[k]) for k in index])
    low, high = _interval(samples)
    return Estimate(value, low, high)


def t_interval(differences: Sequence[float]) -> Estimate:
    """Mean of seed-level differences with a two-sided 95 % Student t interval (one value: none)."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return Estimate(math.nan)
    mean = float(d.mean())
    if d.size < 2:
        return Estimate(mean)
    half = _T95[min(d.size - 1, len(_T95)) - 1] * float(d.std(ddof=1)) / math.sqrt(d.size)
    return Estimate(mean, mean - half, mean + half)
