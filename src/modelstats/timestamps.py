"""RFC 3339 timestamps: strict parsing (an offset is required) and canonical formatting."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import BadInput

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse(text: object, field: str) -> datetime:
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise BadInput(
            field, f"expected an RFC 3339 time such as 2026-01-31T12:00:00Z, got {text!r}"
        )
    normalized = text.replace("z", "Z").replace("t", "T")
    fraction = re.search(r"\.(\d+)", normalized)
    if fraction and len(fraction[1]) > 6:
        # Python keeps microseconds; finer digits are truncated, not rejected.
        normalized = normalized.replace(fraction[0], "." + fraction[1][:6])
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
