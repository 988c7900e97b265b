"""The ETL: run a job (synthetic, or JSONL inference logs) and build the one reply event.

The reply is a `modelstats.metric.reported` CloudEvent carrying every report of the run as
`{"reports": [...]}` (ingest stores it), or nothing (the function answers 204).

Event source: `/modelstats/etl/<name>` when the job has a `name`; otherwise
`/modelstats/etl/synthetic`, or `/modelstats/etl/jsonl<absolute path>` (percent-encoded).
The source also keys the JSONL watermark: two jobs reading the same path under different names
count the records once each. Event id (derived, so ingest deduplicates a repeated run): for a
JSONL run, from the source, the window width, the range of windows reported and the byte ranges
read; for a seeded synthetic run, from the seed and the tick; unseeded, from the ping's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cloudevents.http import CloudEvent

from modelstats.core import cloudevents, contract, metrics, timestamps
from modelstats.core.cloudevents import Event
from modelstats.etl import demo, jobs, jsonl, synthetic
from modelstats.etl.inference import job as inference
from modelstats.etl.jobs import DemoJob, InferenceJob, Job, JsonlJob, SyntheticJob
from modelstats.etl.watermark import Reply

LABEL_LIMIT = 200

_reports = metrics.Children(metrics.ETL_REPORTS)


def event_source(job: Job) -> str:
    if job.name is not None:
        return contract.ETL_SOURCE_PREFIX + job.name
    if isinstance(job, JsonlJob):
        return contract.ETL_SOURCE_PREFIX + "jsonl" + quote(job.path)
    return contract.ETL_SOURCE_PREFIX + job.source


def source_label(job: Job) -> str:
    """The `source` label of the etl report: the job's name, else its path (its tail if long)."""
    text = job.name or (job.path if isinstance(job, JsonlJob) else job.source)
    return text if len(text) <= LABEL_LIMIT else "…" + text[-(LABEL_LIMIT - 1) :]


@dataclass(frozen=True)
class RunResult:
    """What one run of a job produced: its event source and the reply it has to send (metric
    reports, unless the job sends logged traffic or labels: `event_type` and `data`)."""

    source: str
    reply: Reply
    event_type: str = contract.METRIC_REPORTED
    data: dict[str, Any] | None = None

    @property
    def reports(self) -> list[dict[str, object]]:
        return self.reply.reports

    def event(self) -> CloudEvent | None:
        """The reply CloudEvent, or None when the run found nothing new."""
        if self.reply.event_id is None:
            return None
        data = self.data if self.data is not None else {"reports": self.reply.reports}
        return cloudevents.reply(
            self.event_type, self.source, self.reply.event_id, data, time=self.reply.time
        )


def run(
    job: Job, ping: Event | None = None, now: datetime | None = None, commit: bool = True
) -> RunResult:
    """Run `job` once (for the tick `ping`, if any). `commit=False`: a dry run, nothing saved."""
    now = now or timestamps.now()
    source = event_source(job)
    if isinstance(job, SyntheticJob):
        tick = ping.time if ping is not None and ping.time is not None else now
        reply = Reply(
            event_id=synthetic.event_id(job, source, tick, ping),
            reports=synthetic.reports(job, tick),
            time=tick,
        )
        return RunResult(source, reply)
    if isinstance(job, InferenceJob):
        return RunResult(source, inference.run(source, dict(job.labels), ping, now, commit))
    if isinstance(job, DemoJob):
        tick = ping.time if ping is not None and ping.time is not None else now
        kind, event_id, data = demo.event(job, source, tick)
        return RunResult(source, Reply(event_id, [], tick), kind, data)
    return RunResult(source, jsonl.run(job, source, source_label(job), ping, now, commit))


def handle(ping: Event) -> CloudEvent | None:
    """What the function does per tick: run the ping's job, reply with its reports (or not)."""
    job = jobs.from_ping(ping)
    outcome = run(job, ping=ping)
    _reports(metrics.etl_source(source_label(job))).inc(len(outcome.reports))
    return outcome.event()
