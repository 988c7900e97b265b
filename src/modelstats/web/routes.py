"""A table of routes for an HTTP function: path patterns and their handlers.

A pattern is a path whose `{name}` segments match one path segment each (percent-decoded, so a
model named `a/b` is addressed as `a%2Fb`). A route is public when it needs no authorization
(the function's `authorize` rule is not applied to it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    pattern: str
    handler: Handler
    public: bool = False

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters when the segments match this pattern, else None."""
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


def find(routes: Sequence[Route], request: Request) -> tuple[Route, dict[str, str]] | None:
    """The first route whose pattern matches the request's path, with its parameters."""
    segments = path_segments(request)
    for route in routes:
        params = route.match(segments)
        if params is not None:
            return route, params
    return None
