"""Query strings of the stats API, parsed and checked: every problem names its parameter.

One parser for every route (/stats, /models, /drift, /accuracy, /overview, /dead-letters,
/alerts): times are RFC 3339, `now`, or a duration back from now (`15m`, `24h`, `7d`); the
default window is the last 24 hours; a `limit` is an integer from 1 to the route's maximum.
Unknown parameters are rejected, so a typo never silently widens a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelstats.core import durations, timestamps
from modelstats.core.errors import BadInput
from modelstats.core.labels import DEFAULT_HORIZON, MAX_HORIZON, MIN_HORIZON
from modelstats.core.settings import get_settings
from modelstats.store.alert_history import STATES as ALERT_STATES

DEFAULT_WINDOW = timedelta(hours=24)
MAX_RANGE = timedelta(days=366)
MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKET = timedelta(days=1)
MAX_POINTS = 10_000  # buckets per metric in one answer
# bucket=auto: the finest of these widths that keeps a chart to at most AUTO_POINTS buckets
# (a line a few hundred pixels wide shows no more); they divide a day, so buckets stay aligned.
AUTO_WIDTHS = tuple(
    timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
)
AUTO_POINTS = 300
MAX_DEAD_LETTERS = 1000
MAX_ALERTS = 1000
DEFAULT_LIMIT = 100
MODELS_AHEAD = timedelta(days=1)

_LIMIT = re.compile(r"[0-9]{1,7}")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_STATS_PARAMS = {"metric", "since", "until", "bucket", "format", "exact"}


@dataclass(frozen=True)
class StatsQuery:
    since: datetime
    until: datetime
    metrics: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()
    bucket: timedelta | None = None
    csv: bool = False
    exact: bool = False
    baseline: str | None = None


@dataclass(frozen=True)
class AccuracyQuery:
    since: datetime
    until: datetime
    horizon: timedelta = DEFAULT_HORIZON


@dataclass(frozen=True)
class DeadLetterQuery:
    limit: int = DEFAULT_LIMIT
    pending: bool = False
    since: datetime | None = None


@dataclass(frozen=True)
class AlertQuery:
    states: tuple[str, ...] | None = None
    model: str | None = None
    version: str | None = None
    since: datetime | None = None  # the alerts open at any time since then
    limit: int = DEFAULT_LIMIT


def _check_text(name: str, value: str) -> str:
    if "\x00" in value:
        raise BadInput(name, "must not contain NUL characters")
    return value


def _single(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in pairs if key == name]
    if len(values) > 1:
        raise BadInput(name, "given more than once")
    return values[0] if values else None


def _reject_unknown(pairs: list[tuple[str, str]], allowed: set[str], labels: bool) -> None:
    for key, value in pairs:
        _check_text(key, key)
        _check_text(key, value)
        if key in allowed or (labels and key.startswith("label.")):
            continue
        expected = sorted(allowed | ({"label.<key>"} if labels else set()))
        raise BadInput(key, f"unknown parameter; expected one of {', '.join(expected)}")


def parse_time(text: str, name: str, now: datetime) -> datetime:
    """An RFC 3339 time, `now`, or a duration back from now."""
    try:
        if text.strip() == "now":
            return now
        try:
            back = durations.parse(text, name)
        except BadInput:
            return timestamps.parse(text, name)
        return now - back
    except (BadInput, OverflowError, ValueError):
        raise BadInput(
            name,
            f"expected an RFC 3339 time (2026-01-31T12:00:00Z), now, or a duration back from"
            f" now (15m, 24h, 7d); got {text!r}",
        ) from None


def parse_limit(pairs: list[tuple[str, str]], maximum: int) -> int:
    """`limit`: an integer from 1 to `maximum`, DEFAULT_LIMIT when absent."""
    text = _single(pairs, "limit")
    if text is None:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(text.strip()) or not 1 <= int(text) <= maximum:
        raise BadInput("limit", f"expected an integer from 1 to {maximum}")
    return int(text)


def parse_bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadInput(name, f"expected true or false, got {text!r}")


def parse_window(
    pairs: list[tuple[str, str]], now: datetime, default: timedelta | None = DEFAULT_WINDOW
) -> tuple[datetime | None, datetime]:
    until_text = _single(pairs, "until")
    until = parse_time(until_text, "until", now) if until_text is not None else now
    since_text = _single(pairs, "since")
    if since_text is not None:
        since: datetime | None = parse_time(since_text, "since", now)
    else:
        try:
            since = until - default if default is not None else None
        except OverflowError:
            raise BadInput("until", "out of range") from None
    if since is not None:
        if since.year < 2 or until.year > 9998:
            raise BadInput("since" if since.year < 2 else "until", "out of range")
        if since >= until:
            raise BadInput("since", "must be before until")
        if until - since > MAX_RANGE:
            raise BadInput("since", f"the range is longer than the maximum of {MAX_RANGE.days}d")
    return since, until


def _metrics(pairs: list[tuple[str, str]]) -> tuple[str, ...] | None:
    names: list[str] = []
    for key, value in pairs:
        if key != "metric":
            continue
        for name in value.split(","):
            name = name.strip()
            if not name:
                raise BadInput("metric", "an empty metric name")
            if len(name) > get_settings().max_name_length:
                raise BadInput("metric", "name too long")
            if name not in names:
                names.append(name)
    if len(names) > get_settings().max_metrics:
        raise BadInput("metric", f"more than {get_settings().max_metrics} metrics")
    return tuple(names) if names else None


def _labels(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    labels = []
    for key, value in pairs:
        if not key.startswith("label."):
            continue
        name = key[len("label.") :]
        if not name:
            raise BadInput(key, "a label parameter is label.<key>=<value>")
        labels.append((name, value))
    if len(labels) > get_settings().max_labels:
        raise BadInput("label", f"more than {get_settings().max_labels} label filters")
    return tuple(labels)


def _bucket(pairs: list[tuple[str, str]], since: datetime, until: datetime) -> timedelta | None:
    text = _single(pairs, "bucket")
    if text is None:
        return None
    if text.strip() == "auto":
        return auto_bucket(since, until)
    bucket = durations.parse(text, "bucket")
    if not MIN_BUCKET <= bucket <= MAX_BUCKET or bucket.microseconds:
        raise BadInput("bucket", "must be auto, or whole seconds from 1m to 1d")
    if (until - since) / bucket > MAX_POINTS:
        raise BadInput("bucket", f"more than {MAX_POINTS} buckets in the range: use a larger one")
    return bucket


def auto_bucket(since: datetime, until: datetime) -> timedelta:
    """The bucket width bucket=auto picks for the window [since, until)."""
    for width in AUTO_WIDTHS:
        if (until - since) / width <= AUTO_POINTS:
            return width
    return AUTO_WIDTHS[-1]


def parse_stats(
    items: Iterable[tuple[str, str]], now: datetime, baseline: bool = False
) -> StatsQuery:
    """The query string of /stats/{model}/{version} (and of /stats/{model} with baseline)."""
    pairs = list(items)
    _reject_unknown(pairs, _STATS_PARAMS | ({"baseline"} if baseline else set()), labels=True)
    since, until = parse_window(pairs, now)
    assert since is not None
    fmt = _single(pairs, "format")
    if fmt not in (None, "json", "csv"):
        raise BadInput("format", f"expected json or csv, got {fmt!r}")
    bucket = _bucket(pairs, since, until)
    if fmt == "csv" and bucket is None:
        raise BadInput("format", "format=csv returns the series: add bucket (e.g. bucket=1h)")
    exact = _single(pairs, "exact")
    base = _single(pairs, "baseline")
    if base is not None and not base:
        raise BadInput("baseline", "an empty version")
    return StatsQuery(
        since=since,
        until=until,
        metrics=_metrics(pairs),
        labels=_labels(pairs),
        bucket=bucket,
        csv=fmt == "csv",
        exact=parse_bool(exact, "exact") if exact is not None else False,
        baseline=base,
    )


def parse_models(
    items: Iterable[tuple[str, str]], now: datetime
) -> tuple[datetime | None, datetime]:
    """The window of /models: all time unless since/until narrow it.

    The default `until` is a day ahead, as ingest accepts sample times up to a day ahead.
    """
    pairs = list(items)
    _reject_unknown(pairs, {"since", "until"}, labels=False)
    if _single(pairs, "until") is None:
        pairs.append(("until", timestamps.format(now + MODELS_AHEAD)))
    return parse_window(pairs, now, default=None)


def parse_range(items: Iterable[tuple[str, str]], now: datetime) -> tuple[datetime, datetime]:
    """`since` and `until` alone (/drift, /overview): the last 24 hours by default."""
    pairs = list(items)
    _reject_unknown(pairs, {"since", "until"}, labels=False)
    since, until = parse_window(pairs, now)
    assert since is not None
    return since, until


def parse_accuracy(items: Iterable[tuple[str, str]], now: datetime) -> AccuracyQuery:
    """/accuracy: `since`, `until`, and `horizon`, how long the model's labels may take."""
    pairs = list(items)
    _reject_unknown(pairs, {"since", "until", "horizon"}, labels=False)
    since, until = parse_window(pairs, now)
    assert since is not None
    text = _single(pairs, "horizon")
    if text is None:
        return AccuracyQuery(since, until)
    horizon = durations.parse(text, "horizon")
    if not MIN_HORIZON <= horizon <= MAX_HORIZON:
        bounds = f"{durations.format(MIN_HORIZON)} to {durations.format(MAX_HORIZON)}"
        raise BadInput("horizon", f"must be from {bounds}")
    return AccuracyQuery(since, until, horizon)


