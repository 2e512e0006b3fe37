"""Benchmark step, arithmetic: percentiles and medians of repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: no interpolation, so a p95 is a latency that was actually seen."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(1, math.ceil(q / 100 * len(s))) - 1]


def median_of(runs: Sequence[Sequence[float]], q: float) -> float:
    """The median over repeated runs of each run's ``q``-th percentile."""
    return round(statistics.median(percentile(r, q) for r in runs), 2)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")
