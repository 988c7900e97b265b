"""`modelstats run`: the whole pipeline on one machine, from the Knative manifests.

An embedded PostgreSQL (unless DATABASE_URL is set), the schema migrated, every Knative Service
of the manifests started as a functions-framework process with its container's command, then
the local broker in front of them. Each process runs in its own process group with its output
prefixed by its name. While it runs, a process (or the embedded database) that exits is
restarted in place with backoff, and one that keeps failing stops the stack (supervisor.py).
Stopping (Ctrl-C, SIGTERM) stops the broker first (it drains and spools what is still in
flight), then the functions, then the database, killing any straggler; a second Ctrl-C makes
the broker spool at once and waits for nothing else; a third kills everything. A second SIGTERM
is not a second Ctrl-C: it changes nothing (`make run` forwards the SIGTERM of its group).

The state of a running stack (URLs, pids, database URL) is written to `<data-dir>/stack.json`
for the commands that need its broker or database (`modelstats replay`, `migrate`, ...) and
the tests, again after every restart.

The demo: the overlay `infra/overlays/demo` (a PingSource with etl's synthetic job, random
figures every tick, and its trigger) runs beside the manifests. The banner says so; `--no-demo`
runs the stack without it, and without any other PingSource of the synthetic job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelstats.core import durations
from modelstats.core.errors import ConfigError, ModelstatsError
from modelstats.local.broker import demo, spool
from modelstats.local.broker.launch import BrokerConfig
from modelstats.local.knative.resources import Manifests, PingSource
from modelstats.local.stack import banner
from modelstats.local.stack.ports import free_port
from modelstats.local.stack.processes import Process, port_free, say, wait_healthy
from modelstats.local.stack.services import left_out, service_argv, service_env
from modelstats.local.stack.state import PostgresState, ProcessState, StackState
from modelstats.local.stack.supervisor import CrashLoop, RestartPolicy, Supervisor

STOP_GRACE_SECONDS = 5.0
BROKER_STOP_GRACE_SECONDS = 10.0
SUPERVISE_EVERY_SECONDS = 0.2


class SignalFlag:
    """A flag that a signal handler sets: a plain attribute, no lock. A handler runs on the main
    thread between two bytecodes, possibly while that thread holds the lock inside a
    threading.Event (its wait() holds it on the way in and out); Event.set() in the handler
    then waits for that lock, on its own thread, forever. `modelstats run` under make gets
    each SIGTERM twice, close together: twice in full test runs it then ignored that SIGTERM
    and the Ctrl-C after it."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Whether it is set, looked at for up to `timeout` seconds (in 20 ms sleeps: a signal
        ends none early, but its handler runs within one)."""
        deadline = time.monotonic() + timeout
        while not self._set:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.02))
        return True


@dataclass(frozen=True)
class StackConfig:
    """What `modelstats run` is started with (its flags)."""

    broker_port: int = 8080
    stats_port: int = 8081
    ping_every: str | None = None
    data_dir: Path = Path(".modelstats")
    manifests_dir: Path = Path("infra/knative")
    root: Path = Path(".")
    host: str = "127.0.0.1"
    # What the etl function may read (its ETL_ROOT); None: <data_dir>/etl.
    etl_root: Path | None = None
    # The demo's manifests, run beside manifests_dir while `demo` is on (None: no overlay).
    demo_dir: Path | None = None
    demo: bool = True
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    # The embedded PostgreSQL also listens on 127.0.0.1 at this port (for Grafana).
    db_port: int | None = None


class Stack:
    def __init__(self, config: StackConfig, environ: Mapping[str, str] | None = None):
        self.config = config
        self.environ = dict(os.environ if environ is None else environ)
        self.data_dir = config.data_dir.resolve()
        self.root = config.root.resolve()
        self.etl_root = (config.etl_root or config.data_dir / "etl").resolve()
        self.manifests_dir = self.root / config.manifests_dir
        self.demo_dir = self.root / config.demo_dir if config.demo_dir else None
        self.processes: list[Process] = []
        self.broker: Process | None = None
        self.postgres: Any = None
        self.database_url = ""
        self.reader_url = ""
        self.ingress = ""
        self.stats_url = ""
        self.demo: list[PingSource] = []
        # Events spooled by an earlier run, waiting for `modelstats replay`.
        self.spooled = 0
        self.supervisor: Supervisor | None = None
        self._stopping = threading.Event()
        # Set by the signal handlers of run() below.
        self._stop_requested = SignalFlag()
        self._hurry = SignalFlag()

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        for flag, port in (
            ("--broker-port", self.config.broker_port),
            ("--stats-port", self.config.stats_port),
            ("--db-port", self.config.db_port),
        ):
            if port is not None and not port_free(self.config.host, port):
                raise ConfigError(f"port {port} is already in use: choose another with {flag}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.etl_root.mkdir(parents=True, exist_ok=True)
        manifests = demo.load(self.manifests_dir, self.demo_dir, self.config.demo)
        if not manifests.brokers:
            raise ConfigError(f"{self.config.manifests_dir}: no Broker in the manifests")
        self.demo = demo.demo_ping_sources(manifests)
        self.spooled = spool.count(self.data_dir / spool.FILE_NAME)
        self.database_url = self._database()
        from modelstats.store import migrate

        applied = migrate.migrate(self.database_url)
        say("run", f"database schema ready ({len(applied)} migration(s) applied)")
        if self.config.db_port is not None:
            self._open_to_dashboards()
        self._start_services(manifests)
        self._start_broker(manifests)
        self._write_state()

    def _database(self) -> str:
        url = self.environ.get("DATABASE_URL")
        if url:
            if self.config.db_port is not None:
                raise ConfigError("--db-port is for the embedded PostgreSQL: unset DATABASE_URL")
            say("run", "using DATABASE_URL from the environment")
            return url
        from modelstats.local.stack.embedded import EmbeddedPostgres

        say("run", f"starting the embedded PostgreSQL in {self.data_dir / 'pg'}")
        self.postgres = EmbeddedPostgres(self.data_dir / "pg", tcp_port=self.config.db_port)
        return str(self.postgres.start())

    def _open_to_dashboards(self) -> None:
        """The read-only role may log in over TCP, with the password kept in the data dir."""
        from modelstats.store import reader

        password = reader.local_password(self.data_dir)
        reader.enable_login(self.database_url, password)
        self.reader_url = self.postgres.reader_url(password)

    def _start_services(self, manifests: Manifests) -> None:
        bin_dir = Path(sys.executable).parent
        host = self.config.host
        for service in manifests.services:
            argv = service_argv(service, bin_dir)
            port = self.config.stats_port if service.name == "stats" else free_port(host)
            env, skipped = service_env(
                service,
                self.environ,
                self.data_dir,
                {
                    "DATABASE_URL": self.database_url,
                    "PORT": str(port),
                    "HOST": host,
                    # Links in notifications point at this stack's stats, not the cluster's.
                    "STATS_PUBLIC_URL": self.environ.get(
                        "STATS_PUBLIC_URL", f"http://{host}:{self.config.stats_port}"
                    ),
                    # The manifests' ETL_ROOT is a cluster mount: jobs read here instead.
                    "ETL_ROOT": str(self.etl_root),
                    # The manifests' MONITORS_FILE is a ConfigMap mount: the file beside them.
                    "MONITORS_FILE": str(
                        self.root / self.config.manifests_dir / "monitors" / "monitors.yaml"
                    ),
                },
            )
            for name in skipped:
                say("run", left_out(service, name))
            process = Process(service.name, argv, env, self.root, url=f"http://{host}:{port}")
            say("run", f"starting {service.name}: {' '.join(argv)} (port {port})")
            process.start()
            self.processes.append(process)
        for process in self.processes:
            # One that exited is the supervisor's to report and restart.
            if not wait_healthy(process) and process.exit_code() is None:
                say(
                    "run",
                    f"WARNING {process.name} is not healthy: the broker will retry and"
                    " dead-letter the events for it",
                )

    def _start_broker(self, manifests: Manifests) -> None:
        host, port = self.config.host, self.config.broker_port
        every = self.config.ping_every
        ping_every = durations.parse(every, field="--ping-every").total_seconds() if every else None
        config = BrokerConfig(
            manifests_dir=self.manifests_dir,
            demo_dir=self.demo_dir,
            spool_path=self.data_dir / spool.FILE_NAME,
            host=host,
            port=port,
            services={process.name: process.url for process in self.processes},
            ping_every=ping_every,
            demo=self.config.demo,
        )
        argv = config.command()
        env = {**self.environ, "PYTHONUNBUFFERED": "1"}
        self.broker = Process("broker", argv, env, self.root, url=f"http://{host}:{port}")
        self.broker.start()
        if not wait_healthy(self.broker, timeout=30):
            raise ConfigError("the broker did not start (see its output above)")
        first = manifests.brokers[0]
        self.ingress = f"{self.broker.url}/{first.namespace}/{first.name}"
        stats = next((p for p in self.processes if p.name == "stats"), None)
        self.stats_url = stats.url if stats else ""

    def _write_state(self) -> None:
        children = [*self.processes, *([self.broker] if self.broker else [])]
        postgres = self.postgres
        StackState(
            pid=os.getpid(),
            broker=self.ingress,
            stats=self.stats_url,
            database_url=self.database_url,
            reader_url=self.reader_url or None,
            etl_root=str(self.etl_root),
            embedded_database=postgres is not None,
            processes={p.name: ProcessState(p.url, p.pid) for p in children},
            postgres=PostgresState(postgres.pid, str(postgres.data_dir)) if postgres else None,
        ).write(self.data_dir)

    # -- supervise and stop ----------------------------------------------------------------

    def supervise(self) -> None:
        """Restart children that exit, until asked to stop; CrashLoop when one keeps failing."""
        children: list[Any] = [*self.processes, *([self.broker] if self.broker else [])]
        if self.postgres is not None:
            children.append(self.postgres)
        self.supervisor = Supervisor(
            children,
            self.config.restart,
            say=lambda line: say("run", line),
            on_restart=lambda child: self._write_state(),
            stopping=self._stop_requested.is_set,
        )
        while not self._stop_requested.wait(SUPERVISE_EVERY_SECONDS):
            self.supervisor.check()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def request_stop(self) -> None:
        """First Ctrl-C (or SIGTERM): stop restarting, then stop everything gracefully."""
        self._stop_requested.set()

    def hurry(self) -> None:
        """Second Ctrl-C: the broker spools what is in flight at once and exits (SIGQUIT), and
        nothing else is waited for. Called from a signal handler: no output, no locks."""
        self._stop_requested.set()
        self._hurry.set()
        if self.broker is not None:
            self.broker.signal_group(signal.SIGQUIT)

    def stop(self) -> None:
        """Broker first (it drains, or spools at once when hurried), then the functions, then
        the database."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._stop_requested.set()
        if self.broker is not None:
            quick = self._hurry.is_set()
            self.broker.signal_group(signal.SIGQUIT if quick else signal.SIGTERM)
            self._stop_group([self.broker], BROKER_STOP_GRACE_SECONDS, signalled=True)
        if self._hurry.is_set():
            say("run", "not waiting for the functions (second Ctrl-C): killing them")
        self._stop_group(self.processes, STOP_GRACE_SECONDS)
        if self.postgres is not None:
            self.postgres.wait_restarted(timeout=35)
            try:
                self.postgres.stop()
                say("run", "embedded PostgreSQL stopped")
            except Exception as error:  # already stopped, or pg_ctl failed
                say("run", f"embedded PostgreSQL: {error}")
        StackState.remove(self.data_dir)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.data_dir / "run")

    def kill_now(self) -> None:
        for process in [*self.processes, *([self.broker] if self.broker else [])]:
            process.signal_group(signal.SIGKILL)

    def _stop_group(self, processes: list[Process], grace: float, signalled: bool = False) -> None:
        """SIGTERM, then SIGKILL to what is still there after `grace` seconds. A second Ctrl-C
        ends the wait at once, except for the broker: it is writing its spool."""
        if not signalled:
            for process in processes:
                process.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            keeps_grace = process is self.broker
            while process.exit_code() is None and time.monotonic() < deadline:
                if self._hurry.is_set() and not keeps_grace:
                    break
                process.wait(0.1)
            if process.exit_code() is None and (keeps_grace or not self._hurry.is_set()):
                say("run", f"{process.name} did not stop in {grace:g}s: killed")
        for process in processes:
            # Whatever is left of the group (workers of a killed master) goes too.
            process.signal_group(signal.SIGKILL)
            process.wait(2)
            process.join_output()


