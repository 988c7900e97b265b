"""The demo: PingSources whose job is the synthetic one write random figures every tick.

`modelstats run --no-demo` (and `modelstats broker --no-demo`) leave them out; a PingSource
pointed at real logs is never the demo, whatever its name.
"""

from __future__ import annotations

import json

from modelstats.local.knative.resources import Manifests, PingSource


def demo_ping_sources(manifests: Manifests) -> list[PingSource]:
    """The PingSources whose job is the synthetic one: the demo, not anyone's real data."""
    found = []
    for ping in manifests.ping_sources:
        try:
            job = json.loads(ping.data or b"")
        except ValueError:
            continue
        if isinstance(job, dict) and job.get("source") == "synthetic":
            found.append(ping)
    return found


def without_demo(manifests: Manifests) -> Manifests:
    demo = demo_ping_sources(manifests)
    kept = [ping for ping in manifests.ping_sources if ping not in demo]
    return Manifests(manifests.brokers, manifests.triggers, kept, manifests.services)
