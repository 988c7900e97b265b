"""Drift as the population stability index (PSI) of scores against a reference sample.

Bins: the nine reference deciles (linear interpolation between order statistics, the usual
"type 7" quantile: position h = (n - 1) * p, value x[floor h] + (h - floor h) * (x[floor h + 1] -
x[floor h])) cut the line into ten bins. The outer bins are open, (-inf, d1] and (d9, +inf), so
scores outside the reference range still land somewhere; inner bins are (d_k, d_k+1].

    PSI = sum over bins of (a - r) * ln(a / r)

where r and a are the shares of the reference and of the actual scores in the bin. An empty bin
would make the logarithm infinite, so a share of 0 is replaced by EPSILON = 1e-4 (on either
side) before the sum. Equal deciles (many tied scores) give empty bins on both sides: their
term is (e - e) * ln(1) = 0.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

EPSILON = 1e-4
BINS = 10


def quantile(ordered: Sequence[float], p: float) -> float:
    """The p-quantile (0 <= p <= 1) of a sorted, non-empty sequence, by linear interpolation."""
    if not ordered:
        raise ValueError("quantile of an empty sample")
    position = (len(ordered) - 1) * p
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def decile_edges(scores: Sequence[float]) -> list[float]:
    """The nine inner edges d1..d9 of the reference sample."""
    ordered = sorted(scores)
    return [quantile(ordered, k / BINS) for k in range(1, BINS)]


def bin_counts(edges: Sequence[float], scores: Sequence[float]) -> list[int]:
    """How many scores fall in each of the len(edges) + 1 bins (right-closed, open outer)."""
    counts = [0] * (len(edges) + 1)
    for score in scores:
        counts[bisect_left(edges, score)] += 1
    return counts


def shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    if total == 0:
        raise ValueError("shares of an empty sample")
    return [count / total for count in counts]


@dataclass(frozen=True)
class ReferenceBins:
    """What PSI needs of a reference sample: its bin edges and the share in each bin."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    size: int

    @classmethod
    def of(cls, scores: Sequence[float]) -> ReferenceBins:
        edges = decile_edges(scores)
        return cls(tuple(edges), tuple(shares(bin_counts(edges, scores))), len(scores))


def psi(reference: ReferenceBins, scores: Sequence[float]) -> float:
    """The population stability index of `scores` against `reference` (0 = same shape)."""
    actual = shares(bin_counts(reference.edges, scores))
    total = 0.0
    for r, a in zip(reference.shares, actual, strict=True):
        r = r or EPSILON
        a = a or EPSILON
        total += (a - r) * math.log(a / r)
    return total
