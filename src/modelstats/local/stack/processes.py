"""The stack's child processes: each in its own process group, its output prefixed by its name,
started again in place when the supervisor restarts it (same command, environment and port).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx

HEALTH_TIMEOUT_SECONDS = 60.0
_PRINT_LOCK = threading.Lock()


def say(name: str, line: str, stream: IO[str] | None = None) -> None:
    """One line of output, prefixed with the name of the process it comes from."""
    out = stream or sys.stdout
    with _PRINT_LOCK:
        out.write(f"{name:<12}| {line}\n")
        out.flush()


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers bind: connections of a stack just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL("libc.so.6", use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if `modelstats run` itself dies (Linux only).
    The library is loaded in the parent: the forked child only makes the system call.
    The signal follows the parent *thread* that forked, so the stack starts and restarts
    children from its main thread only."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(code: int) -> str:
    """`-9 (SIGKILL)` for a signal, `3` for an exit status."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"{code} ({signal.Signals(-code).name})"
    return str(code)


@dataclass
class Process:
    """A child process in its own process group, its output pumped with a name prefix."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    cwd: Path
    url: str = ""
    popen: subprocess.Popen[bytes] | None = None
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self.popen = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
            preexec_fn=_die_with_parent,
        )
        self._pump = threading.Thread(target=self._pump_output, args=(self.popen,), daemon=True)
        self._pump.start()

    def _pump_output(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        for raw in iter(popen.stdout.readline, b""):
            say(self.name, raw.decode("utf-8", errors="replace").rstrip("\n"))

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen else None

    # -- what the supervisor needs (see supervisor.Child) -----------------------------------

    def ended(self) -> str | None:
        code = self.exit_code()
        return None if code is None else f"exited with {describe_exit(code)}"

    def can_restart(self) -> bool:
        """The port is free again: the group's leftovers (workers of a killed master) are
        gone and released the listening socket."""
        address = urlsplit(self.url)
        if not address.hostname or not address.port:
            return True
        return port_free(address.hostname, address.port)

    def clear(self) -> None:
        """Before a restart: whatever is left of the old group goes (orphaned workers still
        hold the port and would keep serving with a dead master)."""
        self.signal_group(signal.SIGKILL)

    def restart(self) -> None:
        self.start()

    def ready(self) -> bool:
        return self.url == "" or probe_health(self.url)

    # -- stopping ---------------------------------------------------------------------------

    def signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def wait(self, timeout: float) -> bool:
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def join_output(self) -> None:
        if self._pump is not None:
            self._pump.join(timeout=2)


def probe_health(url: str, timeout: float = 1.0) -> bool:
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.get(f"{url}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(process: Process, timeout: float = HEALTH_TIMEOUT_SECONDS) -> bool:
    """Poll GET /healthz until 200; False if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.exit_code() is not None:
                return False
            try:
                if client.get(f"{process.url}/healthz").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return False
