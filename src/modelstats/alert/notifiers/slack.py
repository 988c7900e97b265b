"""The Slack notifier (SLACK_WEBHOOK_URL): an incoming-webhook message, a `text` fallback for
clients that show no blocks, then a header, the facts as fields, and a link to the stats."""

from __future__ import annotations

from typing import Any

import httpx

from modelstats.alert.notification import Notification
from modelstats.alert.notifiers.http import post_json
from modelstats.alert.observations import ALERT_LABELS
from modelstats.core import timestamps

# Slack cuts a plain_text header at 150 characters.
_HEADER_CHARS = 150


def _mrkdwn(text: str) -> str:
    # Slack's three control characters in mrkdwn text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notification: Notification) -> dict[str, Any]:
    labels = notification.labels
    status = "RESOLVED" if notification.status == "resolved" else "FIRING"
    summary, series, value = notification.summary, notification.series, notification.value
    text = f"[{status}] {labels['alertname']}: {summary} ({series}, value {value})"
    own = {k: v for k, v in labels.items() if k not in ALERT_LABELS}
    fields = [
        {"type": "mrkdwn", "text": f"*Model*\n{_mrkdwn(series)}"},
        {"type": "mrkdwn", "text": f"*Value*\n{value}"},
        {"type": "mrkdwn", "text": f"*Severity*\n{_mrkdwn(notification.severity)}"},
        {"type": "mrkdwn", "text": f"*Since*\n{timestamps.format(notification.starts_at)}"},
    ]
    shown = labels.get("metric") or labels["model"]
    context = f"<{notification.generator_url}|Stats for {_mrkdwn(shown)}>"
    if own:
        context += " · " + _mrkdwn(", ".join(f"{k}={v}" for k, v in sorted(own.items())))
    header = f"[{status}] {labels['alertname']}"[:_HEADER_CHARS]
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
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

    def send(self, notification: Notification, client: httpx.Client) -> None:
        post_json(self.name, client, self.url, slack_message(notification))
