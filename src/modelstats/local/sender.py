"""The broker's HTTP deliveries: one POST per attempt, and Knative's retries around it.

This is the broker's hot path, so it runs on aiohttp's client with keep-alive connections. On
the 2-core machine, 16 concurrent POSTs to a no-op uvicorn app cost the client 2.2 ms of CPU per
request with httpx.AsyncClient (its pool bookkeeping and anyio dominate) and 0.09-0.12 ms with
aiohttp's ClientSession, whose response parser is compiled.

What a subscriber's answer means follows `knative/SEMANTICS.md`: a 2xx whose response is a
CloudEvent (binary or structured) is a reply; an empty 2xx is done; a 2xx with any other body is
a failure (502), as Knative's filter handler treats it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from modelstats.core.errors import BadInput
from modelstats.local import delivery, envelopes
from modelstats.local.envelopes import Envelope

# Servers close idle keep-alive connections (gunicorn after 2 s, uvicorn 5 s): dropping ours
# sooner keeps a request from being written onto a connection the server is closing.
KEEPALIVE_SECONDS = 1.0


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
        """The subscriber's own words for a failure (its response body), shortened."""
        text = self.body.decode("utf-8", errors="replace").strip() if self.body else self.error
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


# Called after each failed attempt: (result, attempt number from 1, seconds until the next
# attempt or None when there is none).
FailureHook = Callable[[DeliveryResult, int, float | None], None]


def judge(status: int, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
    """Classify a subscriber's answer; `headers` lowercase."""
    if not delivery.is_success(status):
        return DeliveryResult(status, body)
    if envelopes.is_cloudevent(headers):
        try:
            return DeliveryResult(status, body, reply=envelopes.decode(headers, body), ok=True)
        except BadInput as error:
            return DeliveryResult(502, body, error=f"invalid CloudEvent reply: {error}")
    if body:
        return DeliveryResult(502, body, error=f"{status} with a body that is not a CloudEvent")
    return DeliveryResult(status, ok=True)


class Sender:
    """One keep-alive client session per broker process; open it inside the running loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            # The event's own headers only: no client defaults (content-type would become the
            # event's datacontenttype at the subscriber).
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def attempt(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> DeliveryResult:
        """One POST; a connection the server closed while idle is retried once at once (as Go's
        transport does for a request it never wrote), anything else is the attempt's result."""
        if self._session is None:
            raise RuntimeError("the sender is not open")
        for fresh_try in (False, True):
            try:
                async with self._session.post(
                    url, data=body, headers=headers, timeout=self._timeout(timeout)
                ) as response:
                    content = await response.read()
                    lowered = {k.lower(): v for k, v in response.headers.items()}
                    return judge(response.status, lowered, content)
            except aiohttp.ServerDisconnectedError as error:
                if fresh_try:
                    return DeliveryResult(None, error=f"server disconnected: {error}")
            except TimeoutError:
                return DeliveryResult(None, error=f"timed out after {timeout:g}s")
            except aiohttp.ClientError as error:
                return DeliveryResult(None, error=f"{type(error).__name__}: {error}")
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(
        self,
        url: str,
        envelope: Envelope,
        policy: delivery.RetryPolicy,
        extra_headers: Mapping[str, str],
        on_failure: FailureHook,
    ) -> DeliveryResult:
        """POST with the attempts and waits of `policy`; the last result."""
        headers, body = envelopes.encode_binary(envelope)
        headers.update(extra_headers)
        result = DeliveryResult(None, error="not attempted")
        for attempt in range(policy.attempts):
            result = await self.attempt(url, headers, body, policy.attempt_timeout())
            if result.ok:
                return result
            retried = delivery.is_retried(result.status) and attempt + 1 < policy.attempts
            wait = policy.wait_before(attempt) if retried else None
            on_failure(result, attempt + 1, wait)
            if wait is None:
                break
            if wait:
                await asyncio.sleep(wait)
        return result
