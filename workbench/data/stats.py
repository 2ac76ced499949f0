"""Token-length statistics of a set of records: the numbers behind `workbench data`."""

from __future__ import annotations

import math


def percentile(sorted_values: list[int], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def histogram(values: list[int], bins: int = 10) -> list[dict]:
    """Equal-width integer bins `[lo, hi]` (both inclusive) covering min..max, with counts."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = max(1, math.ceil((high - low + 1) / bins))
    count = math.ceil((high - low + 1) / width)
    out = [{"lo": low + i * width, "hi": min(high, low + (i + 1) * width - 1), "count": 0} for i in range(count)]
    for v in values:
        out[(v - low) // width]["count"] += 1
    return out


def token_stats(lengths: list[int], max_length: int, bins: int = 10) -> dict:
    """min, median, p95, max, histogram and how many records `max_length` truncates."""
    ordered = sorted(lengths)
    return {
        "max_length": max_length,
        "records": len(ordered),
        "min": ordered[0] if ordered else 0,
        "median": round(percentile(ordered, 0.5), 1),
        "p95": round(percentile(ordered, 0.95), 1),
        "max": ordered[-1] if ordered else 0,
        "histogram": histogram(ordered, bins),
        "truncated": sum(1 for n in ordered if n > max_length),
    }


def text_histogram(bins: list[dict], width: int = 40) -> list[str]:
    """One line per bin: its range, a bar scaled to the largest bin, and the count."""
    top = max((b["count"] for b in bins), default=0) or 1
    labels = [f"{b['lo']}-{b['hi']}" for b in bins]
    span = max((len(label) for label in labels), default=0)
    return [f"{label:>{span}} {'#' * math.ceil(width * b['count'] / top):<{width}} {b['count']}"
            for label, b in zip(labels, bins)]
