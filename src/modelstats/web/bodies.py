"""Reading a request body within the size limit, and the CloudEvent it carries.

A body over the limit is answered 413, and the connection must stay usable: a server that
answers before the body is read (or closes mid-upload) leaves the client with a reset, which
Knative retries as a network failure. So the body is read in chunks; past the limit the rest
is read and thrown away, never kept, and only then does the 413 go out.
"""

from __future__ import annotations

from starlette.requests import Request

from modelstats.core import cloudevents
from modelstats.core.errors import PayloadTooLarge
from modelstats.core.settings import get_settings


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or PayloadTooLarge once all of it has been received and discarded."""
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if too_large:
            continue  # drained: read so that the connection stays in step, then dropped
        size += len(chunk)
        if size > limit:
            too_large = True
            chunks.clear()
        else:
            chunks.append(chunk)
    if too_large:
        raise PayloadTooLarge("body", f"larger than {limit} bytes")
    return b"".join(chunks)


async def read_event(request: Request, strict: bool = True) -> cloudevents.Event:
    """The request's CloudEvent (binary or structured mode); BadInput names what is wrong."""
    body = await read_body(request, get_settings().max_body_bytes)
    return cloudevents.parse(request.headers, body, strict=strict)
