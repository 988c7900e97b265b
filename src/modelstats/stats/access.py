"""The stats API's access rule: every route but the public ones requires
`Authorization: Bearer <STATS_API_TOKEN>` when that variable is set; unset, the API is open."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from modelstats.core.errors import Unauthorized
from modelstats.core.settings import get_settings


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
