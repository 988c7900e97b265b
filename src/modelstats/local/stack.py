"""`modelstats run`: the whole pipeline on one machine, from the Knative manifests.

An embedded PostgreSQL (unless DATABASE_URL is set), the schema migrated, every Knative Service
of the manifests started as a functions-framework process with its container's command, then
the local broker in front of them. Each process runs in its own process group with its output
prefixed by its name; stopping (Ctrl-C, SIGTERM) stops the broker first (it drains and spools
what is still in flight), then the functions, then the database, killing any straggler.

The state of a running stack (URLs, pids, database URL) is written to `<data-dir>/stack.json`
for the commands that need its broker or database (`modelstats replay`, `migrate`, ...) and
the tests.

The demo: a PingSource whose job is the synthetic one writes random figures every tick. The
banner says so; `--no-demo` runs the stack without it (the manifests stay as they are).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from modelstats.core.errors import ConfigError, ModelstatsError
from modelstats.local import manifests as manifests_module
from modelstats.local.manifests import Manifests, PingSource, Service
from modelstats.local.ports import free_port

STATE_FILE = "stack.json"
HEALTH_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0
BROKER_STOP_GRACE_SECONDS = 10.0
DEFAULT_THREADS = "4"
# The banner's examples (and the README's) use a model the demo never writes.
EXAMPLE_MODEL, EXAMPLE_VERSION = "fraud-detector", "v3"
_PRINT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Options:
    broker_port: int = 8080
    stats_port: int = 8081
    ping_every: str | None = None
    data_dir: Path = Path(".modelstats")
    manifests_dir: Path = Path("infra/knative")
    root: Path = Path(".")
    host: str = "127.0.0.1"
    # What the etl function may read (its ETL_ROOT); None: <data_dir>/etl.
    etl_root: Path | None = None
    demo: bool = True
    # The embedded PostgreSQL also listens on 127.0.0.1 at this port (for Grafana).
    db_port: int | None = None


def broker_command(
    manifests_dir: Path,
    port: int,
    spool: Path,
    host: str = "127.0.0.1",
    services: Mapping[str, str] | None = None,
    ping_every: str | None = None,
    demo: bool = True,
) -> list[str]:
    """The `modelstats broker` command line, as the stack (and the tests) start it."""
    argv = [sys.executable, "-m", "modelstats.cli", "broker", "--manifests", str(manifests_dir)]
    argv += ["--host", host, "--port", str(port), "--spool", str(spool)]
    for name, url in (services or {}).items():
        argv += ["--service", f"{name}={url}"]
    if ping_every:
        argv += ["--ping-every", ping_every]
    if not demo:
        argv.append("--no-demo")
    return argv


def shown_url(url: str) -> str:
    """A libpq URL with its password masked, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def demo_ping_sources(manifests: Manifests) -> list[PingSource]:
    """The PingSources whose job is the synthetic one: the demo, not anyone's real data."""
    found = []
    for ping in manifests.ping_sources:
        try:
            job = json.loads(ping.data or b"")
        except ValueError:
            continue
        if isinstance(job, dict) and job.get("source") == "synthetic":
            found.append(ping)
    return found


