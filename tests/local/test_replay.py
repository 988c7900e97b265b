"""`modelstats replay`: dead letters (PostgreSQL) and the local spool go back to the ingress."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelstats.core import cloudevents
from modelstats.local import envelopes, spool
from modelstats.store import deadletters
from tests.brokers import broker_yaml, free_port, run_broker, trigger_yaml
from tests.receivers import Receiver

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")


def replay(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelstats.cli", "replay", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def letter(event_id: str, data: bytes) -> envelopes.Envelope:
    return envelopes.Envelope(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/tests/replay",
            "type": "modelstats.metric.reported",
            "datacontenttype": "application/json",
            "knativeerrordest": "http://127.0.0.1:1/ingest",
            "knativeerrorcode": "503",
            "knativeerrordata": base64.b64encode(b"down").decode(),
            "knativebrokerttl": "3",
            "knativearrivaltime": "2024-01-01T00:00:00Z",
        },
        data,
        True,
    )


def test_spool_is_replayed_without_error_extensions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / spool.FILE_NAME
    spool.append(path, letter("sp-1", b'{"n": 1}'), "dead-letter sink down")
    spool.append(path, letter("sp-2", b'{"n": 2}'), "dead-letter sink down")
    with Receiver() as sink, run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b:
        result = replay(["--broker", b.ingress, "--data-dir", str(data_dir)], {"DATABASE_URL": ""})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "spool: 2 replayed, 0 kept" in result.stdout
        requests = sink.wait_for(2)
    assert sorted(r.ce("id") or "" for r in requests) == ["sp-1", "sp-2"]
    for request in requests:
        assert all(request.ce(name) is None for name in ERROR_EXTENSIONS)
        assert request.ce("knativearrivaltime") != "2024-01-01T00:00:00Z"  # stamped anew
        assert request.json()["n"] in (1, 2)
    assert not path.exists() or path.read_text() == ""


def test_spool_lines_the_broker_refuses_stay_in_the_spool(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / spool.FILE_NAME
    spool.append(path, letter("kept-1", b"{}"), "x")
    down = f"http://127.0.0.1:{free_port()}/modelstats/default"
    result = replay(["--broker", down, "--data-dir", str(data_dir)], {"DATABASE_URL": ""})
    assert result.returncode == 1
    assert "spool: 0 replayed, 1 kept" in result.stdout
    (entry,) = spool.read(path)
    assert entry.envelope.id == "kept-1"
    assert [p.name for p in data_dir.iterdir()] == [spool.FILE_NAME]  # nothing left aside


def test_stored_dead_letters_are_replayed_once(tmp_path: Path, clean_db: str) -> None:
    event = cloudevents.Event(
        id="dl-1",
        source="/tests/replay",
        type="modelstats.metric.reported",
        datacontenttype="application/json",
        data={"model": "M", "version": "v1", "metrics": {"drift": 0.2}},
        extensions={"knativeerrordest": "http://x/ingest", "knativeerrorcode": "400"},
    )
    assert asyncio.run(deadletters.keep(event))
    with Receiver() as sink, run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b:
        args = ["--broker", b.ingress, "--data-dir", str(tmp_path / "none")]
        first = replay(args, {"DATABASE_URL": clean_db})
        assert first.returncode == 0, first.stdout + first.stderr
        assert "dead letters: 1 replayed, 0 failed" in first.stdout
        (request,) = sink.wait_for(1)
        second = replay(args, {"DATABASE_URL": clean_db})
        assert "dead letters: 0 replayed" in second.stdout
        assert len(sink.quiet_for(0.5)) == 1
    assert request.ce("id") == "dl-1" and request.ce("source") == "/tests/replay"
    assert request.ce("knativeerrorcode") is None and request.ce("knativeerrordest") is None
    assert json.loads(request.body) == event.data
    (stored,) = deadletters.recent()
    assert stored.replayed_at is not None


def test_replay_uses_the_running_stack_state(tmp_path: Path) -> None:
    """Without --broker, the ingress comes from <data-dir>/stack.json (written by `run`)."""
    data_dir = tmp_path / "data"
    spool.append(data_dir / spool.FILE_NAME, letter("st-1", b"{}"), "x")
    with Receiver() as sink, run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b:
        (data_dir / "stack.json").write_text(json.dumps({"broker": b.ingress}))
        result = replay(["--data-dir", str(data_dir)], {"DATABASE_URL": ""})
        assert result.returncode == 0, result.stdout + result.stderr
        (request,) = sink.wait_for(1)
    assert request.ce("id") == "st-1"
