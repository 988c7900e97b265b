"""Start `modelstats broker` (the command, with its flags) as a real process over a manifests
directory written by the test.

    with run_broker(tmp_path, yaml_text, services={"ingest": url}) as broker:
        httpx.post(broker.ingress, headers=..., content=...)

The process runs in its own process group and is always stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modelstats.local.stack.ports import free_port
from tests.cloudevents_http import binary_headers, json_body

ROOT = Path(__file__).resolve().parent.parent

BROKER = """\
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: modelstats
  annotations:
    eventing.knative.dev/broker.class: MTChannelBasedBroker
spec:
{delivery}
"""


def broker_yaml(delivery: str = "  delivery:\n    retry: 0") -> str:
    return BROKER.format(delivery=delivery)


def trigger_yaml(
    name: str, subscriber: str, filter_block: str = "", delivery: str = "", broker: str = "default"
) -> str:
    """`subscriber` is either a URL (uri) or `ref:<service name>`."""
    if subscriber.startswith("ref:"):
        sub = (
            "    ref:\n      apiVersion: serving.knative.dev/v1\n      kind: Service\n"
            f"      name: {subscriber[4:]}"
        )
    else:
        sub = f"    uri: {subscriber}"
    return (
        "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
        f"metadata:\n  name: {name}\n  namespace: modelstats\n"
        f"spec:\n  broker: {broker}\n  subscriber:\n{sub}\n{filter_block}{delivery}"
    )


def binary_event(
    type: str = "test.event",
    source: str = "/tests",
    id: str | None = None,
    data: Any = None,
    **extensions: str,
) -> tuple[dict[str, str], bytes]:
    content, body = json_body(data)
    return {**binary_headers(type, source, id, **extensions), **content}, body


@dataclass
class BrokerProcess:
    popen: subprocess.Popen[bytes]
    url: str
    spool: Path
    lines: list[str] = field(default_factory=list)

    @property
    def ingress(self) -> str:
        return f"{self.url}/modelstats/default"

    def post(self, headers: Mapping[str, str], body: bytes = b"") -> httpx.Response:
        return httpx.post(self.ingress, headers=dict(headers), content=body, timeout=10)

    def output(self) -> str:
        return "\n".join(self.lines)

    def spooled(self) -> list[dict[str, Any]]:
        import json

        if not self.spool.exists():
            return []
        return [json.loads(line) for line in self.spool.read_text().splitlines() if line]

    def wait_spooled(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = self.spooled()
            if len(entries) >= count:
                return entries
            time.sleep(0.05)
        raise AssertionError(f"expected {count} spooled event(s), got {len(self.spooled())}")

    def stop(self, timeout: float = 15) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)


def _pump(process: BrokerProcess) -> None:
    assert process.popen.stdout is not None
    for raw in iter(process.popen.stdout.readline, b""):
        process.lines.append(raw.decode(errors="replace").rstrip())


def start_broker_process(
    manifests_dir: Path, spool: Path, extra_args: list[str]
) -> tuple[BrokerProcess, int | None]:
    port = free_port()
    argv = [sys.executable, "-m", "modelstats.cli", "broker", "--manifests", str(manifests_dir)]
    argv += ["--port", str(port), "--spool", str(spool), *extra_args]
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    process = BrokerProcess(popen, f"http://127.0.0.1:{port}", spool)
    threading.Thread(target=_pump, args=(process,), daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code = popen.poll()
        if code is not None:
            time.sleep(0.2)  # let the pump read the last lines
            return process, code
        try:
            if httpx.get(f"{process.url}/healthz", timeout=1).status_code == 200:
                return process, None
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.stop()
    raise AssertionError("the broker did not become healthy in 30s:\n" + process.output())


@contextlib.contextmanager
def run_broker(
    tmp_path: Path,
    manifests: str,
    services: Mapping[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[BrokerProcess]:
    directory = tmp_path / f"manifests-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    (directory / "broker.yaml").write_text(manifests)
    args = list(extra_args or [])
    for name, url in (services or {}).items():
        args += ["--service", f"{name}={url}"]
    process, code = start_broker_process(directory, tmp_path / "spool.jsonl", args)
    if code is not None:
        raise AssertionError(f"the broker exited with {code}:\n{process.output()}")
    try:
        yield process
    finally:
        process.stop()
