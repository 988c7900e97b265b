"""`modelstats replay`: dead letters (PostgreSQL) and the local spool go back to the ingress."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from modelstats.core import cloudevents
from modelstats.local.broker import spool
from modelstats.local.stack.ports import free_port
from modelstats.local.stack.state import StackState
from modelstats.store import deadletters
from tests.brokers import binary_event, broker_yaml, run_broker, trigger_yaml
from tests.cloudevents_http import REPORTED
from tests.functions import function_process
from tests.receivers import Receiver, Reply, Request

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
INGEST = "functions/ingest/main.py"


def replay(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelstats.cli", "replay", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def letter(event_id: str, data: bytes) -> cloudevents.Envelope:
    return cloudevents.Envelope(
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
        assert "spool: 2 sent, 0 kept" in result.stdout
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
    assert "spool: 0 sent, 1 kept" in result.stdout
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
        extensions={"knativeerrordest": "http://x/ingest", "knativeerrorcode": "503"},
    )
    assert asyncio.run(deadletters.keep(event)) == 1
    with Receiver() as sink, run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b:
        args = ["--broker", b.ingress, "--data-dir", str(tmp_path / "none")]
        first = replay(args, {"DATABASE_URL": clean_db})
        assert first.returncode == 0, first.stdout + first.stderr
        assert "dead letters: 1 sent, 0 not accepted" in first.stdout
        (request,) = sink.wait_for(1)
        second = replay(args, {"DATABASE_URL": clean_db})
        assert "dead letters: 0 sent" in second.stdout
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
        # A running stack's state names its live pid (here: this test's own process).
        StackState(os.getpid(), b.ingress, database_url="").write(data_dir)
        result = replay(["--data-dir", str(data_dir)], {"DATABASE_URL": ""})
        assert result.returncode == 0, result.stdout + result.stderr
        (request,) = sink.wait_for(1)
    assert request.ce("id") == "st-1"


# -- permanent failures: skipped unless asked, and never a second letter ---------------------

BAD_REPORT = {"model": "M", "version": "v1", "metrics": {"drift": "high"}}  # ingest: 400


def letters_by_event(database_url: str) -> dict[str, tuple[int, int, bool]]:
    """event id -> (error code, failures, pending)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT event_id, error_code, failures, replayed_at IS NULL AS pending"
            " FROM dead_letters"
        ).fetchall()
    return {r["event_id"]: (r["error_code"], r["failures"], r["pending"]) for r in rows}


def type_filter(event_type: str) -> str:
    return f"  filter:\n    attributes:\n      type: {event_type}\n"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def ingest_and_sink(database_url: str) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {
            "ingest": stack.enter_context(function_process("ingest", INGEST, database_url)),
            "deadletters": stack.enter_context(
                function_process("dead_letters", INGEST, database_url)
            ),
        }


def test_permanent_failures_are_skipped_unless_asked_and_never_multiply(
    tmp_path: Path, clean_db: str, ingest_and_sink: dict[str, str]
) -> None:
    """The issue's run: 5 letters that failed with 400 became 15 after two replays."""
    delivery = (
        "  delivery:\n    retry: 0\n    deadLetterSink:\n      ref:\n"
        "        apiVersion: serving.knative.dev/v1\n        kind: Service\n"
        "        name: deadletters\n"
    )
    args = ["--data-dir", str(tmp_path / "none")]
    env = {"DATABASE_URL": clean_db}
    with Receiver(default=Reply(503)) as flaky:
        manifests = (
            broker_yaml(delivery)
            + trigger_yaml("ingest", "ref:ingest", type_filter(REPORTED))
            + trigger_yaml("flaky", flaky.url, type_filter("test.flaky"))
        )
        with run_broker(tmp_path, manifests, services=ingest_and_sink) as b:
            bad = [f"bad-{n}" for n in range(5)]
            for event_id in bad:
                b.post(*binary_event(REPORTED, id=event_id, data=BAD_REPORT))
            b.post(*binary_event("test.flaky", id="flaky-1", data={"n": 1}))
            wait_until(lambda: len(letters_by_event(clean_db)) == 6, "six dead letters")
            assert {e: letters_by_event(clean_db)[e][0] for e in bad} == dict.fromkeys(bad, 400)
            assert letters_by_event(clean_db)["flaky-1"][0] == 503

            flaky.set_default(Reply(204))  # the transient cause is fixed
            first = replay([*args, "--broker", b.ingress], env)
            assert first.returncode == 0, first.stdout + first.stderr
            assert "dead letters: 1 sent, 0 not accepted, 5 skipped" in first.stdout
            assert "skipped 5 that failed for good (5 x HTTP 400)" in first.stdout
            assert "--include-permanent" in first.stdout
            assert "outcome: 1 replayed: 1 delivered, 0 failed again" in first.stdout
            (replayed,) = [r for r in flaky.wait_for(2) if r.ce("id") == "flaky-1"][1:]
            assert replayed.json() == {"n": 1}

            # Asked to: the 400s are sent, fail again, and reopen their own letters.
            forced = replay([*args, "--broker", b.ingress, "--include-permanent"], env)
            assert "dead letters: 5 sent, 0 not accepted" in forced.stdout, forced.stdout
            # The ingress took all five; the outcome says what became of them.
            assert "outcome: 5 replayed: 0 delivered, 5 failed again" in forced.stdout
            assert f"failed again: 5 x HTTP 400 at {ingest_and_sink['ingest']}" in forced.stdout
            assert forced.returncode == 1
            wait_until(
                lambda: all(letters_by_event(clean_db)[e] == (400, 2, True) for e in bad),
                "the five letters reopened with a second failure",
            )
            again = replay([*args, "--broker", b.ingress], env)
            assert "dead letters: 0 sent, 0 not accepted, 5 skipped" in again.stdout

    letters = letters_by_event(clean_db)
    assert len(letters) == 6  # one letter per event, however often it was replayed
    assert letters["flaky-1"] == (503, 1, False)


