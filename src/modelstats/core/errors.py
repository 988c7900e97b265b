"""Typed errors, and the one table that maps them to HTTP status codes.

Foreign exceptions (psycopg, httpx, cloudevents) are translated into these where they enter.
Statuses follow what Knative retries: 400 is final (dead-lettered), 503 is retried.
"""

from __future__ import annotations

from typing import Any


class ModelstatsError(Exception):
    """Base of every error this project raises on purpose."""

    def to_json(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": str(self)}

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer to this error must carry (RFC 9110 asks for some)."""
        return {}


class ConfigError(ModelstatsError):
    """The process is misconfigured (environment, rules file, manifests)."""


class BadInput(ModelstatsError):
    """The request or event is malformed; `field` names the offending part."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"error": "bad_input", "field": self.field, "message": self.message}


class PayloadTooLarge(BadInput):
    pass


class MethodNotAllowed(BadInput):
    """The path exists but not for this method; `allowed` goes into the `Allow` header."""

    def __init__(self, allowed: str):
        super().__init__("method", f"use {allowed}")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


class NotFound(ModelstatsError):
    def to_json(self) -> dict[str, Any]:
        return {"error": "not_found", "message": str(self)}


class Unauthorized(ModelstatsError):
    def to_json(self) -> dict[str, Any]:
        return {"error": "unauthorized", "message": str(self)}

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class DatabaseUnavailable(ModelstatsError):
    """PostgreSQL is down or unreachable: a transient failure, the caller should retry."""

    def to_json(self) -> dict[str, Any]:
        return {"error": "database_unavailable", "message": str(self)}


class InternalError(ModelstatsError):
    """A failure that is ours, not the input's nor the database's availability: a bug. Answered
    500 (Knative retries it a bounded number of times, then dead-letters the event)."""

    def to_json(self) -> dict[str, Any]:
        return {"error": "internal", "message": str(self)}


class DeliveryFailed(ModelstatsError):
    """An outbound HTTP delivery (webhook, broker) failed; `retry_after` in seconds if known."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# The one place where errors become HTTP statuses.
HTTP_STATUS: dict[type[ModelstatsError], int] = {
    PayloadTooLarge: 413,
    MethodNotAllowed: 405,
    BadInput: 400,
    Unauthorized: 401,
    NotFound: 404,
    DatabaseUnavailable: 503,
    DeliveryFailed: 502,
    ConfigError: 500,
    InternalError: 500,
}


def http_status(error: ModelstatsError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
