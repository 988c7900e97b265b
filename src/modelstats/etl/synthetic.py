"""The synthetic source: random figures for every model and version, for demos and load.

Each tick gives one report per model and version, at the tick's time, with the figures the
first version's ETL script sent: `prediction_accuracy` and `drift` uniform in [0, 1),
`inference_time` uniform in [10, 500) milliseconds (rounded to 4 and 2 decimals).

With a `seed`, the figures depend only on the seed and the tick's time: the same job at the
same tick gives the same reports and the same event id (a redelivered ping is deduplicated by
ingest). Without one, every tick draws afresh and the event id derives from the ping's own id,
so each tick is stored and a redelivery of the same ping is still deduplicated.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime
from typing import Any

from modelstats.core import cloudevents, timestamps
from modelstats.etl.jobs import SyntheticJob

INFERENCE_MS = (10.0, 500.0)


def _rng(job: SyntheticJob, tick: datetime) -> random.Random:
    if job.seed is None:
        return random.Random()
    # A str seed is hashed with SHA-512: the same on every run and every machine.
    return random.Random(f"{job.seed}|{timestamps.format(tick)}")


def reports(job: SyntheticJob, tick: datetime) -> list[dict[str, Any]]:
    rng = _rng(job, tick)
    time = timestamps.format(tick)
    return [
        {
            "model": model,
            "version": version,
            "time": time,
            "metrics": {
                "prediction_accuracy": round(rng.random(), 4),
                "drift": round(rng.random(), 4),
                "inference_time": round(rng.uniform(*INFERENCE_MS), 2),
            },
            "labels": dict(job.labels),
        }
        for model in job.models
        for version in job.versions
    ]


def event_id(job: SyntheticJob, source: str, tick: datetime, ping: cloudevents.Event | None) -> str:
    if job.seed is not None:
        shape = json.dumps([job.models, job.versions, job.labels], sort_keys=True)
        return cloudevents.derived_id(source, "seed", str(job.seed), timestamps.format(tick), shape)
    if ping is not None:
        return cloudevents.derived_id(source, "ping", ping.source, ping.id)
    return cloudevents.derived_id(source, "run", str(uuid.uuid4()))
