"""`modelstats run` gives each service with several gunicorn workers its own, empty
PROMETHEUS_MULTIPROC_DIR, and never passes one on to a single-worker service."""

from __future__ import annotations

from pathlib import Path

from modelstats.local.knative import manifests
from modelstats.local.knative.resources import Service
from modelstats.local.stack.services import service_env

ROOT = Path(__file__).resolve().parents[3]


def services() -> dict[str, Service]:
    loaded = manifests.load(ROOT / "infra" / "knative")
    return {service.name: service for service in loaded.services}


def test_several_workers_get_a_fresh_directory_of_their_own(tmp_path: Path) -> None:
    found = services()
    parent = {"WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": "/shared/by/everyone"}
    stale = tmp_path / "run" / "ingest" / "prometheus"
    stale.mkdir(parents=True)
    (stale / "counter_7.db").write_bytes(b"left by the last run")
    ingest, _ = service_env(found["ingest"], parent, tmp_path, {})
    alert, _ = service_env(found["alert"], parent, tmp_path, {})
    assert ingest["PROMETHEUS_MULTIPROC_DIR"] == str(stale)
    assert alert["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "run" / "alert" / "prometheus")
    assert list(stale.iterdir()) == []


def test_one_worker_counts_in_memory(tmp_path: Path) -> None:
    parent = {"PROMETHEUS_MULTIPROC_DIR": "/shared/by/everyone"}  # WORKERS=1: the manifests'
    env, _ = service_env(services()["ingest"], parent, tmp_path, {})
    assert env["WORKERS"] == "1"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
