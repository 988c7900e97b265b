"""Cron schedules as a PingSource reads them (robfig/cron with optional seconds).

Five fields (`minute hour day-of-month month day-of-week`) or six with seconds first; `*`, `?`,
numbers, names (JAN-DEC, SUN-SAT), ranges `a-b`, steps `*/n`, `a/n`, `a-b/n`, lists `a,b`;
descriptors `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly` (but not
`@every`, which the PingSource webhook rejects); an optional `CRON_TZ=Zone` or `TZ=Zone` prefix.
As in robfig/cron, when both day fields are restricted a day matches either of them; when one of
them is `*` or `?`, both must match.

The one cron grammar of the project: the local broker fires PingSources with it and the offline
checker (`modelstats check-manifests`) validates them with it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from modelstats.core.errors import BadInput

_MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS = {
    name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])
}

_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}

# (name, low, high, names)
_FIELDS = (
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)

_SEARCH_YEARS = 5
# A PingSource without a schedule (or with an empty one) fires every minute.
DEFAULT_SCHEDULE = "* * * * *"


@dataclass(frozen=True)
class Field:
    values: frozenset[int]
    star: bool  # written as `*` or `?` without a step: matters for the two day fields


@dataclass(frozen=True)
class Schedule:
    text: str
    seconds: Field
    minutes: Field
    hours: Field
    days_of_month: Field
    months: Field
    days_of_week: Field
    timezone: tzinfo

    def _day_matches(self, moment: datetime) -> bool:
        dom = moment.day in self.days_of_month.values
        dow = (moment.isoweekday() % 7) in self.days_of_week.values
        if self.days_of_month.star or self.days_of_week.star:
            return dom and dow
        return dom or dow

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires at this second (in the schedule's time zone)."""
        local = moment.astimezone(self.timezone) if moment.tzinfo else moment
        return (
            local.month in self.months.values
            and self._day_matches(local)
            and local.hour in self.hours.values
            and local.minute in self.minutes.values
            and local.second in self.seconds.values
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first firing time strictly after `moment` (an aware datetime)."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        local = moment.astimezone(self.timezone).replace(tzinfo=None, microsecond=0)
        wall = local + timedelta(seconds=1)
        limit = wall + timedelta(days=366 * _SEARCH_YEARS)
        while wall < limit:
            if wall.month not in self.months.values:
                wall = _first_of_next_month(wall)
                continue
            if not self._day_matches(wall):
                wall = (wall + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if wall.hour not in self.hours.values:
                wall = (wall + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if wall.minute not in self.minutes.values:
                wall = (wall + timedelta(minutes=1)).replace(second=0)
                continue
            if wall.second not in self.seconds.values:
                wall += timedelta(seconds=1)
                continue
            candidate = wall.replace(tzinfo=self.timezone)
            # A wall time skipped by a DST change does not exist: move on.
            exists = (
                candidate.astimezone(ZoneInfo("UTC")).astimezone(self.timezone).replace(tzinfo=None)
                == wall
            )
            if exists and candidate > moment:
                return candidate
            wall += timedelta(seconds=1)
        raise BadInput("schedule", f"{self.text!r} never fires in the next {_SEARCH_YEARS} years")


def _first_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1)


def _number(text: str, names: dict[str, int] | None, field: str, low: int, high: int) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise BadInput("schedule", f"{field}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise BadInput("schedule", f"{field}: {value} is outside {low}-{high}")
    return value


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int] | None) -> Field:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise BadInput("schedule", f"{field}: empty list item in {text!r}")
        range_text, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise BadInput("schedule", f"{field}: bad step in {part!r}")
            step = int(step_text)
        if range_text in ("*", "?"):
            start, end = low, high
            star = star or step == 1
        elif "-" in range_text:
            first, _, last = range_text.partition("-")
            start = _number(first, names, field, low, high)
            end = _number(last, names, field, low, high)
            if start > end:
                raise BadInput("schedule", f"{field}: range {range_text!r} ends before it starts")
        else:
            start = _number(range_text, names, field, low, high)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return Field(frozenset(values), star)


def _zone(name: object, field: str) -> tzinfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        if not isinstance(name, str):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        kind = "IANA time zone" if field == "timezone" else "time zone"
        raise BadInput(field, f"unknown {kind} {name!r}") from None


def parse(text: object, timezone: object = None) -> Schedule:
    """Parse a PingSource schedule; `timezone` is the PingSource's `spec.timezone` (IANA).
    BadInput names `schedule` or `timezone`."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput("schedule", "expected a cron expression such as '* * * * *'")
    spec = text.strip()
    zone = _zone(timezone, "timezone")
    if spec.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, spec = spec.partition(" ")
        zone = _zone(prefix.split("=", 1)[1], "schedule")
        spec = spec.strip()
    if spec.startswith("@"):
        if spec.startswith("@every"):
            raise BadInput(
                "schedule", "@every is rejected by the PingSource webhook; write a cron expression"
            )
        if spec not in _DESCRIPTORS:
            raise BadInput("schedule", f"unknown descriptor {spec!r}")
        spec = _DESCRIPTORS[spec]
    parts = spec.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise BadInput(
            "schedule", f"{text!r}: expected 5 fields (or 6 with seconds), got {len(parts)}"
        )
    fields = [
        _parse_field(part, name, low, high, names)
        for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    seconds, minutes, hours, days_of_month, months, days_of_week = fields
    return Schedule(text, seconds, minutes, hours, days_of_month, months, days_of_week, zone)
