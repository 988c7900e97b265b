"""The dashboard: static files that chart the JSON API in the browser.

`GET /` is `index.html`; `GET /dashboard/{asset}` serves the page's scripts and styles from this
folder and the vendored uPlot (vendor/uplot/, see SOURCE.md there). Nothing is fetched from
elsewhere (clusters may have no internet) and no file holds data: the page asks for the token
when the API answers 401 and sends it with every API call.

Our own files may change with any deployment, so the browser revalidates them (`no-cache`, a
cheap 304 thanks to the ETag). uPlot's files are served under names that carry its version, so
a new version is a new URL and the old one can be cached for good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from starlette.responses import Response

from modelstats.core.errors import NotFound

UPLOT_VERSION = "1.6.32"
PAGE = "index.html"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

# The served name of each vendored file: the version is part of the URL.
VENDORED = {
    f"uplot-{UPLOT_VERSION}.iife.min.js": "vendor/uplot/uPlot.iife.min.js",
    f"uplot-{UPLOT_VERSION}.min.css": "vendor/uplot/uPlot.min.css",
}
OWN = (
    "index.html",
    "app.css",
    "accuracy.js",
    "alerts.js",
    "app.js",
    "api.js",
    "charts.js",
    "controls.js",
    "format.js",
    "grades.js",
    "home.js",
    "inference.js",
    "panels.js",
    "strip.js",
    "view.js",
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    cache_control: str
    etag: str


def _load(path: str, cache_control: str) -> Asset:
    body = resources.files(__name__).joinpath(path).read_bytes()
    suffix = path[path.rfind(".") :]
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, _MEDIA_TYPES[suffix], cache_control, etag)


@cache
def assets() -> dict[str, Asset]:
    """Every file the dashboard serves, by the name in its URL (read once per process)."""
    found = {name: _load(name, REVALIDATE) for name in OWN}
    found.update({name: _load(path, IMMUTABLE) for name, path in VENDORED.items()})
    return found


def asset(name: str) -> Asset:
    try:
        return assets()[name]
    except KeyError:
        raise NotFound(f"no dashboard file {name!r}") from None


def not_modified(found: Asset, if_none_match: str | None) -> bool:
    """Whether the browser's cached copy (its If-None-Match header) is still this file."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return found.etag in tags or "*" in tags


# The page may talk to its own origin only: a script that tried to reach elsewhere is refused
# by the browser itself.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none';"
    " base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def response(name: str, if_none_match: str | None) -> Response:
    """The file's answer: 200 with it, or an empty 304 when the browser's copy is current."""
    found = asset(name)
    headers = {**HEADERS, "Cache-Control": found.cache_control, "ETag": found.etag}
    if not_modified(found, if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