def test_permanent_spool_lines_stay_and_an_event_is_sent_once_per_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / spool.FILE_NAME
    refused = letter("refused-1", b"{}").with_attributes(knativeerrorcode="422")
    spool.append(path, refused, "dead-letter sink down")
    spool.append(path, letter("twice", b'{"n": 1}'), "dead-letter sink down")
    spool.append(path, letter("twice", b'{"n": 1}'), "broker stopped")  # failed at two triggers
    spool.append(path, letter("netdown", b"{}").with_attributes(knativeerrorcode="0"), "x")
    with Receiver() as sink, run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b:
        args = ["--broker", b.ingress, "--data-dir", str(data_dir)]
        result = replay(args, {"DATABASE_URL": ""})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "spool: 2 sent, 0 kept, 1 skipped, 1 already sent in this run" in result.stdout
        assert "(1 x HTTP 422)" in result.stdout
        received = sorted(r.ce("id") or "" for r in sink.wait_for(2))
        assert received == ["netdown", "twice"]
        (entry,) = spool.read(path)
        assert entry.envelope.id == "refused-1"  # left for a run that includes it

        forced = replay([*args, "--include-permanent"], {"DATABASE_URL": ""})
        assert "spool: 1 sent, 0 kept" in forced.stdout
        assert [r.ce("id") for r in sink.wait_for(3)][2] == "refused-1"
    assert spool.read(path) == []


# -- the outcome: delivered, failed again, still in delivery ----------------------------------


def answer_by_id(request: Request) -> Reply:
    if (request.ce("id") or "").startswith("bad"):
        return Reply.json(400, {"field": "metrics", "message": "not numbers"})
    return Reply(204)


def test_replay_says_what_was_delivered_and_what_failed_again(tmp_path: Path) -> None:
    """The ingress takes all five (202); two then fail at the subscriber with a 400. Without a
    dead-letter sink the broker spools them again, stamped 400: the next run leaves them."""
    data_dir = tmp_path  # where run_broker's broker spools, as a stack's does in its data dir
    path = data_dir / spool.FILE_NAME
    for event_id in ["good-1", "good-2", "good-3", "bad-1", "bad-2"]:
        spool.append(path, letter(event_id, b"{}"), "dead-letter sink down")
    with (
        Receiver(handler=answer_by_id) as sink,
        run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b,
    ):
        args = ["--broker", b.ingress, "--data-dir", str(data_dir)]
        first = replay(args, {"DATABASE_URL": ""})
        second = replay(args, {"DATABASE_URL": ""})
    assert first.returncode == 1, first.stdout + first.stderr
    assert "spool: 5 sent, 0 kept" in first.stdout
    assert "outcome: 5 replayed: 3 delivered, 2 failed again" in first.stdout
    assert f"failed again: 2 x HTTP 400 at {sink.url}" in first.stdout
    assert sorted(e.envelope.id for e in spool.read(path)) == ["bad-1", "bad-2"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "spool: 0 sent, 0 kept, 2 skipped" in second.stdout
    assert "outcome: 0 replayed: 0 delivered, 0 failed again" in second.stdout


def test_a_spool_line_the_ingress_refuses_for_good_is_stamped_and_left_alone(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / spool.FILE_NAME
    spool.append(path, letter("big-1", b'{"pad": "' + b"x" * 2000 + b'"}'), "sink down")
    manifests = broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9")
    with run_broker(tmp_path, manifests, extra_args=["--max-body-bytes", "1000"]) as b:
        args = ["--broker", b.ingress, "--data-dir", str(data_dir)]
        first = replay(args, {"DATABASE_URL": ""})
        second = replay(args, {"DATABASE_URL": ""})
    assert first.returncode == 1
    assert "spool: 0 sent, 1 kept (1 x HTTP 413 refused for good by the ingress" in first.stdout
    assert "spool: 0 sent, 0 kept, 1 skipped" in second.stdout
    assert "(1 x HTTP 413)" in second.stdout
    (entry,) = spool.read(path)
    attributes = entry.envelope.attributes
    assert (entry.envelope.id, attributes["knativeerrorcode"]) == ("big-1", "413")
    assert attributes["knativeerrordest"] == b.ingress
    assert entry.reason.startswith("refused by the ingress at replay: HTTP 413")


def test_an_outcome_not_known_within_the_wait_is_said_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spool.append(data_dir / spool.FILE_NAME, letter("slow-1", b"{}"), "x")
    with (
        Receiver(default=Reply(204, delay=4)) as sink,
        run_broker(tmp_path, broker_yaml() + trigger_yaml("t", sink.url)) as b,
    ):
        args = ["--broker", b.ingress, "--data-dir", str(data_dir), "--wait", "1"]
        result = replay(args, {"DATABASE_URL": ""})
        unwatched = replay([*args[:-2], "--wait", "0"], {"DATABASE_URL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outcome: 1 replayed: 0 delivered, 0 failed again, 1 still in delivery after 1s" in (
        result.stdout
    )
    assert "outcome: 0 replayed (not watched: --wait 0)" in unwatched.stdout
