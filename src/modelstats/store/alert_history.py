"""Alert history, as GET /alerts on the stats function reads it: alerts and their transitions.

The rows the alert function writes (`alerts`, `alert_transitions`); the stats function reads
them through here and never imports the alert function's code. The query string is parsed by
`stats.params.parse_alerts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import class_row

from modelstats.core import timestamps
from modelstats.store import db, queries

# The states an alert row can be in (`alerts.state`).
STATES = ("pending", "firing", "resolved", "inactive")


def _time(moment: datetime | None) -> str | None:
    return timestamps.format(moment) if moment is not None else None


@dataclass(frozen=True)
class Transition:
    """One row of `alert_transitions`."""

    alert_id: int
    kind: str
    from_state: str
    to_state: str
    at: datetime
    value: float | None
    recorded_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "from": self.from_state,
            "to": self.to_state,
            "at": _time(self.at),
            "value": self.value,
            "recorded_at": _time(self.recorded_at),
        }


@dataclass
class Alert:
    """One row of `alerts`, with its transitions in the order they happened."""

    id: int
    rule: str
    fingerprint: str
    state: str
    model: str
    version: str
    metric: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    active_at: datetime | None
    fired_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime | None
    transitions: list[Transition] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "state": self.state,
            "model": self.model,
            "version": self.version,
            "metric": self.metric,
            "labels": self.labels,
            "annotations": self.annotations,
            "value": self.value,
            "active_at": _time(self.active_at),
            "fired_at": _time(self.fired_at),
            "ended_at": _time(self.ended_at),
            "updated_at": _time(self.updated_at),
            "transitions": [transition.to_json() for transition in self.transitions],
        }


def list_alerts(
    states: tuple[str, ...] | None = None,
    model: str | None = None,
    version: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Newest first; `since` keeps the alerts open at any time since then."""
    filters = {
        "states": list(states) if states else None,
        "model": model,
        "version": version,
        "since": since,
        "limit": limit,
    }
    with db.connection() as conn:
        alerts = (
            conn.cursor(row_factory=class_row(Alert))
            .execute(queries.get("alerts", "list_alerts"), filters)
            .fetchall()
        )
        by_id = {alert.id: alert for alert in alerts}
        if by_id:
            transitions = conn.cursor(row_factory=class_row(Transition)).execute(
                queries.get("alerts", "list_transitions"), {"alert_ids": list(by_id)}
            )
            for transition in transitions:
                by_id[transition.alert_id].transitions.append(transition)
    return alerts