def without_demo(manifests: Manifests) -> Manifests:
    demo = demo_ping_sources(manifests)
    kept = [ping for ping in manifests.ping_sources if ping not in demo]
    return Manifests(manifests.brokers, manifests.triggers, kept, manifests.services)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers bind: connections of a stack just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def say(name: str, line: str, stream: IO[str] | None = None) -> None:
    """One line of output, prefixed with the name of the process it comes from."""
    out = stream or sys.stdout
    with _PRINT_LOCK:
        out.write(f"{name:<12}| {line}\n")
        out.flush()


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
    The library is loaded in the parent: the forked child only makes the system call."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Process:
    """A child process in its own process group, its output pumped with a name prefix."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    cwd: Path
    url: str = ""
    popen: subprocess.Popen[bytes] | None = None
    exit_reported: bool = False
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
        self._pump = threading.Thread(target=self._pump_output, daemon=True)
        self._pump.start()

    def _pump_output(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        for raw in iter(self.popen.stdout.readline, b""):
            say(self.name, raw.decode("utf-8", errors="replace").rstrip("\n"))

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen else None

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


def image_function(image: str) -> str:
    """`modelstats-ingest:1.2` or `registry/x/modelstats-ingest` -> `ingest`."""
    name = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return name.removeprefix("modelstats-")


def service_argv(service: Service, bin_dir: Path) -> list[str]:
    """The container's command, as the image would run it (see infra/Dockerfile):
    `functions-framework --source functions/<F>/main.py --target <F>`, F from the image name,
    unless the Service overrides `command` (then command + args) or `args`."""
    container = service.container
    function = image_function(container.image) if container.image else service.name
    source = ["functions-framework", "--source", f"functions/{function}/main.py"]
    if container.command:
        argv = [*container.command, *container.args]
    elif container.args and not container.args[0].startswith("-"):
        argv = list(container.args)
    elif container.args:
        argv = [*source, *container.args]
    else:
        argv = [*source, "--target", function]
    local = bin_dir / argv[0]
    if "/" not in argv[0] and local.exists():
        argv[0] = str(local)
    return argv


def service_env(
    service: Service, parent: Mapping[str, str], data_dir: Path, extra: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Manifest literals, overridden by the parent environment, then `extra`; returns the
    environment and the manifest variables left out (cluster paths that do not exist here)."""
    env: dict[str, str] = {}
    skipped: list[str] = []
    for name, value in service.container.env.items():
        if name in extra:
            continue
        if value.startswith("/") and not Path(value).exists():
            skipped.append(name)
            continue
        env[name] = value
    env.update(parent)
    env.setdefault("THREADS", DEFAULT_THREADS)
    runtime = data_dir / "run" / service.name
    runtime.mkdir(parents=True, exist_ok=True)
    # gunicorn's control socket: one directory per process, or they collide.
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env["K_SERVICE"] = service.name
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    _metrics_dir(env, runtime)
    return env, skipped


def _metrics_dir(env: dict[str, str], runtime: Path) -> None:
    """Several gunicorn workers count into files of one directory per service, empty at start
    (core/metrics.py); one worker counts in memory. An inherited directory is never shared:
    two services counting into one would report each other's counts."""
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if env.get("WORKERS", "1").strip() in ("", "1"):
        return
    directory = runtime / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


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


def read_state(data_dir: Path) -> dict[str, Any]:
    path = data_dir / STATE_FILE
    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def running_state(data_dir: Path) -> dict[str, Any]:
    """The state of the stack running in `data_dir`; empty when none is (a stack killed with
    SIGKILL leaves its stack.json behind: its pid is gone)."""
    state = read_state(data_dir)
    pid = state.get("pid")
    if not isinstance(pid, int):
        return {}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return {}
    except PermissionError:
        pass  # alive, another user's
    return state


