"""Alert history for GET /alerts (on the stats function): current and past alerts, filtered.

Parameters: `state` (pending, firing, resolved, inactive; several comma-separated), `model`,
`version`, `since` (RFC 3339, `now`, or a duration back from now such as 24h: the alerts open at
any time since then), `limit` (1-1000, default 100). Newest first, each with its transitions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelstats.core import durations, timestamps
from modelstats.core.errors import BadInput
from modelstats.store import db, queries

STATES = ("pending", "firing", "resolved", "inactive")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMETERS = ("state", "model", "version", "since", "limit")
_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$")


@dataclass(frozen=True)
class AlertQuery:
    states: tuple[str, ...] | None = None
    model: str | None = None
    version: str | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT


def _since(text: str, now: datetime) -> datetime:
    try:
        if text.strip() == "now":
            return now
        if _DURATION.match(text):
            return now - durations.parse(text, "since")
        return timestamps.parse(text, "since")
    except (BadInput, OverflowError):
        raise BadInput(
            "since",
            "expected an RFC 3339 time (2026-01-31T12:00:00Z), now, or a duration back from now"
            f" (15m, 24h, 7d); got {text!r}",
        ) from None


def parse_query(items: Iterable[tuple[str, str]], now: datetime) -> AlertQuery:
    """Query parameters -> AlertQuery; BadInput names the parameter at fault."""
    given: dict[str, str] = {}
    for key, value in items:
        if key not in PARAMETERS:
            raise BadInput(key, f"unknown parameter; expected one of {', '.join(PARAMETERS)}")
        if key in given:
            raise BadInput(key, "given more than once")
        if "\x00" in value or not value.strip():
            raise BadInput(key, "must be a non-empty value without NUL characters")
        given[key] = value
    states = None
    if "state" in given:
        states = tuple(sorted({s.strip() for s in given["state"].split(",")}))
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise BadInput("state", f"unknown state {unknown[0]!r}; use {', '.join(STATES)}")
    limit = DEFAULT_LIMIT
    if "limit" in given:
        text = given["limit"].strip()
        if not text.isdigit() or not 1 <= int(text[:7]) <= MAX_LIMIT:
            raise BadInput("limit", f"expected an integer from 1 to {MAX_LIMIT}")
        limit = int(text)
    return AlertQuery(
        states=states,
        model=given.get("model"),
        version=given.get("version"),
        since=_since(given["since"], now) if "since" in given else None,
        limit=limit,
    )


def _time(moment: datetime | None) -> str | None:
    return timestamps.format(moment) if moment is not None else None


def list_alerts(query: AlertQuery) -> list[dict[str, Any]]:
    params = {
        "states": list(query.states) if query.states else None,
        "model": query.model,
        "version": query.version,
        "since": query.since,
        "limit": query.limit,
    }
    with db.connection() as conn:
        rows = conn.execute(queries.get("alerts", "list_alerts"), params).fetchall()
        ids = [row[0] for row in rows]
        transitions: dict[int, list[dict[str, Any]]] = {alert_id: [] for alert_id in ids}
        if ids:
            for alert_id, kind, before, after, at, value, recorded_at in conn.execute(
                queries.get("alerts", "list_transitions"), (ids,)
            ):
                transitions[alert_id].append(
                    {
                        "kind": kind,
                        "from": before,
                        "to": after,
                        "at": _time(at),
                        "value": value,
                        "recorded_at": _time(recorded_at),
                    }
                )
    return [
        {
            "id": alert_id,
            "rule": rule,
            "fingerprint": fingerprint,
            "state": state,
            "model": model,
            "version": version,
            "metric": metric,
            "labels": labels,
            "annotations": annotations,
            "value": value,
            "active_at": _time(active_at),
            "fired_at": _time(fired_at),
            "ended_at": _time(ended_at),
            "updated_at": _time(updated_at),
            "transitions": transitions[alert_id],
        }
        for (
            alert_id,
            rule,
            fingerprint,
            state,
            model,
            version,
            metric,
            labels,
            annotations,
            value,
            active_at,
            fired_at,
            ended_at,
            updated_at,
        ) in rows
    ]
