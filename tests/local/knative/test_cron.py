"""The PingSource cron matcher: fields, steps, names, day semantics, seconds, time zones."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from modelstats.core.errors import BadInput
from modelstats.local.knative import cron


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def nexts(schedule: cron.Schedule, start: datetime, count: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_every_minute_is_the_default_shape() -> None:
    schedule = cron.parse("* * * * *")
    assert nexts(schedule, at(2024, 1, 1, 0, 0, 30), 2) == [
        at(2024, 1, 1, 0, 1),
        at(2024, 1, 1, 0, 2),
    ]


def test_next_is_strictly_after() -> None:
    schedule = cron.parse("*/15 * * * *")
    assert schedule.next_after(at(2024, 1, 1, 0, 15)) == at(2024, 1, 1, 0, 30)
    assert schedule.next_after(at(2024, 1, 1, 0, 14, 59)) == at(2024, 1, 1, 0, 15)


def test_ranges_lists_and_steps() -> None:
    schedule = cron.parse("0,30 9-17/4 * * *")
    start = at(2024, 1, 1, 0, 0)
    assert [m.hour * 100 + m.minute for m in nexts(schedule, start, 6)] == [
        900,
        930,
        1300,
        1330,
        1700,
        1730,
    ]


def test_start_slash_step_runs_to_the_end_of_the_range() -> None:
    schedule = cron.parse("50/5 * * * *")
    assert [m.minute for m in nexts(schedule, at(2024, 1, 1, 0, 0), 3)] == [50, 55, 50]


def test_month_and_day_names() -> None:
    schedule = cron.parse("0 12 * JAN,jul MON-WED")
    first = schedule.next_after(at(2024, 2, 1))
    assert first == at(2024, 7, 1, 12)  # 1 July 2024 is a Monday
    assert first.isoweekday() in (1, 2, 3)


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    # robfig/cron (like Vixie cron): both restricted -> either matches.
    schedule = cron.parse("0 0 13 * FRI")
    days = [m.day for m in nexts(schedule, at(2024, 9, 1), 4)]
    assert days == [6, 13, 20, 27]  # Fridays, and the 13th (a Friday in Sept 2024 too)
    dates = nexts(schedule, at(2024, 10, 1), 3)
    assert [d.day for d in dates] == [4, 11, 13]  # 13 Oct 2024 is a Sunday


def test_star_day_of_week_means_and() -> None:
    schedule = cron.parse("0 0 1 * *")
    assert nexts(schedule, at(2024, 1, 15), 2) == [at(2024, 2, 1), at(2024, 3, 1)]


def test_six_fields_have_seconds_first() -> None:
    schedule = cron.parse("*/20 * * * * *")
    assert nexts(schedule, at(2024, 1, 1, 0, 0, 1), 3) == [
        at(2024, 1, 1, 0, 0, 20),
        at(2024, 1, 1, 0, 0, 40),
        at(2024, 1, 1, 0, 1, 0),
    ]


def test_descriptors() -> None:
    assert cron.parse("@hourly").next_after(at(2024, 1, 1, 5, 1)) == at(2024, 1, 1, 6)
    assert cron.parse("@daily").next_after(at(2024, 1, 1, 5)) == at(2024, 1, 2)
    assert cron.parse("@weekly").next_after(at(2024, 1, 1)) == at(2024, 1, 7)  # a Sunday
    assert cron.parse("@yearly").next_after(at(2024, 3, 1)) == at(2025, 1, 1)


def test_timezone_field_and_prefix() -> None:
    paris = ZoneInfo("Europe/Paris")
    schedule = cron.parse("0 9 * * *", "Europe/Paris")
    moment = schedule.next_after(at(2024, 1, 1, 12))
    assert moment.astimezone(paris).hour == 9 and moment.astimezone(UTC).hour == 8
    prefixed = cron.parse("CRON_TZ=America/New_York 0 9 * * *")
    assert prefixed.next_after(at(2024, 1, 1, 12)).astimezone(UTC) == at(2024, 1, 1, 14)


def test_wall_times_skipped_by_dst_do_not_fire() -> None:
    schedule = cron.parse("30 2 * * *", "Europe/Paris")
    # 31 March 2024 02:30 does not exist in Paris.
    moment = schedule.next_after(at(2024, 3, 30, 12))
    assert moment.astimezone(ZoneInfo("Europe/Paris")).day == 1


def test_matches() -> None:
    schedule = cron.parse("0 */2 * * *")
    assert schedule.matches(at(2024, 1, 1, 4, 0))
    assert not schedule.matches(at(2024, 1, 1, 5, 0))
    assert not schedule.matches(at(2024, 1, 1, 4, 0, 1))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "* * * *",
        "* * * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 7",
        "5-1 * * * *",
        "*/0 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "@every 1m",
        "@sometimes",
    ],
)
def test_invalid_schedules(text: str) -> None:
    with pytest.raises(BadInput) as info:
        cron.parse(text)
    assert info.value.field == "schedule"


def test_unknown_timezone() -> None:
    with pytest.raises(BadInput) as info:
        cron.parse("* * * * *", "Mars/Olympus")
    assert info.value.field == "timezone"


def test_never_firing_schedule_is_an_error() -> None:
    with pytest.raises(BadInput):
        cron.parse("0 0 30 2 *").next_after(at(2024, 1, 1))
