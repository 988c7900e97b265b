"""The demo: random figures every tick, from PingSources whose job is etl's synthetic one, and
a logged model (`demo-fraud`) from those whose job is etl's demo traffic and labels.

Its own manifests are an overlay, `infra/overlays/demo` (a `demo-schedule` PingSource and the
trigger that hands its ticks to etl): the stack runs them beside `infra/knative` unless
`--no-demo`, as `kubectl apply -k infra/overlays/demo` adds them on a cluster. With the demo
off, no PingSource of the synthetic job runs, wherever it is written; a PingSource pointed at
real logs or at the inference job is never the demo, whatever its name.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelstats.core.errors import ConfigError
from modelstats.local.knative import manifests as manifests_module
from modelstats.local.knative.resources import Manifests, PingSource

# The etl jobs that make up data: the synthetic figures, and the demo's logged model.
DEMO_JOBS = ("synthetic", "demo")


def demo_ping_sources(manifests: Manifests) -> list[PingSource]:
    """The PingSources whose job makes data up: the demo, not anyone's real data."""
    found = []
    for ping in manifests.ping_sources:
        try:
            job = json.loads(ping.data or b"")
        except ValueError:
            continue
        if isinstance(job, dict) and job.get("source") in DEMO_JOBS:
            found.append(ping)
    return found


def without_demo(manifests: Manifests) -> Manifests:
    demo = demo_ping_sources(manifests)
    kept = [ping for ping in manifests.ping_sources if ping not in demo]
    return Manifests(manifests.brokers, manifests.triggers, kept, manifests.services)


def load(directory: Path, demo_dir: Path | None, demo: bool) -> Manifests:
    """What a broker runs: the directory's manifests, joined by the demo's (`demo_dir`) while
    the demo is on; with it off, the directory's without any PingSource of the synthetic job."""
    loaded = manifests_module.load(directory)
    if not demo:
        return without_demo(loaded)
    if demo_dir is None:
        return loaded
    return _joined(loaded, manifests_module.load(demo_dir), demo_dir)


def _joined(base: Manifests, extra: Manifests, origin: Path) -> Manifests:
    twice = sorted(_names(base) & _names(extra))
    if twice:
        kind, namespace, name = twice[0]
        raise ConfigError(f"{origin}: {kind} {namespace}/{name} is in the manifests already")
    return Manifests(
        [*base.brokers, *extra.brokers],
        [*base.triggers, *extra.triggers],
        [*base.ping_sources, *extra.ping_sources],
        [*base.services, *extra.services],
    )


def _names(manifests: Manifests) -> set[tuple[str, str, str]]:
    return (
        {("Broker", b.namespace, b.name) for b in manifests.brokers}
        | {("Trigger", t.namespace, t.name) for t in manifests.triggers}
        | {("PingSource", p.namespace, p.name) for p in manifests.ping_sources}
        | {("Service", s.namespace, s.name) for s in manifests.services}
    )
