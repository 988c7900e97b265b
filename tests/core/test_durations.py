"""The two duration grammars: user durations (`15m`) and ISO 8601 (`PT0.2S`) as Knative reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelstats.core import durations
from modelstats.core.errors import BadInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), ("2w", 1209600), ("250ms", 0.25)],
)
def test_user_durations(text: str, seconds: float) -> None:
    assert durations.parse(text) == timedelta(seconds=seconds)
    assert durations.parse(durations.format(timedelta(seconds=seconds))).total_seconds() == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT0.2S", 0.2),
        ("PT0.5S", 0.5),
        ("PT1S", 1),
        ("PT1M", 60),
        ("PT1M30S", 90),
        ("PT1H30M", 5400),
        ("PT2H", 7200),
        ("P1D", 86400),
        ("P1W", 604800),
        ("P1DT1S", 86401),
        # Years and months as Knative converts them (rickb777/date: 365.2425 days, a twelfth).
        ("P1M", 2_629_746),
        ("P1Y", 31_556_952),
        ("P1Y2M3W4DT5H6M7.5S", 31_556_952 + 2 * 2_629_746 + 3 * 604800 + 4 * 86400 + 18367.5),
    ],
)
def test_iso8601_durations(text: str, expected: float) -> None:
    assert durations.parse_iso8601(text).total_seconds() == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "0.5s",
        "0.2s",
        "200ms",
        "PT-1S",
        "1S",
        "PT1",
        "P1H",
        "pt1s",
        "PT1.S",
        5,
    ],
)
def test_bad_iso8601_durations(text: Any) -> None:
    with pytest.raises(BadInput) as caught:
        durations.parse_iso8601(text, "backoffDelay")
    assert caught.value.field == "backoffDelay"
