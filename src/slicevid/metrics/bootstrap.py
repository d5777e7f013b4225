"""Confidence intervals by the bootstrap: resample the scored scans with replacement, recompute every metric.

Percentile intervals (Efron's): the 2.5th and 97.5th percentiles of each metric over the
resamples. A resample on which a metric is undefined (an AUC on one class only) is left out of
that metric's interval; a metric undefined on nearly every resample gets ``(nan, nan)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError


def bootstrap_intervals(
    metrics: Callable[[np.ndarray], dict[str, float]],
    count: int,
    resamples: int,
    *,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """The ``level`` percentile interval of each metric ``metrics(indices)`` returns.

    Args:
        metrics: computes the metrics of the samples at ``indices`` (a resample, with repeats).
        count: how many samples were scored.
        resamples: how many bootstrap resamples to draw (1,000 is usual).
        level: the interval's coverage.
        seed: seed of the resampling (the same seed gives the same intervals).

    Raises:
        ConfigError: fewer than 2 samples or resamples, or a level outside (0, 1).
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 2:
        raise ConfigError("bootstrap", f"must be an integer number of resamples >= 2, got {resamples!r}")
    if count < 2:
        raise ConfigError("bootstrap", f"needs at least 2 scored samples, got {count}")
    if not 0 < level < 1:
        raise ConfigError("level", f"must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    drawn: dict[str, list[float]] = {}
    for _ in range(resamples):
        for name, value in metrics(rng.integers(0, count, count)).items():
            drawn.setdefault(name, []).append(np.nan if value is None else float(value))
    tail = 100 * (1 - level) / 2
    intervals = {}
    for name, values in drawn.items():
        finite = np.asarray(values)[np.isfinite(values)]
        if len(finite) < max(2, resamples // 10):
            intervals[name] = (np.nan, np.nan)
        else:
            low, high = np.percentile(finite, [tail, 100 - tail])
            intervals[name] = (float(low), float(high))
    return intervals
