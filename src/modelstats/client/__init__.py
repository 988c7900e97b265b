"""The sending side: report metrics from a model server in one line.

    from modelstats.client import Reporter

    reporter = Reporter("http://127.0.0.1:8080/modelstats/default", source="/fraud/server-1")
    reporter.report("fraud-detector", "v3", {"prediction_accuracy": 0.93, "inference_time": 41.0},
                    labels={"env": "prod"})

`AsyncReporter` is the same for asyncio servers (`report()` is not async; `await flush()`,
`await aclose()`, `async with`).

What it guarantees:

- report() never waits on the network: it validates the report with ingest's own rules (a
  BadInput naming the field, e.g. `report.metrics.drift`, at the call site instead of a dead
  letter later), stamps it with the current time unless given one, and buffers it;
- a background sender posts the buffer as `modelstats.metric.reported` events, binary
  CloudEvents whose data is `{"reports": [...]}`, at most `max_reports_per_event` (1,000)
  reports and `max_event_bytes` (1 MiB) each, when a full event is waiting and every
  `flush_interval` (1 s) otherwise; each event gets a fresh id and the reporter's `source`
  (default `/modelstats/reporter/<hostname>`);
- network errors, 404, 408, 409, 429 and 5xx are retried (what Knative retries) with
  exponential backoff and full jitter (`retry_initial` 0.2 s doubling up to `retry_max` 30 s),
  and no sooner than a `Retry-After` asks; a retry is the same event with the same id, which
  ingest stores once. Any other answer (400: the event's fault) loses the event: counted in
  `failed`, logged once with the broker's reason. A 413 splits the event in two;
- memory is bounded: at most `max_buffered` (100,000) reports wait; beyond it the oldest are
  dropped and counted in `dropped` (logged once);
- `flush(timeout)` sends what is buffered and waits for it; `close(timeout)` (also run at
  interpreter exit) stops taking reports and sends the rest within `close_timeout` (10 s);
- `counters`: reported, sent, dropped, failed, pending, events, retries, last_error, with
  reported == sent + dropped + failed + pending at every moment.

Extra keyword options: `headers` (e.g. an Authorization header for an ingress that wants
one), `timeout` (per request, 10 s), `retry_after_max` (60 s).
"""

from modelstats.client.aio import AsyncReporter
from modelstats.client.core import Counters, ReporterClosed
from modelstats.client.sync import Reporter

__all__ = ["AsyncReporter", "Counters", "Reporter", "ReporterClosed"]
