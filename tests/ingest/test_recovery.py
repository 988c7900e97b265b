"""Ingest under a PostgreSQL restart: how soon it answers 2xx again once the server is back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.cloudevents_http import binary
from tests.functions import function_process

SOURCE = "functions/ingest/main.py"
# Long enough for psycopg_pool's own backoff (1, 2, 4, 8, 16 s) to have grown past a bound
# of 5 s; while nothing is sent, only the stale connections matter, not the outage's length.
OUTAGE_SECONDS = {True: 20, False: 3}
REPORT = {"model": "recovery", "version": "v1", "metrics": {"drift": 0.1}}


@pytest.mark.slow
@pytest.mark.parametrize("sent_during_outage", [True, False], ids=["retried", "idle"])
def test_ingest_answers_within_two_seconds_of_the_database_coming_back(
    clean_db, postgres, sent_during_outage
):
    """psycopg_pool backs off its reconnection attempts (1 s, doubling): after a 20 s outage
    the first 2xx came about 9 s after the server was back. Events sent meanwhile (the broker
    retrying) or none (every pooled connection is then stale): either way, 2xx again soon."""
    if postgres is None:
        pytest.skip("needs the embedded server to stop it (TEST_DATABASE_URL is set)")
    answers: list[tuple[float, int]] = []  # (when the answer came, status)
    stop = threading.Event()

    def post(client: httpx.Client, n: int) -> None:
        headers, body = binary(REPORT, id=f"e-{n}", source="/tests/recovery")
        try:
            status = client.post("/", headers=headers, content=body).status_code
        except httpx.HTTPError:
            status = 0
        answers.append((time.monotonic(), status))

    def keep_posting(url: str) -> None:
        # A sender retrying through the outage, as the broker does.
        with httpx.Client(base_url=url, timeout=30) as client:
            n = 1000
            while not stop.is_set():
                post(client, n)
                n += 1
                time.sleep(0.05)

    # A request waits this long for a connection: after an idle outage, the pool's sleeps
    # between stale connections (1 s, 2 s, ...) used to outlast it.
    with function_process("ingest", SOURCE, clean_db, {"DB_POOL_TIMEOUT_S": "2"}) as url:
        with httpx.Client(base_url=url, timeout=30) as warm, ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: post(warm, n), range(200)))  # the pool grows to its size
        assert {status for _, status in answers} == {200}
        postgres.stop()
        sender = threading.Thread(target=keep_posting, args=(url,))
        try:
            if sent_during_outage:
                sender.start()
            time.sleep(OUTAGE_SECONDS[sent_during_outage])
            if sent_during_outage:
                assert [s for _, s in answers[200:]] and {s for _, s in answers[200:]} == {503}
        finally:
            postgres.start()
        back = time.monotonic()
        if not sent_during_outage:
            sender.start()
        try:
            deadline = back + 30
            while time.monotonic() < deadline and not any(
                status == 200 and moment > back for moment, status in answers
            ):
                time.sleep(0.05)
        finally:
            stop.set()
            sender.join(60)
    first = min(moment for moment, status in answers if status == 200 and moment > back)
    if not sent_during_outage:
        assert next(status for moment, status in answers if moment > back) == 200
    recovered = first - back
    print(f"first 2xx {recovered:.2f} s after PostgreSQL was back")
    assert recovered < 5, f"ingest answered 2xx only {recovered:.1f} s after the restart"
