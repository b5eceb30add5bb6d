"""Bootstrap confidence intervals over queries (percentile method, seeded)."""

from __future__ import annotations

import numpy as np

from mrbench.io import check_allocation

#: Replicates and seed of every bootstrap interval mrbench reports unless told otherwise.
BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0


def bootstrap_intervals(
    per_query: dict[str, np.ndarray], *, n_boot: int = BOOTSTRAP_REPLICATES, seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """``{key: [low, high]}`` (x100, 2 decimals) for metrics that are means over queries.

    ``per_query[key]`` is a ``[Q]`` vector whose mean is the metric. Every replicate resamples
    the Q queries with replacement (the same resamples for every key), and the interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the replicate means.
    """
    if not per_query:
        return {}
    keys = list(per_query)
    values = np.stack([np.asarray(per_query[k], dtype=float) for k in keys], axis=1)  # [Q, K]
    n_queries = len(values)
    check_allocation((n_boot, n_queries), 8, f"{n_boot} bootstrap replicates of {n_queries} queries", field="--n-boot")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_queries, np.full(n_queries, 1.0 / n_queries), size=n_boot)  # [B, Q]
    means = counts @ values / n_queries  # [B, K]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return {k: [round(100 * float(lo), 2), round(100 * float(hi), 2)] for k, lo, hi in zip(keys, low, high, strict=True)}