def parse_dead_letters(items: Iterable[tuple[str, str]], now: datetime) -> DeadLetterQuery:
    pairs = list(items)
    _reject_unknown(pairs, {"limit", "pending", "since"}, labels=False)
    pending = _single(pairs, "pending")
    since = _single(pairs, "since")
    return DeadLetterQuery(
        limit=parse_limit(pairs, MAX_DEAD_LETTERS),
        pending=parse_bool(pending, "pending") if pending is not None else False,
        since=parse_time(since, "since", now) if since is not None else None,
    )


def parse_alerts(items: Iterable[tuple[str, str]], now: datetime) -> AlertQuery:
    """The query string of /alerts: `state` (comma-separated), `model`, `version`, `since`,
    `limit`; each at most once and never empty."""
    pairs = list(items)
    _reject_unknown(pairs, {"state", "model", "version", "since", "limit"}, labels=False)
    for key, value in pairs:
        if not value.strip():
            raise BadInput(key, "must not be empty")
    given = {key: _single(pairs, key) for key in ("state", "model", "version", "since")}
    states = None
    if given["state"] is not None:
        states = tuple(sorted({state.strip() for state in given["state"].split(",")}))
        unknown = [state for state in states if state not in ALERT_STATES]
        if unknown:
            raise BadInput("state", f"unknown state {unknown[0]!r}; use {', '.join(ALERT_STATES)}")
    since = given["since"]
    return AlertQuery(
        states=states,
        model=given["model"],
        version=given["version"],
        since=parse_time(since, "since", now) if since is not None else None,
        limit=parse_limit(pairs, MAX_ALERTS),
    )


def parse_metrics(items: Iterable[tuple[str, str]]) -> None:
    """GET /metrics takes no parameters (a scrape job's `params` would be a mistake)."""
    for key, _ in items:
        _check_text(key, key)
        raise BadInput(key, "unknown parameter; /metrics takes none")


def check_name(name: str, what: str) -> str:
    """A model or version from the path."""
    _check_text(what, name)
    if not name or len(name) > get_settings().max_name_length:
        raise BadInput(what, "empty or too long")
    return name
