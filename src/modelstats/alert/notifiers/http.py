"""What the notifiers that POST have in common: one JSON request, its failures as DeliveryFailed."""

from __future__ import annotations

from typing import Any

import httpx

from modelstats.core import timestamps
from modelstats.core.errors import DeliveryFailed

# How much of a refusal's body goes into the error (and the outbox's last_error).
ERROR_BODY_CHARS = 200


def post_json(name: str, client: httpx.Client, url: str, payload: dict[str, Any]) -> None:
    """POST a JSON document; any non-2xx or transport error becomes DeliveryFailed."""
    try:
        response = client.post(url, json=payload)
    except httpx.HTTPError as error:
        # The URL may hold a secret (Slack's does): the error names the notifier, never the
        # URL, should a transport message ever quote it.
        reason = str(error).replace(url, "<url>")
        raise DeliveryFailed(f"{name}: {type(error).__name__}: {reason}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"{name}: HTTP {response.status_code} {response.text[:ERROR_BODY_CHARS]!r}",
            status=response.status_code,
            retry_after=timestamps.retry_after_seconds(response.headers.get("retry-after")),
        )
