"""An embedded PostgreSQL for `make run` and the tests, from the `pgserver` wheel.

pgserver ships the server binaries and, when run as root (PostgreSQL refuses root), initialises
and runs the cluster as an unprivileged system user. It listens on a Unix socket only, so
nothing collides with another server on the machine.

With `tcp_port` it also listens on 127.0.0.1 at that port, for tools that cannot use a Unix
socket (Grafana). initdb's trust authentication would then let every local user in as the
superuser, so pg_hba.conf is rewritten first: the socket keeps trust as before, TCP accepts
only the read-only role (store/reader.py), with its password.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from pathlib import Path
from typing import Any

from modelstats.core.errors import ConfigError
from modelstats.store.reader import ROLE as READER

TCP_HOST = "127.0.0.1"
HBA = f"""\
# Written by modelstats (local/embedded.py) for --db-port: the Unix socket trusts, as initdb
# set it up; TCP on {TCP_HOST} admits the read-only role alone, with its password.
local   all             all                                     trust
local   replication     all                                     trust
host    all             {READER}       {TCP_HOST}/32            scram-sha-256
"""


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError:
        raise ConfigError(
            "the embedded PostgreSQL needs the 'pgserver' package (make install adds it);"
            " or set DATABASE_URL to use your own server"
        ) from None
    return pgserver


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`: start, stop (for failure tests) and remove."""

    def __init__(self, data_dir: Path | str, tcp_port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.tcp_port = tcp_port
        self._server: Any = None
        self._socket_dir = ""

    def start(self) -> str:
        """Start (initialising on first use) and return a libpq URL over the Unix socket."""
        pgserver = _pgserver()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # cleanup_mode=None: this class decides when the server stops, not atexit.
                self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
            self._socket_dir = str(self._server.get_postmaster_info().socket_dir)
            if self.tcp_port is not None:
                # pgserver started it on the socket alone: again, with TCP and its pg_hba.
                (self.data_dir / "pg_hba.conf").write_text(HBA, "utf-8")
                self._pg_ctl(["-w", "-m", "fast", "stop"])
                self._start_again()
        else:
            self._start_again()
        return self.url

    def _start_again(self) -> None:
        listen = f"-h {TCP_HOST} -p {self.tcp_port}" if self.tcp_port is not None else '-h ""'
        log = str(self.data_dir / "log")
        self._pg_ctl(["-w", "-o", listen, "-o", f"-k {self._socket_dir}", "-l", log, "start"])

    @property
    def url(self) -> str:
        """The superuser's URL over the Unix socket."""
        if self._server is None:
            raise ConfigError("the embedded PostgreSQL is not started")
        url = str(self._server.get_uri())
        # The socket's name carries the port: the default unless TCP asked for another.
        return url if self.tcp_port is None else f"{url}&port={self.tcp_port}"

    def reader_url(self, password: str) -> str:
        """The read-only role's URL over TCP (`tcp_port` only)."""
        if self.tcp_port is None:
            raise ConfigError("the embedded PostgreSQL listens on no TCP port")
        return f"postgresql://{READER}:{password}@{TCP_HOST}:{self.tcp_port}/postgres"

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver import _commands

        # pg_ctl is generated at import time; it runs as pgserver's unprivileged user.
        pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009
        pg_ctl(args, pgdata=self.data_dir, user=self._server.system_user, timeout=30)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are disconnected)."""
        if self._server is not None:
            self._pg_ctl(["-w", "-m", "fast", "stop"])

    def remove(self) -> None:
        """Stop if running and delete the data directory."""
        if self._server is not None:
            with contextlib.suppress(Exception):  # already stopped
                self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
