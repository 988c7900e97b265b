"""An embedded PostgreSQL for `make run` and the tests, from the `pgserver` wheel.

pgserver ships the server binaries and, when run as root (PostgreSQL refuses root), initialises
and runs the cluster as an unprivileged system user. It listens on a Unix socket only, so
nothing collides with another server on the machine.

Under `modelstats run` it is one of the supervised children (supervisor.py): it is restarted in
place, with the same data directory and socket, when its postmaster goes away.

With `tcp_port` it also listens on 127.0.0.1 at that port, for tools that cannot use a Unix
socket (Grafana). initdb's trust authentication would then let every local user in as the
superuser, so pg_hba.conf is rewritten first: the socket keeps trust as before, TCP accepts
only the read-only role (store/reader.py), with its password.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

from modelstats.core.errors import ConfigError
from modelstats.store.reader import ROLE as READER

TCP_HOST = "127.0.0.1"
HBA = f"""\
# Written by modelstats (local/stack/embedded.py) for --db-port: the Unix socket trusts, as initdb
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

    name = "postgres"

    def __init__(self, data_dir: Path | str, tcp_port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.tcp_port = tcp_port
        self._server: Any = None
        self._socket_dir = ""
        self._postmaster: int | None = None
        self._restarting: threading.Thread | None = None
        self._restart_error: Exception | None = None

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
        self._postmaster = self._read_postmaster_pid()
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

    # -- as a supervised child (supervisor.Child) -------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._postmaster

    def _read_postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    def ended(self) -> str | None:
        """pg_ctl detaches the postmaster, so it is no child of ours to wait for: its pid (from
        postmaster.pid, read at each start) is checked with signal 0 instead of a connection
        probe. That is free every few hundred milliseconds, opens no session and writes no
        server log, and it sees exactly what a kubelet restarts on, the process ending (kill -9,
        a crash, `pg_ctl stop`). A server that runs but hangs is a liveness probe's business,
        which the local stack does not emulate: the functions answer 503 and the broker
        retries."""
        if self._restarting is not None:
            if self._restarting.is_alive():
                return None
            self._restarting = None
            if self._restart_error is not None:
                return f"could not be started: {self._restart_error}"
        pid = self._postmaster
        if pid is None:
            return "is not running (no postmaster.pid)"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"exited (postmaster pid {pid} is gone)"
        except PermissionError:
            pass  # alive, under pgserver's own user
        return None

    def can_restart(self) -> bool:
        return True

    def clear(self) -> None:
        """Nothing to do: the postmaster's backends exit when it dies, and the server refuses
        to start (a failed restart, retried with backoff) while one still holds its memory."""

    def restart(self) -> None:
        """`pg_ctl start -w` (crash recovery included) in a thread, so the supervisor goes on
        watching the other children meanwhile."""
        self._restart_error = None

        def start() -> None:
            try:
                self.start()
            except Exception as error:  # pg_ctl's own failure, reported by ended()
                self._restart_error = error

        self._restarting = threading.Thread(target=start, name="postgres-restart", daemon=True)
        self._restarting.start()

    def ready(self) -> bool:
        return self._restarting is None or not self._restarting.is_alive()

    def wait_restarted(self, timeout: float) -> None:
        """Let a restart in progress finish (before stopping the server)."""
        if self._restarting is not None:
            self._restarting.join(timeout)

    def remove(self) -> None:
        """Stop if running and delete the data directory."""
        if self._server is not None:
            with contextlib.suppress(Exception):  # already stopped
                self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
