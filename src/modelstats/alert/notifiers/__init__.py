"""Notifiers: where a notification goes, and how it looks there.

A notifier knows nothing of rules or state (as in Alertmanager, receivers are apart from rules):
it gets a `Notification` and either returns or raises DeliveryFailed (with `retry_after` when the
receiver said so), its message naming the notifier and never its URL (Slack's holds a secret).
The outbox decides when to call it again. Every notifier passes the same contract
(tests/alert/test_notifiers.py), one module each:

- `log` (log.py): the first version's line, `ALERT prediction_accuracy lower than 0.3, {...}`,
  then the rule, severity, sample time and how late the sample was evaluated;
- `slack` (slack.py, SLACK_WEBHOOK_URL): an incoming-webhook message, `text` fallback plus blocks;
- `webhook` (webhook.py, ALERT_WEBHOOK_URL): the Alertmanager webhook payload, version "4".

The reply CloudEvent is not a notifier: it is the function's answer to the event that made the
notifications (one per event, listing them all), given once and never retried by the outbox.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from modelstats.alert.notification import Notification
from modelstats.alert.notifiers.log import LogNotifier
from modelstats.alert.notifiers.slack import SlackNotifier
from modelstats.alert.notifiers.webhook import WebhookNotifier
from modelstats.core.settings import Settings, get_settings


class Notifier(Protocol):
    name: str

    def send(self, notification: Notification, client: httpx.Client) -> None:
        """Deliver one notification; raise DeliveryFailed if it did not arrive."""


def configured(settings: Settings | None = None) -> dict[str, Notifier]:
    """The notifiers this process sends to: the log always, Slack and webhook when set."""
    settings = settings or get_settings()
    found: dict[str, Notifier] = {"log": LogNotifier()}
    if settings.slack_webhook_url:
        found["slack"] = SlackNotifier(settings.slack_webhook_url)
    if settings.alert_webhook_url:
        found["webhook"] = WebhookNotifier(settings.alert_webhook_url, settings.stats_public_url)
    return found
