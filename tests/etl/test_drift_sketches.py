"""Drift from sketches, for sides of more than 100,000 rows: within the stated bound of the
exact figures (scipy's) on the same values."""

from __future__ import annotations

import datasketches
import numpy as np
from scipy import stats
from scipy.spatial import distance

from modelstats.etl.inference import sketches

rng = np.random.default_rng(5)
ROWS = 200_000


def sketch_of(values: np.ndarray) -> sketches.ColumnSketch:
    return sketches.ColumnSketch.of(values)


def test_the_ks_statistic_is_within_the_sum_of_the_rank_errors() -> None:
    reference, window = rng.normal(0, 1, ROWS), rng.normal(0.05, 1.1, ROWS)
    left, right = sketch_of(reference).kll(), sketch_of(window).kll()
    bound = left.normalized_rank_error(False) + right.normalized_rank_error(False)
    exact = stats.ks_2samp(reference, window).statistic
    assert abs(sketches.ks_statistic(left, right) - exact) <= bound


def test_normed_wasserstein_and_jensen_shannon_are_close_to_the_exact_figures() -> None:
    reference, window = rng.gamma(2.0, 3.0, ROWS), rng.gamma(2.3, 3.0, ROWS)
    reference_sketch, window_sketch = sketch_of(reference), sketch_of(window)
    by_sketch = sketches.compare(reference_sketch, window_sketch, ROWS, "wasserstein")
    exact = stats.wasserstein_distance(reference, window) / np.std(reference)
    assert by_sketch is not None and abs(by_sketch.statistic - exact) <= 0.08 * exact
    js = sketches.compare(reference_sketch, window_sketch, ROWS, "jensenshannon")
    edges = np.histogram_bin_edges(np.concatenate([reference, window]), bins="sturges")
    p = np.histogram(reference, edges)[0] / ROWS
    q = np.histogram(window, edges)[0] / ROWS
    assert js is not None and abs(js.statistic - distance.jensenshannon(p, q, base=2)) < 0.01


def test_categories_from_frequent_items_equal_the_exact_counts() -> None:
    names = np.array(["NL", "DE", "FR", "BE"], dtype=object)
    reference = names[rng.choice(3, ROWS, p=[0.5, 0.3, 0.2])]
    window = names[rng.choice(4, ROWS, p=[0.4, 0.3, 0.2, 0.1])]
    verdict = sketches.compare(sketch_of(reference), sketch_of(window), ROWS)
    assert verdict is not None and verdict.method == "jensenshannon" and verdict.drifted
    p = np.array([(reference == n).sum() for n in names]) / ROWS
    q = np.array([(window == n).sum() for n in names]) / ROWS
    assert abs(verdict.statistic - distance.jensenshannon(p, q, base=2)) < 1e-12


def test_an_unchanged_column_does_not_drift_from_sketches() -> None:
    reference, window = rng.normal(3, 2, ROWS), rng.normal(3, 2, ROWS)
    verdict = sketches.compare(sketch_of(reference), sketch_of(window), ROWS)
    assert verdict is not None and verdict.method == "wasserstein" and not verdict.drifted
    assert isinstance(datasketches.kll_doubles_sketch(200), datasketches.kll_doubles_sketch)
