"""An embedded PostgreSQL for `make run` and the tests, from the `pgserver` wheel.

pgserver ships the server binaries and, when run as root (PostgreSQL refuses root), initialises
and runs the cluster as an unprivileged system user. It listens on a Unix socket only, so
nothing collides with another server on the machine.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from pathlib import Path
from typing import Any

from modelstats.core.errors import ConfigError


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

    def __init__(self, data_dir: Path | str):
        self.data_dir = Path(data_dir).resolve()
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
        else:
            log = str(self.data_dir / "log")
            self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", log, "start"])
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise ConfigError("the embedded PostgreSQL is not started")
        return str(self._server.get_uri())

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
