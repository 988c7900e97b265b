"""The webhook notifier (ALERT_WEBHOOK_URL): each notification as an Alertmanager webhook
message (version "4"), one alert grouped by its alertname, so whatever reads Alertmanager's
webhooks reads these."""

from __future__ import annotations

from typing import Any

import httpx

from modelstats.alert.notification import Notification
from modelstats.alert.notifiers.http import post_json
from modelstats.core import timestamps

# Alertmanager's "no end time yet".
ZERO_TIME = "0001-01-01T00:00:00Z"
RECEIVER = "modelstats"


def alertmanager_alert(notification: Notification) -> dict[str, Any]:
    ends_at = notification.ends_at
    return {
        "status": notification.status,
        "labels": notification.labels,
        "annotations": notification.annotations,
        "startsAt": timestamps.format(notification.starts_at),
        "endsAt": timestamps.format(ends_at) if ends_at else ZERO_TIME,
        "generatorURL": notification.generator_url,
        "fingerprint": notification.fingerprint,
    }


def alertmanager_payload(notification: Notification, external_url: str) -> dict[str, Any]:
    group = {"alertname": notification.labels["alertname"]}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + group["alertname"] + '"}',
        "truncatedAlerts": 0,
        "status": notification.status,
        "receiver": RECEIVER,
        "groupLabels": group,
        "commonLabels": notification.labels,
        "commonAnnotations": notification.annotations,
        "externalURL": external_url,
        "alerts": [alertmanager_alert(notification)],
    }


class WebhookNotifier:
    name = "webhook"

    def __init__(self, url: str, external_url: str):
        self.url = url
        self.external_url = external_url

    def send(self, notification: Notification, client: httpx.Client) -> None:
        post_json(
            self.name, client, self.url, alertmanager_payload(notification, self.external_url)
        )
