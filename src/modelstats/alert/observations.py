"""What the rules see in a report: one observation per rule that applies to it.

A rule applies to a report when the report carries the rule's metric and the rule's `match`
passes. Each observation belongs to a series (model, version, labels), identified per rule by a
fingerprint: the key of its alert state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from modelstats.alert.rules import Rule
from modelstats.core.reports import Report


def fingerprint(rule: str, model: str, version: str, labels: dict[str, str]) -> str:
    """Stable identity of one rule on one series: 16 hex digits, as Alertmanager shows them."""
    text = json.dumps([rule, model, version, labels], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def alert_labels(rule: Rule, report: Report) -> dict[str, str]:
    """The series' labels plus alertname, model, version, metric, severity (these win)."""
    return {
        **report.labels,
        "alertname": rule.name,
        "model": report.model,
        "version": report.version,
        "metric": rule.metric,
        "severity": rule.severity,
    }


@dataclass(frozen=True)
class Observation:
    """One rule applied to one report: the rule's metric in that report, at its time."""

    index: int  # position among the observations of its event
    rule: Rule
    report: Report
    fingerprint: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.name, self.fingerprint)

    @property
    def sample(self) -> float:
        return self.report.metrics[self.rule.metric]


def plan(reports: list[Report], rule_set: list[Rule]) -> list[Observation]:
    found: list[Observation] = []
    for report in reports:
        for rule in rule_set:
            if rule.metric in report.metrics and rule.match.matches(
                report.model, report.version, report.labels
            ):
                fp = fingerprint(rule.name, report.model, report.version, report.labels)
                found.append(Observation(len(found), rule, report, fp))
    return found
