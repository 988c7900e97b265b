"""Grafana's expansion of a PostgreSQL data source query, for running a dashboard's SQL in tests.

What Grafana does, in order (read from its sources: the SQL data sources' `interpolateVariable`
in the frontend, `sqleng`'s global substitutions and the PostgreSQL macro engine,
pkg/tsdb/grafana-postgresql-datasource/macros.go):

1. template variables, in the browser: a single-valued variable becomes its value with `'`
   doubled and no quotes around it (so queries write `'$model'`); a multi-valued or
   include-all one becomes its values as quoted literals joined by commas (`IN ($metric)`);
2. `$__interval_ms` and `$__interval` (`1m`, `1h`, ...), on the server;
3. macros `$__name(args)`: `$__timeFilter(c)` is `c BETWEEN '<from>' AND '<to>'` (RFC 3339,
   UTC), `$__timeFrom()` / `$__timeTo()` the quoted bounds, `$__timeGroup(c, 1h)`
   `floor(extract(epoch from c)/3600)*3600`, and `$__timeGroupAlias` the same `AS "time"`
   (also `$__timeGroup` directly followed by a comma, for dashboards older than 5.3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def variables(sql: str, single: Mapping[str, str], multi: Mapping[str, Sequence[str]]) -> str:
    """Step 1: `single` variables raw (quotes doubled), `multi` ones as a quoted list."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in single:
            return single[name].replace("'", "''")
        if name in multi:
            return ",".join(quote(v) for v in multi[name])
        return match.group(0)  # Grafana's own ($__interval, macros): later steps

    return _VARIABLE.sub(value, sql)


def interval_text(seconds: int) -> str:
    """Grafana's interval text (gtime.FormatInterval) for whole units."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip().strip("'"))
    if match is None:
        raise ValueError(f"not an interval: {text!r}")
    return int(match[1]) * _UNITS[match[2]]


def _moment(moment: datetime) -> str:
    """Go's RFC3339Nano in UTC: fractional zeros dropped, `Z`."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _number(seconds: float) -> str:
    """Go's %v of a float64 of whole seconds: `3600`, not `3600.0`."""
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


def macros(sql: str, start: datetime, end: datetime, interval_seconds: int) -> str:
    """Steps 2 and 3."""
    sql = sql.replace("$__interval_ms", str(interval_seconds * 1000))
    sql = sql.replace("$__interval", interval_text(interval_seconds))

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        args = [arg.strip() for arg in match.group(2).split(",")]
        if name == "__timeGroup" and sql[match.end() : match.end() + 1] == ",":
            name = "__timeGroupAlias"
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{_moment(start)}' AND '{_moment(end)}'"
        if name == "__timeFrom":
            return f"'{_moment(start)}'"
        if name == "__timeTo":
            return f"'{_moment(end)}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            size = _number(_seconds(args[1]))
            group = f"floor(extract(epoch from {args[0]})/{size})*{size}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        raise ValueError(f"macro ${name} is not expanded here: add it")

    return _MACRO.sub(expand, sql)


def expand(
    sql: str,
    start: datetime,
    end: datetime,
    interval_seconds: int,
    single: Mapping[str, str],
    multi: Mapping[str, Sequence[str]],
) -> str:
    """A dashboard query as PostgreSQL receives it from Grafana."""
    expanded = macros(variables(sql, single, multi), start, end, interval_seconds)
    leftover = re.findall(r"\$\{?\w+", expanded)
    if leftover:
        raise ValueError(f"not expanded: {leftover} in {expanded}")
    return expanded
