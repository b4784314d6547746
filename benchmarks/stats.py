"""Small statistics for benchmark figures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(q / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentiles(values: Sequence[float], scale: float = 1.0) -> dict[str, float | None]:
    """p50, p95, p99 and max of ``values`` (times ``scale``), rounded; ``None`` when empty."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(v * scale for v in values)
    return {
        "p50": round(percentile(ordered, 50), 1),
        "p95": round(percentile(ordered, 95), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
    }


def summarize(runs: Sequence[float]) -> dict[str, Any]:
    """Median and range of repeated runs."""
    if not runs:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {
        "median": round(statistics.median(runs), 1),
        "min": round(min(runs), 1),
        "max": round(max(runs), 1),
        "runs": [round(r, 1) for r in runs],
    }
