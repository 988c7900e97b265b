"""What every benchmark shares: a fresh PostgreSQL, real function processes, wrk, one table."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from tests.functions import function_process

from modelstats.core import settings
from modelstats.etl.inference import monitors
from modelstats.local.stack.embedded import EmbeddedPostgres
from modelstats.local.stack.ports import free_port
from modelstats.local.stack.state import StackState
from modelstats.store import db, migrate

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    case: str
    measure: str
    value: float
    unit: str
    note: str = ""
    # Events/s divided by the reference server's stored events/s at the same client count.
    ratio: float | None = None


# The reference server's stored events/s by wrk connections, filled by bench/reference.py (run
# first) so that every throughput row of the same run can print its ratio to it.
REFERENCE_RATES: dict[int, float] = {}


def ratio_to_reference(rate: float, connections: int) -> float | None:
    reference = REFERENCE_RATES.get(connections)
    return rate / reference if reference else None


@dataclass
class Context:
    quick: bool = False
    database_url: str = ""
    _postgres: EmbeddedPostgres | None = None
    _home: Path = Path()
    _processes: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def open(self) -> None:
        self._home = Path(tempfile.mkdtemp(prefix="modelstats-bench-"))
        self._postgres = EmbeddedPostgres(self._home / "pg")
        self.database_url = self._postgres.start()
        migrate.migrate(self.database_url)

    def start_function(self, target: str, source: str, env: dict[str, str] | None = None) -> str:
        """Start `functions-framework` exactly as a container does; return its base URL."""
        return self._processes.enter_context(
            function_process(target, source, self.database_url, env)
        )

    def stop_functions(self) -> None:
        self._processes.close()

    def work_in_process(self) -> None:
        """Point this process's settings, pools and monitors at the bench's database."""
        os.environ["DATABASE_URL"] = self.database_url
        os.environ.pop("MONITORS_FILE", None)
        settings.forget()
        db.close_pools()
        monitors.reset()

    def close(self) -> None:
        self.stop_functions()
        # The pools would otherwise keep pointing at this database once it is gone.
        db.close_pools()
        if self._postgres is not None:
            self._postgres.remove()
            shutil.rmtree(self._home, ignore_errors=True)


class LocalStack:
    """`modelstats run` on the bench's PostgreSQL, on free ports, its output kept."""

    def __init__(self, ctx: Context, home: Path, demo: bool = True):
        self.broker_port, self.stats_port = free_port(), free_port()
        self.data_dir = home / "stack"
        self.lines: list[str] = []
        env = {**os.environ, "DATABASE_URL": ctx.database_url, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "modelstats.cli", "run", "--data-dir", str(self.data_dir)]
        argv += ["--broker-port", str(self.broker_port), "--stats-port", str(self.stats_port)]
        argv += [] if demo else ["--no-demo"]
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 120
        while not any("modelstats is running" in line for line in self.lines):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("modelstats run did not start:\n" + "\n".join(self.lines))
            time.sleep(0.2)
        state = StackState.read(self.data_dir)
        if state is None or state.processes["broker"].pid is None:
            raise RuntimeError("modelstats run is running without a stack.json")
        self.ingress = state.broker
        self.broker_pid = state.processes["broker"].pid

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in iter(self.popen.stdout.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip())

    def stop(self) -> None:
        self.popen.send_signal(2)
        try:
            self.popen.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, 9)
            self.popen.wait(10)

    def spooled(self) -> int:
        spool = self.data_dir / "spool.jsonl"
        return len(spool.read_text().splitlines()) if spool.exists() else 0


def ensure_wrk() -> str:
    """wrk is the load generator (httpx saturates below what a function serves)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        # A fresh machine's package lists may be empty: refresh them if the first try fails.
        for step in ([], ["apt-get", "update", "-qq"]):
            if step:
                subprocess.run(step, check=False, stdout=subprocess.DEVNULL)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL
            )
            found = shutil.which("wrk")
            if found:
                return found
    raise RuntimeError("wrk is needed for the load benchmarks: apt-get install wrk")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %d %d %f %f\\n", summary.requests, summary.duration / 1e6,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(url: str, lua: str, seconds: int, connections: int, threads: int = 1) -> WrkResult:
    """Run wrk with a Lua script (it must define `request`); parse its summary."""
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua + _REPORT)
    try:
        output = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(ln for ln in output.splitlines() if ln.startswith("RESULT "))
    _, requests, duration, non_2xx, errors, p50, p99 = line.split()
    return WrkResult(
        int(requests), float(duration), int(non_2xx), int(errors), float(p50), float(p99)
    )


def print_table(rows: list[Row]) -> None:
    headers = ("case", "measure", "value", "unit", "vs reference", "note")
    cells = [
        (
            r.case,
            r.measure,
            f"{r.value:,.1f}",
            r.unit,
            f"{r.ratio:.2f}x" if r.ratio is not None else "",
            r.note,
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(
            "  ".join(
                [
                    c[0].ljust(widths[0]),
                    c[1].ljust(widths[1]),
                    c[2].rjust(widths[2]),
                    c[3].ljust(widths[3]),
                    c[4].rjust(widths[4]),
                    c[5],
                ]
            )
        )


# Each wrk thread numbers itself (`tid`), so that event ids are unique across threads.
THREADS_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
"""

EVENT_LUA = (
    THREADS_LUA
    + """
local counter = 0
local body = [==[%(body)s]==]
request = function()
  counter = counter + 1
  local headers = {}
  headers["ce-specversion"] = "1.0"
  headers["ce-id"] = "%(prefix)s-" .. tid .. "-" .. counter
  headers["ce-source"] = "%(source)s"
  headers["ce-type"] = "modelstats.metric.reported"
  headers["content-type"] = "application/json"
  return wrk.format("POST", nil, headers, body)
end
"""
)


# wrk waits delay() ms after each answer before a connection's next request: random between 0
# and twice the mean, so that the connections do not fall into step.
PACE_LUA = """
function delay()
  return math.random(0, %(twice_ms)d)
end
"""


def event_lua(body: str, prefix: str, source: str, pause_ms: int = 0) -> str:
    """A wrk script posting binary CloudEvents with `body`, ids `<prefix>-<thread>-<n>`; with
    `pause_ms`, each connection pauses that long on average between an answer and its next
    request (an offered load of about connections * 1000 / pause_ms requests/s)."""
    lua = EVENT_LUA % {"body": body, "prefix": prefix, "source": source}
    return lua + (PACE_LUA % {"twice_ms": 2 * pause_ms} if pause_ms else "")


def settled_count(
    database_url: str, sql: str, params: tuple[object, ...] = (), quiet_seconds: float = 1.5
) -> int:
    """A count that stopped moving for `quiet_seconds` (what was in flight has landed)."""
    last: int | None = None
    stable_since = time.monotonic()
    deadline = time.monotonic() + 120
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(sql, params).fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current != last:
                last, stable_since = current, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_seconds:
                return current
            time.sleep(0.1)
    raise RuntimeError(f"count did not settle: {sql}")


def database_now(database_url: str) -> datetime:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
