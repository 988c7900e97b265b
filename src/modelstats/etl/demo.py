"""The demo's logged model: a fraud detector whose traffic drifts half of every hour, and whose
labels come a few minutes after its predictions, so a first run shows profiles, drift and
accuracy moving together (docs/inference.md).

Each tick (`{"source": "demo", "part": "traffic"}`) logs `rows` calls of the minute before it
as a `modelstats.inference.logged` event: features `amount` (log-normal), `country` (NL, DE, FR,
BE), `age`; the model flags a call when the amount is large and the country is NL, the pattern
it was trained on. From minute 30 to 59 of every hour (UTC) the traffic drifts: amounts grow,
BE takes half of the calls, and the fraud moves (BE's large amounts are it, NL's no longer
are), so its accuracy falls from about 0.97 to about 0.6.

`{"source": "demo", "part": "labels"}` sends, as a `modelstats.label.reported` event, the truth
about the calls logged `delay` earlier (9 in 10 of them; the others never get a label). The
calls of a tick depend only on the model and the tick's minute, so the labels part can name
them again, and a redelivered ping sends the same event (the same id: ingest keeps it once).
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from modelstats.core import cloudevents, timestamps
from modelstats.etl.jobs import DemoJob
from modelstats.etl.windows import start_of

MINUTE = timedelta(minutes=1)
COUNTRIES = ("NL", "DE", "FR", "BE")


def drifting(minute: datetime) -> bool:
    return minute.minute >= 30


def _calls(job: DemoJob, minute: datetime) -> list[dict[str, Any]]:
    """The calls of one minute: features, the model's prediction and score, and the truth."""
    rng = random.Random(f"{job.model}|{job.version}|{timestamps.format(minute)}")
    drifted = drifting(minute)
    shares = (0.3, 0.1, 0.1, 0.5) if drifted else (0.5, 0.3, 0.18, 0.02)
    calls = []
    for i in range(job.rows):
        amount = round(rng.lognormvariate(4.6 + (1.2 if drifted else 0.0), 0.8), 2)
        country = rng.choices(COUNTRIES, shares)[0]
        age = rng.randint(18, 90)
        score = 1 / (1 + math.exp(-(amount - 300) / 60)) if country == "NL" else 0.05
        predicted = int(score > 0.5)
        # Drifted, the fraud moved: large amounts from BE are it, those from NL no longer are.
        risky = ("BE",) if drifted else ("NL", "BE")
        fraud = (amount > 300 and country in risky) or rng.random() < 0.03
        calls.append(
            {
                "id": f"demo-{timestamps.format(minute)}-{i}",
                "time": timestamps.format(minute + timedelta(seconds=60 * i / job.rows)),
                "features": {"amount": amount, "country": country, "age": age},
                "prediction": predicted,
                "score": round(score, 4),
                "latency_ms": round(rng.uniform(8, 40), 2),
                "truth": int(fraud),
                "labelled": rng.random() < 0.9,
            }
        )
    return calls


def event(job: DemoJob, source: str, tick: datetime) -> tuple[str, str, dict[str, Any]]:
    """The type, id and data of the tick's event."""
    if job.part == "traffic":
        minute = start_of(tick, MINUTE) - MINUTE
        calls = _calls(job, minute)
        records = [
            {k: call[k] for k in ("id", "time", "features", "prediction", "score", "latency_ms")}
            for call in calls
        ]
        data: dict[str, Any] = {"model": job.model, "version": job.version, "records": records}
        kind = "modelstats.inference.logged"
    else:
        minute = start_of(tick - job.delay, MINUTE) - MINUTE
        labels = [
            {"id": call["id"], "label": call["truth"], "time": timestamps.format(tick)}
            for call in _calls(job, minute)
            if call["labelled"]
        ]
        data = {"model": job.model, "labels": labels}
        kind = "modelstats.label.reported"
    event_id = cloudevents.derived_id(source, job.part, job.model, timestamps.format(minute))
    return kind, event_id, data
