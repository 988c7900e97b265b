"""The log-bucket sketch: same buckets in SQL and Python, and the documented error bound."""

from __future__ import annotations

import random

import psycopg
import pytest

from modelstats.stats import sketch
from tests.stats.samples import percentile_cont

FRACTIONS = (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999)


def _distributions() -> dict[str, list[float]]:
    rng = random.Random(11)
    return {
        "uniform": [rng.random() for _ in range(20_000)],
        "lognormal": [rng.lognormvariate(2.5, 1.2) for _ in range(20_000)],
        "exponential": [rng.expovariate(10) for _ in range(20_000)],
        "negative": [-rng.lognormvariate(0, 0.5) for _ in range(5_000)],
        "accuracy": [rng.betavariate(8, 2) for _ in range(5_000)],
        "tiny and huge": [rng.choice((1e-9, 1e-6, 1.0, 1e6, 1e12)) for _ in range(1_000)],
        "few": [3.0, 1.0, 2.0],
    }


def _sketch(values: list[float]) -> list[tuple[int, int]]:
    return sketch.merge([[(sketch.key(v), 1) for v in values]])


@pytest.mark.parametrize("name", list(_distributions()))
def test_percentiles_within_half_a_percent(name: str) -> None:
    values = _distributions()[name]
    counts = _sketch(values)
    estimates = sketch.percentiles(counts, FRACTIONS, min(values), max(values))
    for fraction, estimate in zip(FRACTIONS, estimates, strict=True):
        exact = percentile_cont(values, fraction)
        assert abs(estimate - exact) <= sketch.ALPHA * abs(exact) * (1 + 1e-9), fraction


def test_merging_sketches_equals_one_sketch() -> None:
    values = _distributions()["lognormal"]
    halves = sketch.merge([_sketch(values[:7000]), _sketch(values[7000:])])
    assert halves == _sketch(values)


def test_edges_are_exact_and_error_is_bounded_not_zero() -> None:
    values = _distributions()["uniform"]
    p0, p100, p50 = sketch.percentiles(_sketch(values), (0.0, 1.0, 0.5), min(values), max(values))
    assert p0 == min(values) and p100 == max(values)
    assert p50 != percentile_cont(values, 0.5)  # an estimate, not a copy of the exact answer


def test_empty_sketch_is_refused() -> None:
    with pytest.raises(ValueError):
        sketch.percentiles([], (0.5,), 0.0, 1.0)


def test_sql_buckets_match_python(database_url: str) -> None:
    rng = random.Random(5)
    values = [0.0, 1.0, -1.0, 5e-324, -5e-324, 1.7e308, -1.7e308, 1e-9, 0.995, 1.005]
    values += [rng.lognormvariate(0, 3) * rng.choice((1, -1)) for _ in range(2000)]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT v, stats_sketch_key(v) FROM unnest(%s::float8[]) AS v", (values,)
        ).fetchall()
    mismatches = [(v, k) for v, k in rows if k != sketch.key(v)]
    # ln() may round differently at an exact bucket edge: never more than one bucket apart.
    assert all(abs(k - sketch.key(v)) <= 1 for v, k in mismatches)
    assert len(mismatches) <= 2
    keys = [k for _, k in sorted(rows)]
    assert keys == sorted(keys)  # bucket order is value order
