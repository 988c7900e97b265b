"""Building CloudEvent HTTP requests in tests (binary and structured mode)."""

from __future__ import annotations

import json
from typing import Any

REPORTED = "modelstats.metric.reported"


def binary(
    data: Any, id: str = "e-1", source: str = "/tests", type: str = REPORTED, **extra: str
) -> tuple[dict[str, str], bytes]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": id,
        "ce-source": source,
        "ce-type": type,
        "content-type": "application/json",
    }
    headers.update({f"ce-{k}": v for k, v in extra.items()})
    return headers, json.dumps(data).encode()


def structured(
    data: Any, id: str = "e-1", source: str = "/tests", type: str = REPORTED, **extra: Any
) -> tuple[dict[str, str], bytes]:
    envelope = {"specversion": "1.0", "id": id, "source": source, "type": type, "data": data}
    envelope["datacontenttype"] = "application/json"
    envelope.update(extra)
    return {"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode()
