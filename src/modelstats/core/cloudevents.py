"""CloudEvents in and out: strict parsing of binary and structured mode, and replies.

Incoming events are parsed here rather than by `cloudevents.http.from_http`, which invents a
`time` when the event has none, lets invalid JSON data through as bytes and does not check
attribute values: a redelivered event must normalise to the same reply, and every error must
name its field. Replies are built with the cloudevents 1.x SDK that functions-framework pins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from modelstats.core import timestamps
from modelstats.core.errors import BadInput, PayloadTooLarge

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
TOO_DEEP = "JSON nested too deeply"
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_CORE = {"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"}


@dataclass(frozen=True)
class Event:
    id: str
    source: str
    type: str
    time: datetime | None = None
    datacontenttype: str | None = None
    subject: str | None = None
    dataschema: str | None = None
    data: Any = None
    extensions: dict[str, str] = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"specversion": "1.0", "id": self.id, "source": self.source}
        attrs["type"] = self.type
        for name in ("datacontenttype", "subject", "dataschema"):
            if getattr(self, name) is not None:
                attrs[name] = getattr(self, name)
        if self.time is not None:
            attrs["time"] = timestamps.format(self.time)
        attrs.update(self.extensions)
        return attrs


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # CloudEvents: data without a content type is JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _decode_data(body: bytes, content_type: str | None, strict: bool = True) -> Any:
    if not body:
        return None
    if not strict or not _is_json(content_type):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput("data", f"not valid JSON: {error}") from None
    except RecursionError:
        # Python's parser gives up around a thousand levels; no report nests that deep.
        if not strict:
            return body
        raise BadInput("data", TOO_DEEP) from None


def _build(attrs: Mapping[str, Any], data: Any) -> Event:
    if attrs.get("specversion") != "1.0":
        raise BadInput("specversion", f"must be '1.0', got {attrs.get('specversion')!r}")
    for name in ("id", "source", "type"):
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise BadInput(name, "required CloudEvents attribute is missing or empty")
    for name, value in attrs.items():
        # PostgreSQL text and jsonb cannot hold NUL: refuse it here rather than fail on storing.
        if isinstance(value, str) and "\x00" in value and name not in ("data", "data_base64"):
            raise BadInput(name, "contains a NUL character")
    extensions: dict[str, str] = {}
    for name, value in attrs.items():
        if name in _CORE or name in ("data", "data_base64"):
            continue
        if not _EXTENSION_NAME.match(name):
            raise BadInput(name, "extension names are 1-20 lowercase letters or digits")
        extensions[name] = value if isinstance(value, str) else json.dumps(value)
    time = attrs.get("time")
    return Event(
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        time=timestamps.parse(time, "time") if time is not None else None,
        datacontenttype=attrs.get("datacontenttype"),
        subject=attrs.get("subject"),
        dataschema=attrs.get("dataschema"),
        data=data,
        extensions=extensions,
    )


def parse(
    headers: Mapping[str, str],
    body: bytes,
    max_bytes: int | None = None,
    strict_data: bool = True,
) -> Event:
    """Parse an HTTP request into an Event (binary or structured mode); BadInput on error.

    With `strict_data` off, data is not interpreted: it stays the bytes that arrived (the
    dead-letter sink keeps whatever it is given, byte for byte, for listing and replay).
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadTooLarge("body", f"larger than {max_bytes} bytes")
    lowered = {key.lower(): value for key, value in headers.items()}
    content_type = lowered.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == BATCH:
        raise BadInput(
            "content-type", "batched mode is not supported: send many reports in one event"
        )
    if "ce-specversion" in lowered:
        attrs: dict[str, Any] = {
            key[3:]: value for key, value in lowered.items() if key.startswith("ce-")
        }
        if content_type is not None:
            attrs["datacontenttype"] = content_type
        return _build(attrs, _decode_data(body, content_type, strict_data))
    if media == STRUCTURED:
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadInput("body", f"structured CloudEvent is not valid JSON: {error}") from None
        except RecursionError:
            # Attributes are flat: only `data` can nest.
            raise BadInput("data", TOO_DEEP) from None
        if not isinstance(envelope, dict):
            raise BadInput("body", "structured CloudEvent must be a JSON object")
        if "data" in envelope and "data_base64" in envelope:
            raise BadInput("data_base64", "an event holds data or data_base64, not both")
        data: Any = envelope.get("data")
        if "data_base64" in envelope:
            try:
                raw = base64.b64decode(envelope["data_base64"], validate=True)
            except (ValueError, TypeError):
                raise BadInput("data_base64", "not valid base64") from None
            data = _decode_data(raw, envelope.get("datacontenttype"), strict_data)
        elif isinstance(data, str) and _is_json(envelope.get("datacontenttype")):
            # A JSON string value is data as-is (not JSON text to decode again).
            pass
        return _build(envelope, data)
    raise BadInput(
        "content-type",
        "not a CloudEvent: send ce-specversion/ce-id/ce-source/ce-type headers (binary mode)"
        f" or content-type {STRUCTURED} (structured mode)",
    )


def derived_id(*parts: str) -> str:
    """A stable id from other ids: the same inputs always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


def reply(
    event_type: str,
    source: str,
    event_id: str,
    data: Any,
    time: datetime | None = None,
    **extensions: str,
) -> CloudEvent:
    """A JSON CloudEvent; pass `time` to make a repeated reply identical to the first."""
    attributes = {"type": event_type, "source": source, "id": event_id}
    attributes["datacontenttype"] = "application/json"
    if time is not None:
        attributes["time"] = timestamps.format(time)
    attributes.update(extensions)
    return CloudEvent(attributes, data)


def binary_response(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode HTTP message for `event`."""
    headers, body = to_binary(event)
    return dict(headers), body if isinstance(body, bytes) else (body or b"")
