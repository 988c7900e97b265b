"""What every benchmark shares: a fresh PostgreSQL, real function processes, wrk, one table."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modelstats import migrate
from modelstats.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    case: str
    measure: str
    value: float
    unit: str
    note: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}/healthz not healthy after {seconds}s")


@dataclass
class Context:
    quick: bool = False
    database_url: str = ""
    _postgres: EmbeddedPostgres | None = None
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def open(self) -> None:
        self._postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="modelstats-bench-")) / "pg")
        self.database_url = self._postgres.start()
        migrate.migrate(self.database_url)

    def start_function(self, target: str, source: str, env: dict[str, str] | None = None) -> str:
        """Start `functions-framework` exactly as a container does; return its base URL."""
        port = free_port()
        process_env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            **(env or {}),
        }
        command = [
            str(Path(sys.executable).parent / "functions-framework"),
            "--source",
            source,
            "--target",
            target,
        ]
        process = subprocess.Popen(command, cwd=ROOT, env=process_env, start_new_session=True)
        self._processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        return url

    def stop_functions(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self._processes.clear()

    def close(self) -> None:
        self.stop_functions()
        if self._postgres is not None:
            self._postgres.remove()


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
    summary.status or 0, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(url: str, lua: str, seconds: int, connections: int, threads: int = 1) -> WrkResult:
    """Run wrk with a Lua script (it must define `request`); parse its summary."""
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua.replace("summary.status or 0", "summary.errors.status") + _REPORT)
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
    headers = ("case", "measure", "value", "unit", "note")
    cells = [(r.case, r.measure, f"{r.value:,.1f}", r.unit, r.note) for r in rows]
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
                    c[4],
                ]
            )
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
