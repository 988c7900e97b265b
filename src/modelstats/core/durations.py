"""Durations, parsed into timedelta: two grammars, each written once.

- as users write them in queries, rules and jobs: `90s`, `15m`, `24h`, `7d`, `2w` (`parse`);
- ISO 8601, as Knative's delivery fields hold them (`backoffDelay: PT0.2S`, `timeout: PT30S`):
  `parse_iso8601`, used by the local broker's manifest loader and by the offline checker alike.
"""

from __future__ import annotations

import re
from datetime import timedelta

from modelstats.core.errors import BadInput

# P[nY][nM][nW][nD][T[nH][nM][nS]], at least one part, a T only before a time part.
_NUMBER = r"\d+(?:\.\d+)?"
_ISO8601 = re.compile(
    rf"^P(?=\d|T\d)(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?"
    rf"(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?=\d)(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?"
    rf"(?:(?P<seconds>{_NUMBER})S)?)?$"
)
# Knative reads these fields with rickb777/date's period.Parse, which takes years and months
# and turns them into time with the mean Gregorian year (365.2425 days) and a twelfth of it.
_ISO8601_SECONDS = {
    "years": 31_556_952,
    "months": 2_629_746,
    "weeks": 604_800,
    "days": 86_400,
    "hours": 3_600,
    "minutes": 60,
    "seconds": 1,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse(text: str, field: str = "duration") -> timedelta:
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise BadInput(field, f"expected a duration such as 30s, 15m, 24h or 7d, got {text!r}")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds > 100 * 365 * 86400:
        raise BadInput(field, f"duration {text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def format(delta: timedelta) -> str:
    """The shortest exact spelling of a duration in the units above."""
    ms = round(delta.total_seconds() * 1000)
    for unit, seconds in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if ms and ms % (seconds * 1000) == 0:
            return f"{ms // (seconds * 1000)}{unit}"
    return f"{ms}ms"


def parse_iso8601(text: object, field: str = "duration") -> timedelta:
    """`PT0.2S` -> 0.2 s, `PT1M30S` -> 90 s, `P1D` -> one day, `P1M` -> 30.436875 days."""
    match = _ISO8601.match(text) if isinstance(text, str) else None
    if match is None:
        raise BadInput(field, f"expected an ISO 8601 duration such as PT0.5S or P1D, got {text!r}")
    seconds = sum(float(v) * _ISO8601_SECONDS[k] for k, v in match.groupdict().items() if v)
    if seconds > 100 * 365 * 86400:
        raise BadInput(field, f"duration {text!r} is longer than 100 years")
    return timedelta(seconds=seconds)
