"""Routing of the stats function: a table of path patterns and handlers, and the access rule.

A pattern is a path whose `{name}` segments match one path segment each (percent-decoded, so a
model named `a/b` is addressed as `a%2Fb`). Every route but the public ones requires
`Authorization: Bearer <STATS_API_TOKEN>` when that variable is set; unset, the API is open.
Each answer is timed into the request histogram under its route's pattern (`unmatched` for a
404 of no route); /healthz and /metrics are not timed.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

from modelstats.core import metrics
from modelstats.core.errors import MethodNotAllowed, NotFound, Unauthorized
from modelstats.core.settings import get_settings
from modelstats.web.wrapper import StartOnce, answer

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]

FUNCTION = "stats"
UNMATCHED = "unmatched"
UNTIMED = ("/healthz", "/metrics")
_started = StartOnce(FUNCTION, None)
_timer = metrics.Children(metrics.REQUEST_SECONDS, FUNCTION)


@dataclass(frozen=True)
class Route:
    pattern: str
    handler: Handler
    public: bool = False

    def match(self, segments: list[str]) -> dict[str, str] | None:
        parts = self.pattern.strip("/").split("/") if self.pattern != "/" else []
        if len(parts) != len(segments):
            return None
        params = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    return None
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


def path_segments(request: Request) -> list[str]:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.split(b"?", 1)[0].strip(b"/")
    if not path:
        return []
    return [unquote_to_bytes(part).decode("utf-8", "replace") for part in path.split(b"/")]


def authorize(request: Request) -> None:
    token = get_settings().stats_api_token
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise Unauthorized("send Authorization: Bearer <STATS_API_TOKEN>")


async def _route(routes: Sequence[Route], request: Request, matched: list[str]) -> Response:
    await _started()
    segments = path_segments(request)
    for route in routes:
        params = route.match(segments)
        if params is None:
            continue
        matched.append(route.pattern)
        if request.method != "GET":
            raise MethodNotAllowed("GET")
        if not route.public:
            authorize(request)
        return await route.handler(request, params)
    raise NotFound(f"no such path: {request.url.path}")


async def dispatch(routes: Sequence[Route], request: Request) -> Response:
    """The matching route's answer; errors through the wrapper's one status table."""
    began = time.perf_counter()
    matched: list[str] = []
    response = await answer(lambda: _route(routes, request, matched))
    route = matched[0] if matched else UNMATCHED
    if route not in UNTIMED:
        _timer(route, str(response.status_code)).observe(time.perf_counter() - began)
    return response
