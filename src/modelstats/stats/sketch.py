"""A mergeable log-bucket sketch of values, for percentiles over long windows.

The buckets are those of `stats_sketch_key` (migrations/0003_stats.sql): with relative accuracy
ALPHA = 0.5%, a positive value v falls in the bucket (gamma^(i-1), gamma^i] where
gamma = (1 + ALPHA) / (1 - ALPHA), and the bucket's representative value 2 gamma^i / (gamma + 1)
is within ALPHA of every value in it (negative values mirror this, zero has its own bucket).
Sketches merge by adding counts per bucket, so daily sketches combine into any range of days.

A percentile is computed as PostgreSQL's percentile_cont does (linear interpolation between the
two order statistics around rank q * (n - 1)), with each order statistic replaced by its
bucket's representative value (the first and last ones are the exact minimum and maximum).
Each order statistic is therefore within 0.5% of the true one (relative to its magnitude), and
so is the interpolation when both lie on the same side of zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LN_GAMMA = math.log(GAMMA)
_OFFSET = 100_000


def key(value: float) -> int:
    """The bucket of a value (the same as the SQL function; used by tests and for clarity)."""
    if value > 0:
        return _OFFSET + math.ceil(math.log(value) / _LN_GAMMA)
    if value < 0:
        return -(_OFFSET + math.ceil(math.log(-value) / _LN_GAMMA))
    return 0


def representative(bucket: int) -> float:
    """The value that stands for every value in a bucket (within ALPHA of each of them)."""
    if bucket == 0:
        return 0.0
    index = abs(bucket) - _OFFSET
    magnitude = 2 * math.exp(index * _LN_GAMMA) / (GAMMA + 1)
    return magnitude if bucket > 0 else -magnitude


def merge(sketches: Iterable[Iterable[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Add several sketches (pairs of bucket and count) into one, in bucket order."""
    total: dict[int, int] = {}
    for sketch in sketches:
        for bucket, count in sketch:
            total[bucket] = total.get(bucket, 0) + count
    return sorted(total.items())


def percentiles(
    sketch: Sequence[tuple[int, int]], fractions: Sequence[float], lo: float, hi: float
) -> list[float]:
    """Continuous percentiles (as percentile_cont) of a non-empty sketch in bucket order."""
    n = sum(count for _, count in sketch)
    if n == 0:
        raise ValueError("empty sketch")

    def order_statistic(rank: int) -> float:
        if rank <= 0:
            return lo  # the smallest and largest values are known exactly
        if rank >= n - 1:
            return hi
        seen = 0
        for bucket, count in sketch:
            seen += count
            if rank < seen:
                return min(max(representative(bucket), lo), hi)
        return hi

    results = []
    for fraction in fractions:
        position = fraction * (n - 1)
        below = math.floor(position)
        value = order_statistic(below)
        if position > below:
            value += (position - below) * (order_statistic(below + 1) - value)
        results.append(value)
    return results
