"""`modelstats run --db-port`: the embedded PostgreSQL also listens on 127.0.0.1, where only the
read-only role may log in, with its password; the superuser stays on the Unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from modelstats.core.errors import ConfigError
from modelstats.local.stack.embedded import EmbeddedPostgres
from modelstats.local.stack.lifecycle import Stack, StackConfig
from modelstats.store import migrate, reader
from tests.brokers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(tmp_path / "pg", tcp_port=free_port())
    try:
        yield embedded
    finally:
        embedded.remove()


def refused(url: str) -> str:
    with pytest.raises(psycopg.OperationalError) as error:
        psycopg.connect(url, connect_timeout=5).close()
    return str(error.value)


def test_tcp_admits_the_reader_alone(server: EmbeddedPostgres, tmp_path: Path) -> None:
    url = server.start()
    migrate.migrate(url)  # creates the role
    password = reader.local_password(tmp_path)
    assert reader.local_password(tmp_path) == password  # kept, not made anew
    assert (tmp_path / reader.PASSWORD_FILE).stat().st_mode & 0o777 == 0o600
    reader.enable_login(url, password)

    reader_url = server.reader_url(password)
    assert reader_url.startswith(f"postgresql://modelstats_reader:{password}@127.0.0.1:")
    with psycopg.connect(reader_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM metric_samples").fetchone() == (0,)
    port = server.tcp_port
    assert "no pg_hba.conf entry" in refused(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    wrong = reader_url.replace(password, "not-the-password")
    assert "password authentication failed" in refused(wrong)
    # The superuser still comes in through the socket (its name carries the new port).
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)

    server.stop()  # and started again, as the outage tests do: still on TCP
    server.start()
    with psycopg.connect(reader_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_db_port_is_for_the_embedded_database_only(tmp_path: Path) -> None:
    stack = Stack(
        StackConfig(data_dir=tmp_path, db_port=free_port()),
        environ={"DATABASE_URL": "postgresql://someone@db.example/modelstats"},
    )
    with pytest.raises(ConfigError, match="--db-port is for the embedded PostgreSQL"):
        stack._database()
