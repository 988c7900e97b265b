"""Alert latency: from posting a stored event to the alert function until the webhook has it.

One alert process (functions-framework, as its container runs it) with the first version's rule
(every sample judged alone: the shipped file's commented example, so that one event fires; the
shipped LowPredictionAccuracy waits for 5 samples over 5 minutes) and ALERT_WEBHOOK_URL pointing
at a receiver in this process. Each event is a new series below the threshold, so each one fires
and makes exactly one webhook notification; events go one
at a time (the next once the previous notification has arrived), so the figures are latency, not
throughput. Both ends of each measurement are read from this process's monotonic clock.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from modelstats.core import contract

from .common import Context, Row, percentile

# The first version's rule (infra/knative/rules/alert-rules.yaml holds it as an example).
PER_SAMPLE_RULE = """
rules:
  - name: LowPredictionAccuracySample
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
    severity: critical
"""


class _Webhook:
    """A loopback receiver that notes when each alert (by model name) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self._changed = threading.Condition()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                moment = time.monotonic()
                model = json.loads(body)["commonLabels"]["model"]
                with webhook._changed:
                    webhook.arrived.setdefault(model, moment)
                    webhook._changed.notify_all()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait(self, model: str, seconds: float = 10) -> float:
        deadline = time.monotonic() + seconds
        with self._changed:
            while model not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no webhook call for {model} within {seconds}s")
                self._changed.wait(left)
            return self.arrived[model]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _event(model: str, moment: datetime) -> tuple[dict[str, str], bytes]:
    report = {
        "model": model,
        "version": "v1",
        "time": moment.isoformat().replace("+00:00", "Z"),
        "metrics": {"prediction_accuracy": 0.19, "drift": 0.11},
        "labels": {},
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-id": uuid.uuid4().hex,
        "ce-source": contract.INGEST_SOURCE,
        "ce-type": contract.METRIC_STORED,
        "content-type": "application/json",
    }
    return headers, json.dumps({"reports": [report]}).encode()


def run(ctx: Context) -> list[Row]:
    count = 50 if ctx.quick else 200
    warmup = 10
    webhook = _Webhook()
    rules = Path(tempfile.mkdtemp(prefix="modelstats-bench-rules-")) / "rules.yaml"
    rules.write_text(PER_SAMPLE_RULE)
    try:
        url = ctx.start_function(
            "alert",
            "functions/alert/main.py",
            env={
                "ALERT_RULES_FILE": str(rules),
                "ALERT_WEBHOOK_URL": webhook.url,
                "WORKERS": "1",
                "THREADS": "4",
                "DB_POOL_SIZE": "4",
            },
        )
        start = datetime.now(UTC) - timedelta(minutes=10)
        to_webhook: list[float] = []
        to_reply: list[float] = []
        with httpx.Client(base_url=url, timeout=10) as client:
            for n in range(warmup + count):
                model = f"bench-{n}"
                headers, body = _event(model, start + timedelta(milliseconds=n))
                sent = time.monotonic()
                response = client.post("/", headers=headers, content=body)
                replied = time.monotonic()
                if response.status_code != 200:
                    raise RuntimeError(f"alert answered {response.status_code}: {response.text}")
                arrived = webhook.wait(model)
                if n >= warmup:
                    to_reply.append((replied - sent) * 1000)
                    to_webhook.append((arrived - sent) * 1000)
    finally:
        webhook.close()
        rules.unlink()
        rules.parent.rmdir()
    note = f"{count} events, one at a time, each firing a new alert"
    return [
        Row("alert: stored event -> webhook", "p50", percentile(to_webhook, 50), "ms", note),
        Row("alert: stored event -> webhook", "p99", percentile(to_webhook, 99), "ms", ""),
        Row("alert: stored event -> reply", "p50", percentile(to_reply, 50), "ms", "200 + fired"),
        Row("alert: stored event -> reply", "p99", percentile(to_reply, 99), "ms", ""),
    ]
