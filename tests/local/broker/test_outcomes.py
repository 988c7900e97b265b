"""How `modelstats replay` tells what became of what it sent, without a broker: the words for
each case, and the failures spooled since the run began."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelstats.core.cloudevents import Envelope
from modelstats.local.broker import outcomes, spool
from modelstats.local.broker.outcomes import Failure, Outcome
from modelstats.local.broker.replay import Refusal

AT_INGEST = Failure(400, "http://ingest", "dead letters")


def test_a_settled_broker_tells_delivered_from_failed_again() -> None:
    failed = {
        ("/s", "a"): AT_INGEST,
        ("/s", "b"): AT_INGEST,
        ("/s", "c"): Failure(0, "x", "the spool"),
    }
    outcome = Outcome(replayed=10, failed_again=failed, settled=True, waited=0.4)
    assert outcome.summary() == "10 replayed: 7 delivered, 3 failed again"
    assert outcome.failure_lines() == [
        "failed again: 2 x HTTP 400 at http://ingest, now in dead letters",
        "failed again: 1 x no answer at x, now in the spool",
    ]


def test_a_broker_still_busy_leaves_the_rest_undecided() -> None:
    outcome = Outcome(replayed=5, failed_again={("/s", "a"): AT_INGEST}, waited=30.2)
    assert (
        outcome.summary()
        == "5 replayed: 0 delivered, 1 failed again, 4 still in delivery after 30s"
    )


def test_not_watched() -> None:
    assert Outcome(replayed=3, watched=False).summary() == "3 replayed (not watched: --wait 0)"


def test_the_gauge_is_read_from_the_ingress_host() -> None:
    assert outcomes.metrics_url("http://127.0.0.1:8080/modelstats/default") == (
        "http://127.0.0.1:8080/metrics"
    )


def test_only_replayed_events_spooled_since_the_run_began_count(tmp_path: Path) -> None:
    path = tmp_path / spool.FILE_NAME

    def event(event_id: str) -> Envelope:
        attributes = {"specversion": "1.0", "type": "t", "source": "/s", "id": event_id}
        return Envelope({**attributes, "knativeerrorcode": "400", "knativeerrordest": "http://i"})

    spool.append(path, event("before"), "x")
    since = datetime.now(UTC) + timedelta(milliseconds=1)
    while datetime.now(UTC) < since:
        pass
    spool.append(path, event("before"), "failed again")
    spool.append(path, event("other"), "not replayed in this run")
    found = dict(outcomes.spooled_failures(path, {("/s", "before")}, since))
    assert found == {("/s", "before"): Failure(400, "http://i", "the spool")}


def test_a_refusal_is_permanent_when_knative_would_not_retry_it() -> None:
    assert Refusal(400, "bad").permanent and Refusal(413, "big").permanent
    assert not Refusal(503, "full").permanent and not Refusal(None, "refused").permanent
    assert str(Refusal(413, "body larger")) == "HTTP 413: body larger"
