"""Durations as users write them (`90s`, `15m`, `24h`, `7d`, `2w`), parsed into timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

from modelstats.core.errors import BadInput

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
