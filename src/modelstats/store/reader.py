"""The read-only role dashboards connect as (migration 0007): its name, and its login.

Grafana's PostgreSQL data source runs whatever SQL its dashboards hold, so it connects as
`modelstats_reader`, which may only read `metric_samples`, `series`, `alerts` and
`alert_transitions`, in read-only transactions.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg
from psycopg import sql

from modelstats.store import queries
from modelstats.store.db import translate_errors

ROLE = "modelstats_reader"
PASSWORD_FILE = "reader-password"


def enable_login(url: str, password: str) -> None:
    """Let the role log in with `password` (run as a user that may alter it)."""
    statement = sql.SQL(queries.get("roles", "reader_login")).format(password=sql.Literal(password))
    with translate_errors(), psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def local_password(data_dir: Path) -> str:
    """The embedded database's reader password: made once, kept in the data directory (only
    its owner may read it), so a Grafana set up with it keeps working across restarts."""
    path = data_dir / PASSWORD_FILE
    if path.exists():
        return path.read_text("utf-8").strip()
    password = secrets.token_urlsafe(18)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password
