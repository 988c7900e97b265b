"""The answers every function gives: JSON, errors (through the one status table), replies."""

from __future__ import annotations

import json
import logging
from typing import Any

from cloudevents.http import CloudEvent
from starlette.responses import Response

from modelstats.core import cloudevents
from modelstats.core.errors import ModelstatsError, http_status

log = logging.getLogger("modelstats")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Compact JSON; NaN and infinities are refused (they are not JSON)."""
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(text, status_code=status, headers=headers, media_type="application/json")


def error_response(error: ModelstatsError) -> Response:
    """The error's JSON with its status from `errors.HTTP_STATUS` and the headers it asks for."""
    status = http_status(error)
    if status >= 500:
        log.warning("%s: %s", type(error).__name__, error)
    return json_response(error.to_json(), status, error.headers())


def event_response(event: CloudEvent | None) -> Response:
    """200 with a binary-mode CloudEvent, or an empty 204 when there is nothing to say."""
    if event is None:
        return Response(status_code=204)
    headers, body = cloudevents.binary_response(event)
    return Response(body, status_code=200, headers=headers)
