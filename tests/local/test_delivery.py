"""Knative's delivery rules: the retry backoff and which statuses are retried."""

from __future__ import annotations

import pytest

from modelstats.local import delivery


def test_knative_backoff_formula() -> None:
    exponential = delivery.RetryPolicy(4, delivery.EXPONENTIAL, 0.5)
    assert exponential.schedule() == [0.5, 1.0, 2.0, 4.0]
    assert exponential.attempts == 5
    linear = delivery.RetryPolicy(4, delivery.LINEAR, 0.5)
    assert linear.schedule() == [0.0, 0.5, 1.0, 1.5]
    assert delivery.RetryPolicy(3).schedule() == [0, 0, 0]
    assert delivery.RetryPolicy(2, delivery.EXPONENTIAL, None).schedule() == [0, 0]


@pytest.mark.parametrize("status", [None, 404, 408, 409, 429, 500, 501, 503, 599])
def test_retried(status: int | None) -> None:
    assert delivery.is_retried(status)


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410, 413, 415, 422, 451])
def test_not_retried(status: int) -> None:
    assert not delivery.is_retried(status)