def run(config: StackConfig) -> int:
    """Start the stack, print the banner, supervise until SIGINT/SIGTERM, stop everything.

    A first Ctrl-C (or SIGTERM) stops gracefully; a second Ctrl-C makes the broker spool what
    is in flight at once and stops the rest without waiting; a third kills every process. A
    repeated SIGTERM is the same request again, not a second Ctrl-C: `make run` forwards the
    SIGTERM its process group gets, so the stack gets it twice."""
    stack = Stack(config)
    interrupts = 0

    def on_signal(signum: int, frame: object) -> None:
        nonlocal interrupts
        if signum != signal.SIGINT:
            stack.request_stop()
            return
        interrupts += 1
        if interrupts == 1:
            stack.request_stop()
        elif interrupts == 2:
            stack.hurry()
        else:
            stack.kill_now()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        try:
            stack.start()
        except ModelstatsError as error:
            say("run", f"error: {error}", sys.stderr)
            return 1
        if not stack.stop_requested:
            sys.stdout.write(banner.render(stack))
            sys.stdout.flush()
            try:
                stack.supervise()
            except CrashLoop:
                code = 1  # the supervisor said which child and why
        say("run", "stopping")
        return code
    finally:
        stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        say("run", "stopped" if code == 0 else f"stopped (exit {code})")
