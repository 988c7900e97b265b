"""What every benchmark shares: a fresh PostgreSQL, real function processes, wrk, one table."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from modelstats import migrate
from modelstats.embedded import EmbeddedPostgres
from modelstats.local_function import function_process

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    case: str
    measure: str
    value: float
    unit: str
    note: str = ""


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

    def close(self) -> None:
        self.stop_functions()
        if self._postgres is not None:
            self._postgres.remove()
            shutil.rmtree(self._home, ignore_errors=True)


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
