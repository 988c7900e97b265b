"""The notification: one alert as every notifier and the reply see it.

It is built once, where a notifying change is recorded (transitions.py), from the alert's row
as the database returns it (`store.alert_history.Alert`, the class GET /alerts reads) and the
change; it is stored as JSON with the transition (`alert_transitions.alert`), where the outbox
reads it back for each notifier, and the reply lists it. A notification made by a sample carries
its report; one made by the schedule (a repeat, a stale or absent series) has none.

The JSON keeps the names it has always had on the wire (the reply's `alerts` and the stored
rows), Alertmanager's among them: `startsAt`, `endsAt`, `generatorURL`; `notification` holds the
kind. Rows written before `evaluatedAt` existed are read as having no lateness to tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import quote

from modelstats.alert.rules import ANY, AnyRule
from modelstats.alert.state import Change
from modelstats.core import durations, timestamps
from modelstats.core.reports import Report
from modelstats.core.settings import get_settings
from modelstats.store.alert_history import Alert

Status = Literal["firing", "resolved"]
Kind = Literal["firing", "repeat", "resolved"]


def generator_url(model: str, version: str, metric: str) -> str:
    """Where a reader sees the figures behind the alert: the stats of its series (of every
    version side by side for an alert on a whole model)."""
    url = f"{get_settings().stats_public_url}/stats/{quote(model, safe='')}"
    if version != ANY:
        url += f"/{quote(version, safe='')}"
    return url + (f"?metric={quote(metric)}" if metric != ANY else "")


@dataclass(frozen=True)
class Notification:
    alert_id: int
    status: Status
    kind: Kind
    rule: str
    fingerprint: str
    # alertname, model, version, metric, severity, and the series' own labels (an alert on a
    # whole model has no version or metric).
    labels: dict[str, str]
    annotations: dict[str, str]  # summary, value; description when the schedule ended it
    value: float
    op: str
    threshold: float
    window: str | None
    aggregate: str | None
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    # The wall clock at evaluation, against `report.time` (the sample's): how late it came.
    evaluated_at: datetime | None
    report: Report | None

    @classmethod
    def of(
        cls,
        alert: Alert,
        change: Change,
        rule: AnyRule,
        report: Report | None,
        evaluated_at: datetime,
    ) -> Notification:
        """The notification of a notifying `change` (firing, repeat, resolved), once `alert`
        is the row that change wrote."""
        if not change.notifies:
            raise ValueError(f"a {change.kind} change notifies nobody")
        resolved = change.kind == "resolved"
        return cls(
            alert_id=alert.id,
            status="resolved" if resolved else "firing",
            kind=cast(Kind, change.kind),
            rule=alert.rule,
            fingerprint=alert.fingerprint,
            labels=alert.labels,
            annotations=alert.annotations,
            value=change.value,
            op=rule.op,
            threshold=rule.threshold,
            window=durations.format(rule.window) if rule.window else None,
            aggregate=rule.aggregation,
            starts_at=alert.fired_at or change.at,
            ends_at=change.at if resolved else None,
            generator_url=generator_url(alert.model, alert.version, alert.metric),
            evaluated_at=evaluated_at,
            report=report,
        )

    @property
    def summary(self) -> str:
        return self.annotations["summary"]

    @property
    def severity(self) -> str:
        return self.labels["severity"]

    @property
    def series(self) -> str:
        """`fraud-detector v3` (or `fraud-detector`): what the alert is about, as a reader
        names it."""
        return " ".join(filter(None, (self.labels["model"], self.labels.get("version"))))

    @property
    def lateness(self) -> float | None:
        """Seconds from the sample's time to its evaluation (None when not known)."""
        if self.evaluated_at is None or self.report is None:
            return None
        return (self.evaluated_at - self.report.time).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.alert_id,
            "status": self.status,
            "notification": self.kind,
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "annotations": self.annotations,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "window": self.window,
            "aggregate": self.aggregate,
            "startsAt": timestamps.format(self.starts_at),
            "endsAt": timestamps.format(self.ends_at) if self.ends_at else None,
            "generatorURL": self.generator_url,
            "evaluatedAt": timestamps.format(self.evaluated_at) if self.evaluated_at else None,
            "report": self.report.to_json() if self.report else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notification:
        """A notification as `to_json` (or an earlier version) stored it."""
        report = data.get("report")
        ends_at, evaluated_at = data.get("endsAt"), data.get("evaluatedAt")
        return cls(
            alert_id=int(data["id"]),
            status=data["status"],
            kind=data["notification"],
            rule=data["rule"],
            fingerprint=data["fingerprint"],
            labels=dict(data["labels"]),
            annotations=dict(data["annotations"]),
            value=float(data["value"]),
            op=data["op"],
            threshold=float(data["threshold"]),
            window=data.get("window"),
            aggregate=data.get("aggregate"),
            starts_at=timestamps.parse(data["startsAt"], "startsAt"),
            ends_at=timestamps.parse(ends_at, "endsAt") if ends_at else None,
            generator_url=data["generatorURL"],
            evaluated_at=timestamps.parse(evaluated_at, "evaluatedAt") if evaluated_at else None,
            report=Report(
                model=report["model"],
                version=report["version"],
                time=timestamps.parse(report["time"], "report.time"),
                metrics=dict(report["metrics"]),
                labels=dict(report.get("labels") or {}),
            )
            if report
            else None,
        )
