"""Named SQL statements, loaded from the `.sql` files beside this module.

Each file holds statements introduced by a `-- name: <name>` line. Values are always passed
as parameters; the few identifiers (partition names) are composed with psycopg.sql. A module
that runs many statements of one file names the file once:

    SQL = queries.Group("alerts")
    await conn.execute(SQL["claim_events"], params)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import LiteralString

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    statements: dict[str, str] = {}
    parts = _NAME.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in statements:
            raise ValueError(f"duplicate query name {name!r}")
        statements[name] = body.strip().rstrip(";")
    return statements


@cache
def load(group: str) -> dict[str, str]:
    text = resources.files("modelstats.store").joinpath("sql", f"{group}.sql").read_text("utf-8")
    return parse(text)


def get(group: str, name: str) -> LiteralString:
    try:
        # The text comes from files shipped with the package, never from input.
        return load(group)[name]
    except KeyError:
        raise KeyError(f"no query {name!r} in sql/{group}.sql") from None


@dataclass(frozen=True)
class Group:
    """The statements of `sql/<name>.sql`, read on first use (never at import)."""

    name: str

    def __getitem__(self, statement: str) -> LiteralString:
        return get(self.name, statement)
