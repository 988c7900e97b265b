"""Drift per column: Evidently's choice of method, and figures equal to scipy's on the same
values, on data with drift planted where it is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from modelstats.etl import psi
from modelstats.etl.inference import drift

rng = np.random.default_rng(11)


def text(values) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def test_auto_follows_evidently_by_kind_and_reference_size() -> None:
    many = rng.normal(size=1_000)
    assert drift.auto_method(many) == "ks"
    assert drift.auto_method(rng.normal(size=1_001)) == "wasserstein"
    assert drift.auto_method(rng.integers(0, 5, 800).astype(float)) == "chisquare"
    assert drift.auto_method(rng.integers(0, 2, 800).astype(float)) == "z"
    assert drift.auto_method(text(["a", "b", "c"] * 100)) == "chisquare"
    assert drift.auto_method(text(["a", "b", "c"] * 1000)) == "jensenshannon"


def test_a_shift_of_half_a_deviation_drifts_and_an_unchanged_column_does_not() -> None:
    reference = rng.normal(10, 2, 800)
    shifted = rng.normal(11, 2, 600)
    same = rng.normal(10, 2, 600)
    moved = drift.compare(reference, shifted)
    assert moved is not None and moved.method == "ks" and moved.drifted
    assert moved.statistic == stats.ks_2samp(reference, shifted).pvalue
    still = drift.compare(reference, same)
    assert still is not None and not still.drifted
    assert still.statistic == stats.ks_2samp(reference, same).pvalue


def test_large_references_use_normed_wasserstein() -> None:
    reference = rng.normal(0, 3, 5_000)
    window = rng.normal(1.5, 3, 2_000)
    verdict = drift.compare(reference, window)
    assert verdict is not None and verdict.method == "wasserstein" and verdict.drifted
    expected = stats.wasserstein_distance(reference, window) / np.std(reference)
    assert math.isclose(verdict.statistic, expected, rel_tol=1e-12)


def test_a_new_category_drifts_by_chi_square_and_jensen_shannon() -> None:
    reference = text(rng.choice(["NL", "DE", "FR"], 900, p=[0.5, 0.3, 0.2]))
    window = text(rng.choice(["NL", "DE", "FR", "BE"], 700, p=[0.35, 0.25, 0.15, 0.25]))
    verdict = drift.compare(reference, window)
    assert verdict is not None and verdict.method == "chisquare" and verdict.drifted
    categories = ["BE", "DE", "FR", "NL"]
    table = [
        [list(reference).count(c) for c in categories],
        [list(window).count(c) for c in categories],
    ]
    assert math.isclose(verdict.statistic, stats.chi2_contingency(table).pvalue, rel_tol=1e-12)
    js = drift.compare(reference, window, method="jensenshannon")
    p = np.array(table[0]) / sum(table[0])
    q = np.array(table[1]) / sum(table[1])
    assert js is not None and js.drifted
    assert math.isclose(js.statistic, distance.jensenshannon(p, q, base=2), rel_tol=1e-12)


def test_binary_columns_use_the_z_test() -> None:
    reference = rng.integers(0, 2, 600).astype(float)
    window = (rng.random(500) < 0.7).astype(float)
    verdict = drift.compare(reference, window)
    assert verdict is not None and verdict.method == "z" and verdict.drifted
    n1, n2 = len(reference), len(window)
    x1, x2 = (reference == 0).sum(), (window == 0).sum()
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert math.isclose(verdict.statistic, 2 * stats.norm.sf(abs(z)), rel_tol=1e-12)


def test_named_methods_psi_and_hellinger() -> None:
    reference = rng.normal(0, 1, 2_000)
    window = rng.normal(0.8, 1, 2_000)
    by_psi = drift.compare(reference, window, method="psi")
    assert by_psi is not None and by_psi.drifted
    assert by_psi.statistic == psi.psi(psi.ReferenceBins.of(reference.tolist()), window.tolist())
    by_hellinger = drift.compare(reference, window, method="hellinger")
    edges = np.histogram_bin_edges(np.concatenate([reference, window]), bins="sturges")
    p = np.histogram(reference, edges)[0] / len(reference)
    q = np.histogram(window, edges)[0] / len(window)
    expected = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / np.sqrt(2)
    assert by_hellinger is not None and math.isclose(by_hellinger.statistic, expected)


def test_missing_values_are_left_out_and_thresholds_can_be_named() -> None:
    reference = np.array([1.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    window = np.array([np.nan, np.nan])
    assert drift.compare(reference, window) is None
    strict = drift.compare(rng.normal(0, 1, 300), rng.normal(0.1, 1, 300), threshold=0.9)
    assert strict is not None and strict.drifted == (strict.statistic < 0.9)


@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "jensenshannon", "hellinger"])
def test_a_sample_against_itself_does_not_drift(method: str) -> None:
    sample = rng.normal(5, 2, 1_500)
    verdict = drift.compare(sample, sample.copy(), method=method)
    assert verdict is not None and not verdict.drifted
