"""RFC 3339 timestamps: strict parsing (an offset is required) and canonical formatting; the
Retry-After header's two forms read as a wait."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

from modelstats.core.errors import BadInput

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse(text: object, field: str) -> datetime:
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        raise BadInput(
            field, f"expected an RFC 3339 time such as 2026-01-31T12:00:00Z, got {text!r}"
        )
    normalized = match.string
    if "z" in normalized or "t" in normalized:
        normalized = normalized.replace("z", "Z").replace("t", "T")
    fraction = match.group(1)
    if fraction and len(fraction) > 7:
        # Python keeps microseconds; finer digits are truncated, not rejected.
        normalized = normalized[: match.start(1)] + fraction[:7] + normalized[match.end(1) :]
    try:
        return datetime.fromisoformat(normalized).astimezone(UTC)
    except ValueError as error:
        raise BadInput(field, f"not a valid time: {error}") from None


def format(moment: datetime) -> str:
    """UTC, `Z` suffix, microseconds only when present."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110), never
    negative; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
