"""The Retry-After reader shared by the alert outbox and the reporter."""

from __future__ import annotations

from datetime import UTC, datetime

from modelstats.core import timestamps


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert timestamps.retry_after_seconds("120") == 120
    assert timestamps.retry_after_seconds(" 7 ") == 7
    assert timestamps.retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30
    # A date already past means no wait, not a negative one.
    assert timestamps.retry_after_seconds("Wed, 31 Dec 2025 00:00:00 GMT", now=now) == 0
    assert timestamps.retry_after_seconds("soon") is None
    assert timestamps.retry_after_seconds("-5") is None
    assert timestamps.retry_after_seconds("") is None
    assert timestamps.retry_after_seconds(None) is None
