"""Building CloudEvent HTTP requests in tests (binary and structured mode)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from modelstats.core import contract

REPORTED = contract.METRIC_REPORTED


def binary_headers(
    type: str, source: str = "/tests", id: str | None = None, **extensions: str
) -> dict[str, str]:
    """The ce-* headers of a binary-mode event (a fresh UUID id unless given)."""
    return {
        "ce-specversion": "1.0",
        "ce-type": type,
        "ce-source": source,
        "ce-id": id or str(uuid.uuid4()),
        **{f"ce-{k}": v for k, v in extensions.items()},
    }


def json_body(data: Any) -> tuple[dict[str, str], bytes]:
    """Content type and body for JSON data; nothing at all for None."""
    if data is None:
        return {}, b""
    return {"content-type": "application/json"}, json.dumps(data).encode()


def binary(
    data: Any, id: str = "e-1", source: str = "/tests", type: str = REPORTED, **extra: str
) -> tuple[dict[str, str], bytes]:
    headers = binary_headers(type, source, id, **extra)
    headers["content-type"] = "application/json"
    return headers, json.dumps(data).encode()


def structured(
    data: Any, id: str = "e-1", source: str = "/tests", type: str = REPORTED, **extra: Any
) -> tuple[dict[str, str], bytes]:
    envelope = {"specversion": "1.0", "id": id, "source": source, "type": type, "data": data}
    envelope["datacontenttype"] = "application/json"
    envelope.update(extra)
    return {"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode()
