"""What an alert is about (its subject), and what the rules see in a report.

A subject is one rule on one series (model, version, labels, and the rule's metric), or, for an
absence rule per model, on a whole model; its fingerprint is the key of its alert state.

A threshold rule judges a report when the report carries the rule's metric, the rule's `match`
passes, and every metric of its `when` meets its condition: one observation per such rule.
Absence rules are judged on the schedule only (schedule.py), never on a report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from modelstats.alert.rules import ANY, AnyRule, Rule
from modelstats.core.reports import Report
from modelstats.store.alert_history import Alert

# The labels every alert has; a series' own labels are the others.
ALERT_LABELS = ("alertname", "model", "version", "metric", "severity")


def fingerprint(
    rule: str, model: str, version: str, labels: dict[str, str], metric: str | None = None
) -> str:
    """Stable identity of one rule on one series: 16 hex digits, as Alertmanager shows them.
    A threshold rule's metric is the rule's own, so only an absence rule passes `metric`."""
    identity: list[object] = [rule, model, version, labels]
    if metric is not None:
        identity.append(metric)
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Subject:
    """One rule on one series (or model): who an alert is about, and its labels."""

    rule: AnyRule
    model: str
    version: str  # ANY for an absence rule per model
    metric: str  # ANY for an absence rule on every metric
    series_labels: dict[str, str]
    fingerprint: str

    @classmethod
    def of(
        cls,
        rule: AnyRule,
        model: str,
        version: str = ANY,
        metric: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> Subject:
        labels = labels or {}
        # A threshold rule's fingerprint never held its metric (it is the rule's): unchanged.
        named = None if isinstance(rule, Rule) else metric
        identity = fingerprint(rule.name, model, version, labels, named)
        return cls(rule, model, version, metric or ANY, labels, identity)

    @classmethod
    def of_alert(cls, rule: AnyRule, alert: Alert) -> Subject:
        """The subject of an open alert, from its row."""
        own = {k: v for k, v in alert.labels.items() if k not in ALERT_LABELS}
        return cls(rule, alert.model, alert.version, alert.metric, own, alert.fingerprint)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.name, self.fingerprint)

    def alert_labels(self) -> dict[str, str]:
        """The series' labels plus alertname, model, version, metric, severity (these win);
        version and metric only where the subject has one."""
        labels = {**self.series_labels, "alertname": self.rule.name, "model": self.model}
        if self.version != ANY:
            labels["version"] = self.version
        if self.metric != ANY:
            labels["metric"] = self.metric
        labels["severity"] = self.rule.severity
        return labels

    def summary(self, value: float | None) -> str:
        return self.rule.render_summary(self.model, self.version, self.series_labels, value)


@dataclass(frozen=True)
class Observation:
    """One threshold rule applied to one report: the rule's metric in that report, at its time."""

    index: int  # position among the observations of its event
    subject: Subject
    report: Report

    @property
    def rule(self) -> Rule:
        assert isinstance(self.subject.rule, Rule)
        return self.subject.rule

    @property
    def key(self) -> tuple[str, str]:
        return self.subject.key

    @property
    def sample(self) -> float:
        return self.report.metrics[self.rule.metric]


def plan(reports: list[Report], rule_set: list[AnyRule]) -> list[Observation]:
    found: list[Observation] = []
    threshold_rules = [rule for rule in rule_set if isinstance(rule, Rule)]
    for report in reports:
        for rule in threshold_rules:
            if rule.judges(report.metrics) and rule.match.matches(
                report.model, report.version, report.labels
            ):
                subject = Subject.of(rule, report.model, report.version, rule.metric, report.labels)
                found.append(Observation(len(found), subject, report))
    return found
