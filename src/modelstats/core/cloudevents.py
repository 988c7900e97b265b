"""The one CloudEvents codec: HTTP binary and structured mode in, binary mode out.

Two readers of one wire format, with one set of rules:

- the local broker moves events without interpreting them: `decode` gives an `Envelope`
  (attributes as strings, `data` as the exact bytes received), `encode_binary` writes it
  back, `to_json` / `from_json` keep it in spool files;
- the functions need the data: `parse` gives an `Event` whose JSON data is decoded (strictly:
  invalid JSON is a 400 naming `data`, never bytes passed on) and whose `time` is a datetime.
  It is `decode` plus that step, so both sides accept and refuse the same events.

The rules, from the CloudEvents 1.0.2 spec and its HTTP binding:

- attribute names are lowercase ASCII letters and digits (a MUST); the spec's 20-character
  limit is a SHOULD, and Knative's own `knativearrivaltime` is 18, so longer names are
  accepted rather than refusing an event a Knative broker would deliver;
- attribute values are strings, or scalars in structured mode (written as strings);
- header values are percent-encoded on the way out: space, `"`, `%` and everything outside
  printable ASCII (U+0021-U+007E); on the way in a double-quoted value is unquoted, then one
  round of percent-decoding is applied, and bytes that are not UTF-8 are refused. Encoding
  `%` is what makes decoding safe: a value that contains `%41` arrives as `%41`. In structured
  mode the same rule refuses a lone surrogate (`"\\ud800"`, core/surrogates.py) in a name or
  value: it has no UTF-8 form, so no binary-mode header could carry it on. The
  cloudevents 1.x SDK (functions-framework pins it) neither encodes nor decodes, which is why
  replies built with it go out through `binary_response` here, and why incoming events are
  read here and not with its `from_http`.

Replies are built with that SDK (`reply`), as functions-framework expects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from cloudevents.http import CloudEvent

from modelstats.core import surrogates, timestamps
from modelstats.core.errors import BadInput
from modelstats.core.settings import get_settings

STRUCTURED = "application/cloudevents+json"
# 0.3 is still what Seldon Core's request logger sends; its attributes read the same here.
SPEC_VERSIONS = ("1.0", "0.3")
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
CORE = {*REQUIRED, "datacontenttype", "dataschema", "subject", "time"}
TOO_DEEP = "JSON nested too deeply"
_NAME = re.compile(r"^[a-z0-9]+$")
# Printable ASCII but space, `"` and `%`: what a header value may carry as is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_NEEDS_ENCODING = re.compile(r"[^\x21\x23\x24\x26-\x7e]")


# --- header values ------------------------------------------------------------------------


def quote_header(value: str) -> str:
    """An attribute value as an HTTP header value (the binding's percent-encoding)."""
    if _NEEDS_ENCODING.search(value) is None:
        return value
    return quote(value, safe=_HEADER_SAFE)


def unquote_header(name: str, value: str, lenient: bool = False) -> str:
    """An HTTP header value as the attribute value: unquote a quoted string, percent-decode.
    `lenient` keeps bytes that are not UTF-8 escaped (`\\xff`) instead of refusing them."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    if "%" not in value:
        return value
    try:
        return unquote_to_bytes(value).decode("utf-8", "backslashreplace" if lenient else "strict")
    except UnicodeDecodeError:
        raise BadInput(name, "percent-encoded bytes are not UTF-8") from None


# --- the broker's view: attributes and raw data -------------------------------------------


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
        return True  # CloudEvents: data without a content type is JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _validate(attributes: Mapping[str, str]) -> None:
    if attributes.get("specversion") not in SPEC_VERSIONS:
        raise BadInput(
            "specversion", f"must be '1.0' (or '0.3'), got {attributes.get('specversion')!r}"
        )
    for name in REQUIRED[1:]:
        if not attributes.get(name):
            raise BadInput(name, "required CloudEvents attribute is missing or empty")
    for name in attributes:
        if not _NAME.fullmatch(name):
            raise BadInput(name, "attribute names are lowercase letters and digits only")
    if "time" in attributes:
        timestamps.parse(attributes["time"], "time")


def _string(name: str, value: Any) -> str:
    if isinstance(value, str):
        if surrogates.has(value):
            raise BadInput(name, surrogates.MESSAGE)
        return value
    if name in REQUIRED:
        raise BadInput(name, f"must be a string, got {value!r}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise BadInput(name, f"attribute values are strings, numbers or booleans, got {value!r}")


def _structured_data(document: dict[str, Any]) -> tuple[bytes, bool]:
    if "data" in document and "data_base64" in document:
        raise BadInput("data_base64", "an event holds data or data_base64, not both")
    if document.get("data_base64") is not None:
        try:
            return base64.b64decode(str(document["data_base64"]), validate=True), True
        except binascii.Error:
            raise BadInput("data_base64", "not valid base64") from None
    value = document.get("data")
    if value is None:
        return b"", False
    if isinstance(value, str) and not _is_json(document.get("datacontenttype")):
        return value.encode("utf-8", "backslashreplace"), True
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode(), True
    except UnicodeEncodeError:
        # A lone surrogate: written back as the escape it came as, for the function to judge.
        return json.dumps(value, separators=(",", ":")).encode(), True


def _from_structured(body: bytes, lenient: bool = False) -> Envelope:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput("body", f"structured CloudEvent is not valid JSON: {error}") from None
    except RecursionError:
        raise BadInput("data", TOO_DEEP) from None  # attributes are flat: only data nests
    if not isinstance(document, dict):
        raise BadInput("body", "structured CloudEvent must be a JSON object")
    attributes = {
        # A name with a surrogate fails the name rule; escaped, it can be said in the answer.
        surrogates.escape(name): surrogates.escape(value)
        if lenient and isinstance(value, str)
        else _string(surrogates.escape(name), value)
        for name, value in document.items()
        if name not in ("data", "data_base64") and value is not None
    }
    _validate(attributes)
    data, has_data = _structured_data(document)
    return Envelope(attributes, data, has_data)


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether an HTTP message (request or response) claims to carry a CloudEvent;
    `headers` must have lowercase keys or be case-insensitive."""
    content_type = headers.get("content-type", "")
    return "ce-specversion" in headers or content_type.lower().startswith(STRUCTURED)


def decode(headers: Mapping[str, str], body: bytes, lenient: bool = False) -> Envelope:
    """Read a CloudEvent from HTTP (either mode), data kept as the bytes received.

    `lenient` (the dead-letter sink, which keeps anything): attribute values with no UTF-8
    form (a lone surrogate, percent-encoded bytes that are not UTF-8) are kept escaped
    (`\\ud800`, `\\xff`) instead of refused."""
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == BATCH:
        raise BadInput(
            "content-type", "batched mode is not supported: send many reports in one event"
        )
    if "ce-specversion" in lowered:
        attributes = {
            name[3:]: unquote_header(name[3:], value, lenient)
            for name, value in lowered.items()
            if name.startswith("ce-")
        }
        if content_type is not None:
            attributes["datacontenttype"] = content_type
        _validate(attributes)
        return Envelope(attributes, body, bool(body))
    if media == STRUCTURED:
        return _from_structured(body, lenient)
    raise BadInput(
        "content-type",
        "not a CloudEvent: send ce-specversion/ce-id/ce-source/ce-type headers (binary mode)"
        f" or content-type {STRUCTURED} (structured mode)",
    )


def encode_binary(envelope: Envelope) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode HTTP message for `envelope`."""
    headers: dict[str, str] = {}
    for name, value in envelope.attributes.items():
        if name == "datacontenttype":
            headers["content-type"] = value
        else:
            headers[f"ce-{name}"] = quote_header(value)
    return headers, envelope.data


def to_json(envelope: Envelope) -> dict[str, Any]:
    """A structured-mode document with `data_base64`: exact bytes, for spool files."""
    document: dict[str, Any] = dict(envelope.attributes)
    if envelope.has_data or envelope.data:
        document["data_base64"] = base64.b64encode(envelope.data).decode()
    return document


def from_json(document: Mapping[str, Any]) -> Envelope:
    return _from_structured(json.dumps(document).encode())


# --- the functions' view: parsed data -----------------------------------------------------


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


def _decode_data(body: bytes, content_type: str | None, strict: bool) -> Any:
    if not body:
        return None
    if not strict or not _is_json(content_type):
        return body
    return json_data(body)


def json_data(body: bytes) -> Any:
    """Data as JSON (strictly: BadInput naming `data`, surrogates refused), whatever the content
    type said: the inference loggers copy the model's, which may not say JSON."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput("data", f"not valid JSON: {error}") from None
    except RecursionError:
        # Python's parser gives up around a thousand levels; no report nests that deep.
        raise BadInput("data", TOO_DEEP) from None
    if surrogates.may_hold(body):
        surrogates.check(data, "data")
    return data


def _judge(attributes: Mapping[str, str]) -> None:
    """What a function refuses in attributes that the broker moves on: text PostgreSQL cannot
    hold (NUL), and values past the attribute limit (keys such as (source, id) must stay under
    PostgreSQL's index row limit, about 2,700 bytes)."""
    limit = get_settings().max_attribute_bytes
    for name, value in attributes.items():
        if "\x00" in value:
            raise BadInput(name, "contains a NUL character")
        # Characters are at most 4 bytes: only a long value needs encoding to be measured.
        if len(value) * 4 > limit and len(value.encode()) > limit:
            raise BadInput(name, f"longer than {limit} bytes (MAX_ATTRIBUTE_BYTES)")


def parse(headers: Mapping[str, str], body: bytes, strict: bool = True) -> Event:
    """Read an HTTP request into an Event (binary or structured mode); BadInput on error.

    With `strict` off, neither data nor attribute values are judged beyond the wire format:
    data stays the bytes that arrived and text with no UTF-8 form is escaped (the dead-letter
    sink keeps whatever it is given, for listing and replay).
    """
    envelope = decode(headers, body, lenient=not strict)
    attrs = envelope.attributes
    if strict:
        _judge(attrs)
    content_type = attrs.get("datacontenttype")
    time = attrs.get("time")
    return Event(
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        time=timestamps.parse(time, "time") if time is not None else None,
        datacontenttype=content_type,
        subject=attrs.get("subject"),
        dataschema=attrs.get("dataschema"),
        data=_decode_data(envelope.data, content_type, strict),
        extensions={name: value for name, value in attrs.items() if name not in CORE},
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
    """Headers and body of a binary-mode HTTP message for `event`, written by this codec's
    `encode_binary` (values percent-encoded, which the SDK's `to_binary` does not do; and at a
    quarter of its CPU: 8 against 29 us for a one-report reply, one per ingested event)."""
    attributes = {name: _string(name, value) for name, value in event.get_attributes().items()}
    data = event.get_data()
    if data is None:
        body = b""
    elif isinstance(data, bytes):
        body = data
    else:
        body = json.dumps(data, separators=(",", ":")).encode()
    return encode_binary(Envelope(attributes, body, data is not None))
