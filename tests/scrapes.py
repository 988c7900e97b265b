"""Reading a /metrics answer in tests with prometheus_client's own parser.

before = samples(client.get("/metrics").text)
... traffic ...
after = samples(client.get("/metrics").text)
assert moved(before, after, "modelstats_ingest_events_total", outcome="stored") == 1
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]


def key(name: str, **labels: str) -> Key:
    return (name, tuple(sorted(labels.items())))


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much one series grew between two scrapes (absent counts as 0)."""
    wanted = key(name, **labels)
    return after.get(wanted, 0.0) - before.get(wanted, 0.0)
