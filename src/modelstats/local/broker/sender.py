"""The broker's HTTP deliveries: one POST per attempt, and Knative's retries around it.

What a subscriber's answer means follows `knative/SEMANTICS.md`: a 2xx whose response is a
CloudEvent (binary or structured) is a reply; an empty 2xx is done; a 2xx with any other body is
a failure (502), as Knative's filter handler treats it. The HTTP itself is http_client.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from modelstats.core import cloudevents, contract
from modelstats.core.cloudevents import Envelope
from modelstats.core.errors import BadInput
from modelstats.local.broker.http_client import HttpClient, HttpError
from modelstats.local.knative import delivery

# Servers close idle keep-alive connections (gunicorn after 2 s, uvicorn 5 s): dropping ours
# sooner keeps a request from being written onto a connection the server is closing.
KEEPALIVE_SECONDS = 1.0
# Deliveries in progress to one subscriber at most; more wait for a connection to free up. The
# functions batch what arrives together into one transaction, so the more that arrives at once
# the less each event costs: through the stack at 16 clients, a cap of 32 gave 1,440-1,510
# events/s (1.2 ms of CPU per event in all), 128 gave 1,760-1,880 and 256 gave 1,830-1,950
# (1.0 ms); 512 no more, with a worse p99. Knative's own dispatcher sets no cap at all.
CONNECTIONS_PER_HOST = 256


@dataclass(slots=True)
class DeliveryResult:
    """What one attempt (or the last of a delivery's attempts) came to."""

    status: int | None  # None: no response (network error, timeout)
    body: bytes = b""
    error: str = ""
    reply: Envelope | None = None
    ok: bool = False

    def describe(self) -> str:
        if self.status is None:
            return self.error or "no response"
        return f"HTTP {self.status}" + (f" ({self.error})" if self.error else "")

    def reason(self, limit: int = 200) -> str:
        """The subscriber's own words for a failure (its response body), shortened; a JSON
        error such as the functions' `{"field": ..., "message": ...}` as `field: message`."""
        text = self.body.decode("utf-8", errors="replace").strip() if self.body else self.error
        text = _spoken_error(text)
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _spoken_error(text: str) -> str:
    if not text.startswith("{"):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if not isinstance(document, dict) or not isinstance(document.get("message"), str):
        return text
    field = document.get("field")
    return f"{field}: {document['message']}" if isinstance(field, str) else document["message"]


# Called after each failed attempt: (result, attempt number from 1, seconds until the next
# attempt or None when there is none).
FailureHook = Callable[[DeliveryResult, int, float | None], None]


def judge(status: int, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
    """Classify a subscriber's answer; `headers` lowercase."""
    if not contract.is_success(status):
        return DeliveryResult(status, body)
    if cloudevents.is_cloudevent(headers):
        try:
            return DeliveryResult(status, body, reply=cloudevents.decode(headers, body), ok=True)
        except BadInput as error:
            return DeliveryResult(502, body, error=f"invalid CloudEvent reply: {error}")
    if body:
        return DeliveryResult(502, body, error=f"{status} with a body that is not a CloudEvent")
    return DeliveryResult(status, ok=True)


class Sender:
    """The broker's client; open it inside the running loop."""

    def __init__(self, max_answer_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_answer = max_answer_bytes
        self._client: HttpClient | None = None

    async def open(self) -> None:
        self._client = HttpClient(CONNECTIONS_PER_HOST, KEEPALIVE_SECONDS, self._max_answer)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def attempt(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> DeliveryResult:
        if self._client is None:
            raise RuntimeError("the sender is not open")
        try:
            answer = await self._client.post(url, headers, body, timeout)
        except HttpError as error:
            return DeliveryResult(None, error=str(error))
        return judge(answer.status, answer.headers, answer.body)

    async def send(
        self,
        url: str,
        envelope: Envelope,
        policy: delivery.RetryPolicy,
        extra_headers: Mapping[str, str],
        on_failure: FailureHook,
    ) -> DeliveryResult:
        """POST with the attempts and waits of `policy`; the last result."""
        headers, body = cloudevents.encode_binary(envelope)
        headers.update(extra_headers)
        result = DeliveryResult(None, error="not attempted")
        for attempt in range(policy.attempts):
            result = await self.attempt(url, headers, body, policy.attempt_timeout())
            if result.ok:
                return result
            retried = contract.is_retried(result.status) and attempt + 1 < policy.attempts
            wait = policy.wait_before(attempt) if retried else None
            on_failure(result, attempt + 1, wait)
            if wait is None:
                break
            if wait:
                await asyncio.sleep(wait)
        return result
