"""Logging: one line per record, as text or as JSON objects, at the level the settings say.

`LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR; default INFO) and `LOG_FORMAT` (`text`, the default,
or `json`: one object per line with time, level, function, logger, message and, when the
record has them, `fields` and `exception`, for cluster log pipelines). The long-running
commands (broker, run) call `configure` at start; every function's worker process calls it
before the first request it serves (web/wrapper.py), since functions-framework leaves the
application's loggers unconfigured. Per-event lines are DEBUG; INFO says what an operator
needs (rejected events, summaries, alerts).

Structured fields go in `extra={"fields": {...}}`: the text line already says them in words,
the JSON object carries them as values.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from modelstats.core.errors import ConfigError

FORMATS = ("text", "json")
# How much of a sender's text (an id, a source, a field, an error message) goes into a line:
# a sender chooses its size, up to megabytes.
LOGGED_CHARS = 200
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Loggers that say something per request at INFO (httpx logs every request it sends), and
# pgserver, which narrates its own process bookkeeping at INFO.
QUIET = ("httpx", "httpcore", "uvicorn.access", "pgserver")
# psycopg_pool warns at each failed connection attempt: while PostgreSQL is down that is about
# once a second per broken connection (store/db.py retries that often). The first says why;
# the same warning again within this many seconds says nothing new.
REPEATS_EVERY_SECONDS = {"psycopg.pool": 30.0}
# The servers' own loggers keep their handlers (and do not propagate): in JSON mode their
# lines are formatted as ours, so a log pipeline gets one shape.
SERVER_LOGGERS = ("gunicorn.error", "uvicorn.error")


def clip(text: str, limit: int = LOGGED_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback included)."""

    def __init__(self, function: str):
        super().__init__()
        self.function = function

    def format(self, record: logging.LogRecord) -> str:
        moment = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "function": self.function,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry["fields"] = fields
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)


def text_formatter() -> logging.Formatter:
    return logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)-7s %(message)s", "%H:%M:%S")


def level_of(name: str) -> int:
    upper = name.strip().upper() or "INFO"
    if upper not in LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {name!r}")
    return int(logging.getLevelName(upper))


def check_format(name: str) -> str:
    lower = name.strip().lower() or "text"
    if lower not in FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, got {name!r}")
    return lower


class Repeats(logging.Filter):
    """Lets a record through unless one with the same message template passed less than
    `seconds` ago."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self._passed: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        if record.created - self._passed.get(key, float("-inf")) < self.seconds:
            return False
        self._passed[key] = record.created
        return True


class _Ours(logging.StreamHandler):
    """The handler `configure` installs (calling it again replaces only this one). It writes
    to whatever sys.stderr is when a record comes, as logging's last resort does: a test
    runner swaps sys.stderr and closes the one it replaced."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(function: str, level: str | None = None, format: str | None = None) -> None:
    """Send every record at `level` and above to stderr in `format` (default: the settings).

    Handlers someone else put on the root logger (pytest's, for one) stay."""
    if level is None or format is None:
        from modelstats.core.settings import get_settings

        settings = get_settings()
        level = settings.log_level if level is None else level
        format = settings.log_format if format is None else format
    chosen = check_format(format)
    formatter = JsonFormatter(function) if chosen == "json" else text_formatter()
    handler = _Ours()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _Ours)] + [handler]
    root.setLevel(level_of(level))
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, seconds in REPEATS_EVERY_SECONDS.items():
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, Repeats)]
        logger.addFilter(Repeats(seconds))
    if chosen == "json":
        for name in SERVER_LOGGERS:
            for server_handler in logging.getLogger(name).handlers:
                server_handler.setFormatter(formatter)
