"""CloudEvents 1.0 over HTTP as the broker moves them: attributes as strings, data as raw bytes.

The broker never interprets `data`, so it keeps the exact bytes it received (the cloudevents SDK
would decode and re-encode JSON). Binary mode (`ce-*` headers) and structured mode
(`application/cloudevents+json`) are read; events leave in binary mode, as Knative sends them.
Batched mode is refused, as Knative brokers refuse it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from modelstats.core.errors import BadInput

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
_LONG_NAME = re.compile(r"^[a-z0-9]+$")
# Printable ASCII travels as is in a header; anything else is percent-encoded. (The HTTP
# binding would also encode `%`, `"` and space, but the cloudevents 1.x SDK the functions use
# does not decode, so they stay literal for the values to arrive unchanged.)
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F))


@dataclass(frozen=True)
class Envelope:
    attributes: Mapping[str, str]
    data: bytes = b""
    has_data: bool = field(default=False)

    @property
    def id(self) -> str:
        return self.attributes.get("id", "")

    @property
    def type(self) -> str:
        return self.attributes.get("type", "")

    @property
    def source(self) -> str:
        return self.attributes.get("source", "")

    def with_attributes(self, **changes: str | None) -> Envelope:
        """A copy with attributes set (a value of None removes the attribute)."""
        attributes = dict(self.attributes)
        for name, value in changes.items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        return Envelope(attributes, self.data, self.has_data)

    def without(self, *names: str) -> Envelope:
        return self.with_attributes(**dict.fromkeys(names))

    def label(self) -> str:
        return f"{self.type} {self.source} {self.id}"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # CloudEvents: data without datacontenttype is JSON
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _validate(attributes: dict[str, str]) -> None:
    for name in REQUIRED:
        if not attributes.get(name):
            raise BadInput(name, f"the CloudEvent attribute {name!r} is missing or empty")
    if attributes["specversion"] != "1.0":
        raise BadInput("specversion", f"unsupported specversion {attributes['specversion']!r}")
    for name in attributes:
        if not _LONG_NAME.match(name):
            raise BadInput(name, "attribute names are lowercase letters and digits only")
    if "time" in attributes:
        try:
            datetime.fromisoformat(attributes["time"].replace("Z", "+00:00"))
        except ValueError:
            raise BadInput("time", f"not an RFC 3339 timestamp: {attributes['time']!r}") from None


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise BadInput(
        "attributes", f"attribute values must be strings, numbers or booleans: {value!r}"
    )


def _from_structured(body: bytes) -> Envelope:
    try:
        document = json.loads(body)
    except ValueError:
        raise BadInput("body", "structured CloudEvent is not valid JSON") from None
    if not isinstance(document, dict):
        raise BadInput("body", "structured CloudEvent must be a JSON object")
    attributes: dict[str, str] = {}
    data, has_data = b"", False
    for name, value in document.items():
        if name == "data":
            has_data = True
            content_type = document.get("datacontenttype")
            if isinstance(value, str) and not _is_json(content_type):
                data = value.encode()
            else:
                data = json.dumps(value, separators=(",", ":")).encode()
        elif name == "data_base64":
            has_data = True
            try:
                data = base64.b64decode(str(value), validate=True)
            except binascii.Error:
                raise BadInput("data_base64", "not valid base64") from None
        elif value is not None:
            attributes[name] = _string(value)
    _validate(attributes)
    return Envelope(attributes, data, has_data)


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether an HTTP message (request or response) claims to carry a CloudEvent."""
    content_type = headers.get("content-type", "")
    return "ce-specversion" in headers or content_type.lower().startswith(STRUCTURED)


def decode(headers: Mapping[str, str], body: bytes) -> Envelope:
    """Read a CloudEvent from HTTP; `headers` must be case-insensitive (lowercase keys)."""
    content_type = headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == BATCH:
        raise BadInput("content-type", "batched CloudEvents are not supported by the broker")
    if media == STRUCTURED:
        return _from_structured(body)
    if "ce-specversion" not in headers:
        raise BadInput("specversion", "not a CloudEvent: no ce-specversion header (binary mode)")
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            attributes[lower[3:]] = unquote(value)
    if content_type:
        attributes["datacontenttype"] = content_type
    _validate(attributes)
    return Envelope(attributes, body, bool(body))


def encode_binary(envelope: Envelope) -> tuple[dict[str, str], bytes]:
    headers: dict[str, str] = {}
    for name, value in envelope.attributes.items():
        if name == "datacontenttype":
            headers["content-type"] = value
        else:
            headers[f"ce-{name}"] = quote(value, safe=_HEADER_SAFE)
    return headers, envelope.data


def to_json(envelope: Envelope) -> dict[str, Any]:
    """A structured-mode document with `data_base64`: exact bytes, for spool files."""
    document: dict[str, Any] = dict(envelope.attributes)
    if envelope.has_data or envelope.data:
        document["data_base64"] = base64.b64encode(envelope.data).decode()
    return document


def from_json(document: Mapping[str, Any]) -> Envelope:
    return _from_structured(json.dumps(document).encode())
