"""Log lines: the same warning repeated within its interval is written once."""

from __future__ import annotations

import logging

from modelstats.core import logs


def _record(message: str, created: float) -> logging.LogRecord:
    record = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1, message, (), None)
    record.created = created
    return record


def test_a_repeated_warning_passes_once_per_interval_whatever_its_arguments() -> None:
    repeats = logs.Repeats(30)
    template = "error connecting in %r: %s"
    passed = [repeats.filter(_record(template, at)) for at in (100.0, 101.0, 129.0, 130.0, 131.0)]
    assert passed == [True, False, False, True, False]
    assert repeats.filter(_record("discarding broken connection: %s", 101.0))  # another one


def test_configure_puts_one_repeats_filter_on_psycopg_pool() -> None:
    pool_logger = logging.getLogger("psycopg.pool")
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        logs.configure("test", level="INFO", format="text")
        logs.configure("test", level="INFO", format="text")
        assert [type(f) for f in pool_logger.filters].count(logs.Repeats) == 1
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        pool_logger.filters[:] = [f for f in pool_logger.filters if not isinstance(f, logs.Repeats)]