class Stack:
    def __init__(self, options: Options, environ: Mapping[str, str] | None = None):
        self.options = options
        self.environ = dict(os.environ if environ is None else environ)
        self.data_dir = options.data_dir.resolve()
        self.root = options.root.resolve()
        self.etl_root = (options.etl_root or options.data_dir / "etl").resolve()
        self.processes: list[Process] = []
        self.broker: Process | None = None
        self.postgres: Any = None
        self.database_url = ""
        self.reader_url = ""
        self.ingress = ""
        self.stats_url = ""
        self.demo: list[PingSource] = []
        self._stopping = threading.Event()

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        for flag, port in (
            ("--broker-port", self.options.broker_port),
            ("--stats-port", self.options.stats_port),
            ("--db-port", self.options.db_port),
        ):
            if port is not None and not port_free(self.options.host, port):
                raise ConfigError(f"port {port} is already in use: choose another with {flag}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.etl_root.mkdir(parents=True, exist_ok=True)
        manifests = manifests_module.load(self.root / self.options.manifests_dir)
        if not manifests.brokers:
            raise ConfigError(f"{self.options.manifests_dir}: no Broker in the manifests")
        self.demo = demo_ping_sources(manifests) if self.options.demo else []
        self.database_url = self._database()
        from modelstats.store import migrate

        applied = migrate.migrate(self.database_url)
        say("run", f"database schema ready ({len(applied)} migration(s) applied)")
        if self.options.db_port is not None:
            self._open_to_dashboards()
        self._start_services(manifests)
        self._start_broker(manifests)
        self._write_state()

    def _database(self) -> str:
        url = self.environ.get("DATABASE_URL")
        if url:
            if self.options.db_port is not None:
                raise ConfigError("--db-port is for the embedded PostgreSQL: unset DATABASE_URL")
            say("run", "using DATABASE_URL from the environment")
            return url
        from modelstats.local.embedded import EmbeddedPostgres

        say("run", f"starting the embedded PostgreSQL in {self.data_dir / 'pg'}")
        self.postgres = EmbeddedPostgres(self.data_dir / "pg", tcp_port=self.options.db_port)
        return str(self.postgres.start())

    def _open_to_dashboards(self) -> None:
        """The read-only role may log in over TCP, with the password kept in the data dir."""
        from modelstats.store import reader

        password = reader.local_password(self.data_dir)
        reader.enable_login(self.database_url, password)
        self.reader_url = self.postgres.reader_url(password)

    def _start_services(self, manifests: Manifests) -> None:
        bin_dir = Path(sys.executable).parent
        host = self.options.host
        for service in manifests.services:
            argv = service_argv(service, bin_dir)
            port = self.options.stats_port if service.name == "stats" else free_port(host)
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
                        "STATS_PUBLIC_URL", f"http://{host}:{self.options.stats_port}"
                    ),
                    # The manifests' ETL_ROOT is a cluster mount: jobs read here instead.
                    "ETL_ROOT": str(self.etl_root),
                },
            )
            if skipped:
                say("run", f"{service.name}: not passing {', '.join(skipped)} (cluster paths)")
            process = Process(service.name, argv, env, self.root, url=f"http://{host}:{port}")
            say("run", f"starting {service.name}: {' '.join(argv)} (port {port})")
            process.start()
            self.processes.append(process)
        for process in self.processes:
            if not wait_healthy(process):
                code = process.exit_code()
                state = f"exited with code {code}" if code is not None else "not healthy"
                say(
                    "run",
                    f"WARNING {process.name} {state}: the broker will retry and dead-letter"
                    " the events for it",
                )
                process.exit_reported = code is not None

    def _start_broker(self, manifests: Manifests) -> None:
        host, port = self.options.host, self.options.broker_port
        argv = broker_command(
            self.root / self.options.manifests_dir,
            port,
            self.data_dir / "spool.jsonl",
            host=host,
            services={process.name: process.url for process in self.processes},
            ping_every=self.options.ping_every,
            demo=self.options.demo,
        )
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
        state = {
            "pid": os.getpid(),
            "broker": self.ingress,
            "stats": self.stats_url,
            "database_url": self.database_url,
            "reader_url": self.reader_url or None,
            "etl_root": str(self.etl_root),
            "embedded_database": self.postgres is not None,
            "processes": {
                p.name: {"url": p.url, "pid": p.pid}
                for p in [*self.processes, *([self.broker] if self.broker else [])]
            },
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", "utf-8")

    def banner(self) -> str:
        lines = [
            "",
            "modelstats is running. Ctrl-C stops everything.",
            f"  broker ingress  {self.ingress}",
        ]
        if self.stats_url:
            lines.append(f"  stats           {self.stats_url}")
        for process in self.processes:
            if process.name != "stats":
                lines.append(f"  {process.name:<15} {process.url}  (pid {process.pid})")
        if self.postgres:
            where = f"{self.database_url}  (embedded, in {self.data_dir / 'pg'})"
        else:
            where = f"{shown_url(self.database_url)}  (DATABASE_URL)"
        lines.append(f"  database        {where}")
        if self.reader_url:
            lines.append(f"  read-only SQL   {self.reader_url}  (Grafana: infra/grafana)")
        lines.append(f"  etl root        {self.etl_root}  (the only place jsonl jobs may read)")
        lines += self._demo_lines()
        lines += ["", "Try:"]
        lines.append(
            f"  curl -i {self.ingress} -H 'ce-specversion: 1.0'"
            " -H 'ce-type: modelstats.metric.reported' -H 'ce-source: curl'"
            " -H \"ce-id: $(date +%s%N)\" -H 'content-type: application/json'"
            f' -d \'{{"model": "{EXAMPLE_MODEL}", "version": "{EXAMPLE_VERSION}",'
            ' "metrics": {"prediction_accuracy": 0.19}}\''
        )
        if self.stats_url:
            lines.append(f"  curl {self.stats_url}/stats/{EXAMPLE_MODEL}/{EXAMPLE_VERSION}")
        return "\n".join(lines) + "\n"

    def _demo_lines(self) -> list[str]:
        if not self.options.demo:
            return ["  demo            off (--no-demo)"]
        lines = []
        for ping in self.demo:
            job = json.loads(ping.data or b"{}")
            every = f"every {self.options.ping_every}" if self.options.ping_every else None
            lines.append(
                f"  demo            PingSource {ping.name} writes random"
                f" {', '.join(job.get('models') or ['GPT', 'Llama', 'Mistral'])}"
                f" {', '.join(job.get('versions') or ['v1'])}"
                f" ({every or 'cron ' + ping.schedule.text}), labelled demo=synthetic;"
                " turn it off with: make run ARGS=--no-demo"
            )
        return lines

    # -- supervise and stop ----------------------------------------------------------------

    def supervise(self, should_stop: Callable[[], bool]) -> None:
        """Report children that exit on their own, until asked to stop."""
        while not should_stop():
            for process in [*self.processes, *([self.broker] if self.broker else [])]:
                code = process.exit_code()
                if code is not None and not process.exit_reported:
                    process.exit_reported = True
                    say("run", f"WARNING {process.name} exited with code {code}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Broker first (it drains), then the functions, then the database."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.broker is not None:
            self._stop_group([self.broker], BROKER_STOP_GRACE_SECONDS)
        self._stop_group(self.processes, STOP_GRACE_SECONDS)
        if self.postgres is not None:
            try:
                self.postgres.stop()
                say("run", "embedded PostgreSQL stopped")
            except Exception as error:  # already stopped, or pg_ctl failed
                say("run", f"embedded PostgreSQL: {error}")
        with contextlib.suppress(OSError):
            (self.data_dir / STATE_FILE).unlink()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.data_dir / "run")

    def kill_now(self) -> None:
        for process in [*self.processes, *([self.broker] if self.broker else [])]:
            process.signal_group(signal.SIGKILL)

    @staticmethod
    def _stop_group(processes: list[Process], grace: float) -> None:
        for process in processes:
            process.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            if not process.wait(deadline - time.monotonic()):
                say("run", f"{process.name} did not stop in {grace:g}s: killed")
        for process in processes:
            # Whatever is left of the group (workers of a killed master) goes too.
            process.signal_group(signal.SIGKILL)
            process.wait(2)
            process.join_output()


def run(options: Options) -> int:
    """Start the stack, print the banner, supervise until SIGINT/SIGTERM, stop everything."""
    stop_requested = threading.Event()
    stack = Stack(options)

    def on_signal(signum: int, frame: object) -> None:
        if stop_requested.is_set():
            stack.kill_now()  # a second Ctrl-C: no more waiting
        stop_requested.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except ModelstatsError as error:
            say("run", f"error: {error}", sys.stderr)
            return 1
        if not stop_requested.is_set():
            sys.stdout.write(stack.banner())
            sys.stdout.flush()
            stack.supervise(stop_requested.is_set)
        say("run", "stopping")
        return 0
    finally:
        stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        say("run", "stopped")
