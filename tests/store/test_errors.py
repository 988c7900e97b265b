"""What a failed statement means, by what it is: the database away (503), the values refused
(400 for the one event that sent them), or a bug (500, logged once)."""

from __future__ import annotations

import logging

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import PoolTimeout

from modelstats.core.errors import BadInput, DatabaseUnavailable, InternalError, http_status
from modelstats.store import db

AWAY = [
    psycopg.OperationalError("connection to server on socket failed: No such file"),
    psycopg.InterfaceError("the connection is closed"),
    PoolTimeout("couldn't get a connection after 5.00 sec"),
    errors.AdminShutdown("terminating connection due to administrator command"),
    errors.CannotConnectNow("the database system is starting up"),
    errors.TooManyConnections("sorry, too many clients already"),
    errors.DiskFull("could not extend file"),
    errors.QueryCanceled("canceling statement due to statement timeout"),
    errors.ConnectionFailure("connection failure"),
]
REFUSED = [
    errors.ProgramLimitExceeded("index row size 6016 exceeds btree version 4 maximum 2704"),
    errors.CharacterNotInRepertoire("invalid byte sequence for encoding UTF8"),
    errors.UntranslatableCharacter("unsupported Unicode escape sequence"),
    UnicodeEncodeError("utf-8", "poison\ud800", 6, 7, "surrogates not allowed"),
]
BUGS = [
    errors.SyntaxError("syntax error at or near"),
    errors.UndefinedColumn("no such"),
    KeyError(3),
]


@pytest.mark.parametrize("error", AWAY, ids=lambda e: type(e).__name__)
def test_the_database_away_is_503(error: Exception) -> None:
    assert db.is_unavailable(error)
    assert isinstance(db.judge(error), DatabaseUnavailable)


@pytest.mark.parametrize("error", REFUSED, ids=lambda e: type(e).__name__)
def test_values_the_store_refuses_are_the_events_fault(error: Exception) -> None:
    """A program limit is an OperationalError too: it used to be answered 503, for ever."""
    assert not db.is_unavailable(error)
    judged = db.judge(error)
    assert isinstance(judged, BadInput) and judged.field == "data"
    assert http_status(judged) == 400


@pytest.mark.parametrize("error", BUGS, ids=lambda e: type(e).__name__)
def test_anything_else_is_a_bug_answered_500_with_its_traceback_once(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    assert not db.is_unavailable(error)
    with caplog.at_level(logging.ERROR, logger="modelstats.store"):
        judged = db.judge(error)
    assert isinstance(judged, InternalError) and http_status(judged) == 500
    assert [record.exc_info is not None for record in caplog.records] == [True]


def test_translate_errors_turns_only_the_database_away_into_503() -> None:
    with pytest.raises(DatabaseUnavailable), db.translate_errors():
        raise errors.AdminShutdown("terminating connection")
    with pytest.raises(errors.ProgramLimitExceeded), db.translate_errors():
        raise errors.ProgramLimitExceeded("index row size exceeds btree maximum")
