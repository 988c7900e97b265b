"""Drift of one column of a window against its reference: which test, its figure, the verdict.

`auto` picks as Evidently documents it, by the column's kind and the reference's size:

- numbers with more than 5 distinct values (in the reference): `ks` while the reference holds
  at most 1,000 rows, else `wasserstein`;
- text, or numbers with 5 distinct values or fewer: `z` for two categories, else `chisquare`,
  while the reference holds at most 1,000 rows; else `jensenshannon`;

and each method is judged against its default threshold: tests (`ks`, `chisquare`, `z`) drift
when the p-value is below 0.05, distances (`wasserstein`, `jensenshannon`, `psi`,
`hellinger`) when the distance is at least 0.1. The figures are scipy's on the same values:

- `ks`: `scipy.stats.ks_2samp(reference, window).pvalue`;
- `wasserstein`: `scipy.stats.wasserstein_distance(reference, window)` divided by the
  reference's standard deviation (`numpy.std`, at least 0.001): "normed";
- `jensenshannon`: `scipy.spatial.distance.jensenshannon(p, q, base=2)` of the two shares
  per category (numbers: per bin of `numpy.histogram_bin_edges(both, "sturges")`);
- `chisquare`: `scipy.stats.chi2_contingency` of the 2 x k table of counts per category;
- `z`: the two-proportion z-test (pooled), two-sided p-value;
- `psi`: the population stability index: numbers binned at the reference's deciles (etl/psi.py,
  the jsonl job's), categories by their shares, an empty share taken as 0.0001;
- `hellinger`: the Hellinger distance of the shares (bins as for jensenshannon).

Missing values are left out of both sides. A column with no present value on either side
gives no verdict. Beyond 100,000 rows on either side, the same figures come from the kept
sketches (sketches.py), within the error bound given there.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial import distance

from modelstats.core.drift_methods import TESTS, THRESHOLDS
from modelstats.etl import psi as psi_module
from modelstats.etl.inference.frames import Column, is_text

SMALL_REFERENCE = 1_000
FEW_VALUES = 5
PSI_EMPTY_SHARE = 1e-4


@dataclass(frozen=True)
class Verdict:
    method: str
    statistic: float  # a p-value for tests, a distance for distances
    drifted: bool


def present(values: Column) -> Column:
    if is_text(values):
        return values[np.array([v is not None for v in values], dtype=bool)]
    return values[~np.isnan(values)]


def is_categorical(reference: Column) -> bool:
    """Text, or numbers with few distinct values, are compared as categories."""
    return is_text(reference) or len(np.unique(reference)) <= FEW_VALUES


def auto_method(reference: Column) -> str:
    """Evidently's choice for a column, from its present reference values."""
    small = len(reference) <= SMALL_REFERENCE
    if not is_categorical(reference):
        return "ks" if small else "wasserstein"
    if not small:
        return "jensenshannon"
    categories = len(Counter(reference.tolist()))
    return "z" if categories <= 2 else "chisquare"


def judge(method: str, statistic: float, threshold: float | None = None) -> Verdict:
    limit = THRESHOLDS[method] if threshold is None else threshold
    drifted = statistic < limit if method in TESTS else statistic >= limit
    return Verdict(method, statistic, bool(drifted))


def _counts(reference: Column, window: Column) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category (the union of both sides), in one order."""
    left, right = Counter(reference.tolist()), Counter(window.tolist())
    categories = sorted(left.keys() | right.keys(), key=repr)
    return (
        np.array([left[c] for c in categories], dtype=float),
        np.array([right[c] for c in categories], dtype=float),
    )


def _binned(reference: Column, window: Column) -> tuple[np.ndarray, np.ndarray]:
    """Shares per category, or per Sturges bin of both sides for many-valued numbers."""
    if is_categorical(reference):
        left, right = _counts(reference, window)
    else:
        edges = np.histogram_bin_edges(np.concatenate([reference, window]), bins="sturges")
        left = np.histogram(reference, edges)[0].astype(float)
        right = np.histogram(window, edges)[0].astype(float)
    return left / left.sum(), right / right.sum()


def z_test(reference: Column, window: Column) -> float:
    """Two-sided p-value of the pooled two-proportion z-test on the first category."""
    left, right = _counts(reference, window)
    n1, n2 = left.sum(), right.sum()
    p1, p2 = left[0] / n1, right[0] / n2
    pooled = (left[0] + right[0]) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0  # one category on both sides: nothing moved
    z = (p1 - p2) / spread
    return float(2 * stats.norm.sf(abs(z)))


def _psi(reference: Column, window: Column) -> float:
    if not is_categorical(reference):
        return psi_module.psi(psi_module.ReferenceBins.of(reference.tolist()), window.tolist())
    left, right = _counts(reference, window)
    p = np.maximum(left / left.sum(), PSI_EMPTY_SHARE)
    q = np.maximum(right / right.sum(), PSI_EMPTY_SHARE)
    return float(np.sum((q - p) * np.log(q / p)))


def statistic(method: str, reference: Column, window: Column) -> float:
    """The figure of `method` for two samples of present values (both non-empty)."""
    if method == "ks":
        return float(stats.ks_2samp(reference, window).pvalue)
    if method == "wasserstein":
        spread = max(float(np.std(reference)), 0.001)
        return float(stats.wasserstein_distance(reference, window)) / spread
    if method == "chisquare":
        left, right = _counts(reference, window)
        if len(left) < 2:
            return 1.0  # one category on both sides
        return float(stats.chi2_contingency(np.vstack([left, right])).pvalue)
    if method == "z":
        return z_test(reference, window)
    if method == "psi":
        return _psi(reference, window)
    p, q = _binned(reference, window)
    if method == "jensenshannon":
        return float(distance.jensenshannon(p, q, base=2))
    if method == "hellinger":
        return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / math.sqrt(2))
    raise ValueError(f"unknown drift method {method!r}")


def compare(
    reference: Column, window: Column, method: str = "auto", threshold: float | None = None
) -> Verdict | None:
    """The verdict on one column (None when either side has no present value)."""
    left, right = present(reference), present(window)
    if not len(left) or not len(right):
        return None
    if is_text(left) != is_text(right):
        left, right = left.astype(str).astype(object), right.astype(str).astype(object)
    chosen = auto_method(left) if method == "auto" else method
    if chosen in ("ks", "wasserstein") and is_text(left):
        chosen = "chisquare" if len(left) <= SMALL_REFERENCE else "jensenshannon"
    if not is_text(left):
        left, right = left.astype(np.float64), right.astype(np.float64)
    return judge(chosen, statistic(chosen, left, right), threshold)
