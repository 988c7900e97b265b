"""The demo: infra/overlays/demo beside infra/knative while it is on, and no synthetic job at all
while it is off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelstats.core.errors import ConfigError
from modelstats.local.broker import demo
from modelstats.local.knative import manifests
from modelstats.local.knative.resources import Manifests

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "infra" / "knative"
OVERLAY = ROOT / "infra" / "overlays" / "demo"


def synthetic(manifests: Manifests) -> set[str]:
    return {ping.name for ping in demo.demo_ping_sources(manifests)}


def test_the_demo_runs_its_overlay_beside_the_manifests() -> None:
    loaded = demo.load(BASE, OVERLAY, demo=True)
    assert "demo-schedule" in synthetic(loaded)
    assert {"etl-schedule", "alert-schedule", "demo-schedule"} <= {
        ping.name for ping in loaded.ping_sources
    }
    (trigger,) = [t for t in loaded.triggers if t.name == "etl-demo-ping"]
    assert trigger.subscriber.ref is not None and trigger.subscriber.ref.name == "etl"
    (ping,) = [p for p in loaded.ping_sources if p.name == "demo-schedule"]
    assert trigger.filter.matches({"type": "dev.knative.sources.ping", "source": ping.event_source})
    assert json.loads(ping.data or b"")["labels"] == {"demo": "synthetic"}


def test_with_the_demo_off_no_synthetic_job_runs() -> None:
    off = demo.load(BASE, OVERLAY, demo=False)
    assert synthetic(off) == set()
    names = {ping.name for ping in off.ping_sources}
    assert "alert-schedule" in names and "demo-schedule" not in names
    assert "etl-demo-ping" not in {t.name for t in off.triggers}
    # Without an overlay the manifests run as they are.
    assert demo.load(BASE, None, demo=True) == manifests.load(BASE)


def test_an_overlay_may_not_redefine_an_object(tmp_path: Path) -> None:
    (tmp_path / "again.yaml").write_text((BASE / "pingsource.yaml").read_text())
    with pytest.raises(ConfigError, match=r"PingSource modelstats/\S+ is in the manifests already"):
        demo.load(BASE, tmp_path, demo=True)
