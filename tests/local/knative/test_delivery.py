"""Knative's delivery rules: the retry backoff."""

from __future__ import annotations

from modelstats.local.knative import delivery


def test_knative_backoff_formula() -> None:
    exponential = delivery.RetryPolicy(4, delivery.EXPONENTIAL, 0.5)
    assert exponential.schedule() == [0.5, 1.0, 2.0, 4.0]
    assert exponential.attempts == 5
    linear = delivery.RetryPolicy(4, delivery.LINEAR, 0.5)
    assert linear.schedule() == [0.0, 0.5, 1.0, 1.5]
    assert delivery.RetryPolicy(3).schedule() == [0, 0, 0]
    assert delivery.RetryPolicy(2, delivery.EXPONENTIAL, None).schedule() == [0, 0]
