"""Named SQL: the `-- name:` files and the one helper that modules read them through."""

from __future__ import annotations

import pytest

from modelstats.store import queries


def test_a_group_reads_the_statements_of_its_file():
    alerts = queries.Group("alerts")
    assert alerts["claim_events"] == queries.load("alerts")["claim_events"]
    assert "INSERT INTO alert_events" in alerts["claim_events"]


def test_an_unknown_statement_names_the_file():
    with pytest.raises(KeyError, match=r"no query 'nothing' in sql/etl\.sql"):
        queries.Group("etl")["nothing"]


def test_parse_refuses_a_name_twice():
    with pytest.raises(ValueError, match="duplicate query name 'a'"):
        queries.parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
