"""Notifiers: where an alert notification goes, and how it looks there.

A notifier knows nothing of rules or state (as in Alertmanager, receivers are apart from rules):
it gets the alert as recorded with its transition (see `alerts.snapshot`) and either returns or
raises DeliveryFailed (with `retry_after` when the receiver said so). The outbox (`notify`)
decides when to call it again.

- `log`: the first version's line, `ALERT prediction_accuracy lower than 0.3, {'name': ...}`,
  followed by the rule, severity, sample time and how long after it the sample was evaluated
  (a replayed or backfilled sample alerts late: the line must say so);
- `slack` (SLACK_WEBHOOK_URL): an incoming-webhook message, `text` fallback plus blocks;
- `webhook` (ALERT_WEBHOOK_URL): the Alertmanager webhook payload, version "4".
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from modelstats.core import timestamps
from modelstats.core.errors import DeliveryFailed
from modelstats.core.settings import Settings, get_settings

log = logging.getLogger("modelstats.alerts")

# Alertmanager's "no end time yet".
ZERO_TIME = "0001-01-01T00:00:00Z"
RECEIVER = "modelstats"


class Notifier(Protocol):
    name: str

    def send(self, alert: dict[str, Any], client: httpx.Client) -> None:
        """Deliver one notification; raise DeliveryFailed if it did not arrive."""


def flat_report(alert: dict[str, Any]) -> dict[str, Any]:
    """The report in the first version's flat shape: name, version, then each metric."""
    report = alert["report"]
    flat: dict[str, Any] = {"name": report["model"], "version": report["version"]}
    flat.update(report["metrics"])
    if report.get("labels"):
        flat["labels"] = report["labels"]
    return flat


def lateness(alert: dict[str, Any]) -> float | None:
    """Seconds from the sample's time to its evaluation (None for alerts recorded without
    `evaluatedAt`)."""
    evaluated = alert.get("evaluatedAt")
    if not evaluated:
        return None
    sampled = timestamps.parse(alert["report"]["time"], "report.time")
    return (timestamps.parse(evaluated, "evaluatedAt") - sampled).total_seconds()


def spoken_seconds(seconds: float) -> str:
    """`0.4s`, `12s`, `52m3s`, `3h5m`, `2d4h`: a lateness a reader takes in at a glance."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    whole = round(seconds)
    for unit, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            rest = (whole % size) // small_size
            return f"{whole // size}{unit}" + (f"{rest}{small}" if rest else "")
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def log_line(alert: dict[str, Any]) -> str:
    """The first version's line, then which rule, how severe, and when the sample was."""
    word = "RESOLVED" if alert["status"] == "resolved" else "ALERT"
    first = f"{word} {alert['annotations']['summary']}, {flat_report(alert)!r}"
    details = [
        f"rule {alert['rule']}",
        f"severity {alert['labels']['severity']}",
        f"sample {alert['report']['time']}",
    ]
    late = lateness(alert)
    if late is not None:
        details.append(f"evaluated {spoken_seconds(late)} later")
    return f"{first} ({', '.join(details)})"


def log_fields(alert: dict[str, Any]) -> dict[str, Any]:
    labels = alert["labels"]
    return {
        "status": alert["status"],
        "rule": alert["rule"],
        "severity": labels["severity"],
        "model": labels["model"],
        "version": labels["version"],
        "metric": labels["metric"],
        "value": alert["value"],
        "sample_time": alert["report"]["time"],
        "evaluated_at": alert.get("evaluatedAt"),
        "lateness_seconds": lateness(alert),
        "fingerprint": alert["fingerprint"],
    }


class LogNotifier:
    name = "log"

    def send(self, alert: dict[str, Any], client: httpx.Client) -> None:
        log.warning("%s", log_line(alert), extra={"fields": log_fields(alert)})


def post_json(name: str, client: httpx.Client, url: str, payload: dict[str, Any]) -> None:
    """POST a JSON document; any non-2xx or transport error becomes DeliveryFailed."""
    try:
        response = client.post(url, json=payload)
    except httpx.HTTPError as error:
        # The URL may hold a secret (Slack): name the notifier, not the URL.
        raise DeliveryFailed(f"{name}: {type(error).__name__}: {error}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"{name}: HTTP {response.status_code} {response.text[:200]!r}",
            status=response.status_code,
            retry_after=timestamps.retry_after_seconds(response.headers.get("retry-after")),
        )


def alertmanager_alert(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": alert["status"],
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "startsAt": alert["startsAt"],
        "endsAt": alert["endsAt"] or ZERO_TIME,
        "generatorURL": alert["generatorURL"],
        "fingerprint": alert["fingerprint"],
    }


def alertmanager_payload(alert: dict[str, Any], external_url: str) -> dict[str, Any]:
    """One alert as an Alertmanager webhook message (version 4), grouped by alertname."""
    group = {"alertname": alert["labels"]["alertname"]}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + group["alertname"] + '"}',
        "truncatedAlerts": 0,
        "status": alert["status"],
        "receiver": RECEIVER,
        "groupLabels": group,
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": external_url,
        "alerts": [alertmanager_alert(alert)],
    }


class WebhookNotifier:
    name = "webhook"

    def __init__(self, url: str, external_url: str):
        self.url = url
        self.external_url = external_url

    def send(self, alert: dict[str, Any], client: httpx.Client) -> None:
        post_json(self.name, client, self.url, alertmanager_payload(alert, self.external_url))


def _mrkdwn(text: str) -> str:
    # Slack's three control characters in mrkdwn text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: dict[str, Any]) -> dict[str, Any]:
    labels = alert["labels"]
    status = "RESOLVED" if alert["status"] == "resolved" else "FIRING"
    summary = alert["annotations"]["summary"]
    series = f"{labels['model']} {labels['version']}"
    text = f"[{status}] {labels['alertname']}: {summary} ({series}, value {alert['value']})"
    own = {
        k: v
        for k, v in labels.items()
        if k not in ("alertname", "model", "version", "metric", "severity")
    }
    fields = [
        {"type": "mrkdwn", "text": f"*Model*\n{_mrkdwn(series)}"},
        {"type": "mrkdwn", "text": f"*Value*\n{alert['value']}"},
        {"type": "mrkdwn", "text": f"*Severity*\n{_mrkdwn(labels['severity'])}"},
        {"type": "mrkdwn", "text": f"*Since*\n{alert['startsAt']}"},
    ]
    context = f"<{alert['generatorURL']}|Stats for {_mrkdwn(labels['metric'])}>"
    if own:
        context += " · " + _mrkdwn(", ".join(f"{k}={v}" for k, v in sorted(own.items())))
    return {
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"[{status}] {labels['alertname']}"[:150]},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _mrkdwn(summary)},
                "fields": fields,
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


class SlackNotifier:
    name = "slack"

    def __init__(self, url: str):
        self.url = url

    def send(self, alert: dict[str, Any], client: httpx.Client) -> None:
        post_json(self.name, client, self.url, slack_message(alert))


def configured(settings: Settings | None = None) -> dict[str, Notifier]:
    """The notifiers this process sends to: the log always, Slack and webhook when set."""
    settings = settings or get_settings()
    found: dict[str, Notifier] = {"log": LogNotifier()}
    if settings.slack_webhook_url:
        found["slack"] = SlackNotifier(settings.slack_webhook_url)
    if settings.alert_webhook_url:
        found["webhook"] = WebhookNotifier(settings.alert_webhook_url, settings.stats_public_url)
    return found
