"""Knative's retry rule, shared by the broker, replay and the reporter."""

from __future__ import annotations

import pytest

from modelstats.core import contract


@pytest.mark.parametrize("status", [None, 404, 408, 409, 429, 500, 501, 503, 599])
def test_retried(status: int | None) -> None:
    assert contract.is_retried(status)


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410, 413, 415, 422, 451])
def test_not_retried(status: int) -> None:
    assert not contract.is_retried(status)


@pytest.mark.parametrize(
    ("status", "success"), [(199, False), (200, True), (299, True), (300, False)]
)
def test_success_is_2xx(status: int, success: bool) -> None:
    assert contract.is_success(status) is success
