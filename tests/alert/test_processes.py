"""Two alert processes (real functions-framework servers) on one database: they agree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from tests.alert.alerting import ALERT_SOURCE, LOW_ACCURACY, report, rows, stored, write_rules
from tests.functions import function_process
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def processes(database_url, tmp_path_factory):
    """Started once for this module; each test empties the database (clean_db) first."""
    rules_path = write_rules(tmp_path_factory.mktemp("rules"), LOW_ACCURACY)
    with Receiver(default=Reply(200, delay=0.005)) as hook, ExitStack() as stack:
        env = {
            "ALERT_RULES_FILE": str(rules_path),
            "ALERT_WEBHOOK_URL": hook.url,
            "ALERT_RETRY_INITIAL_MS": "50",
            "THREADS": "4",
        }
        with ThreadPoolExecutor(2) as pool:
            starting = [
                pool.submit(
                    stack.enter_context,
                    function_process("alert", ALERT_SOURCE, database_url, env),
                )
                for _ in range(2)
            ]
            urls = [future.result() for future in starting]
        yield urls, hook


@pytest.fixture
def two_processes(processes, clean_db):
    """The processes, and how many requests their receiver had before this test."""
    urls, hook = processes
    return urls, hook, len(hook.requests)


def send(url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(url, headers=headers, content=body, timeout=10)


def test_concurrent_events_across_processes_fire_one_notification(two_processes, clean_db):
    urls, hook, before = two_processes
    # 16 different events for the same series, all below the threshold, sent at once to both.
    requests = [stored(report(0.1, seconds=n % 4)) for n in range(16)]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda n: send(urls[n % 2], *requests[n]), range(len(requests))))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] + [204] * 15
    (fired,) = [r for r in replies if r.status_code == 200]
    assert fired.headers["ce-type"] == "modelstats.alert.fired"
    assert len(hook.wait_for(before + 1)) == before + 1
    assert len(hook.quiet_for(0.5)) == before + 1
    assert rows(clean_db, "SELECT kind FROM alert_transitions") == [("firing",)]
    assert rows(clean_db, "SELECT count(*) FROM alert_events")[0][0] == 16


def test_one_event_delivered_to_both_processes_at_once_is_evaluated_once(two_processes, clean_db):
    urls, hook, before = two_processes
    headers, body = stored(report(0.1), id="twice")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda n: send(urls[n % 2], headers, body), range(8)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.headers["ce-id"] for r in replies}) == 1
    assert len({r.content for r in replies}) == 1
    assert len(hook.wait_for(before + 1)) == before + 1
    assert len(hook.quiet_for(0.5)) == before + 1
    assert rows(clean_db, "SELECT count(*) FROM alert_notifications")[0][0] == 2  # log, webhook


def test_a_hostile_stored_event_is_a_400_naming_its_field_and_costs_no_neighbour(two_processes):
    """Text with no UTF-8 form (a JSON-escaped lone surrogate) used to be a 500 for the whole
    batch (docs/hostile-inputs.md); now it is refused alone, its neighbours evaluated."""
    (url, _), _, _ = two_processes
    poison = "poison\ud800"
    hostile = [
        (stored(report(0.1, model=poison)), "data.reports[0].model"),
        (stored(report(0.1, labels={"env": poison})), "data.reports[0].labels.env"),
        (stored(report(0.1), id="i" * 6000), "id"),
    ]
    with ThreadPoolExecutor(8) as pool:
        for (headers, body), field in hostile:
            valid = [stored(report(0.1, model=f"ok-{i}")) for i in range(10)]
            answers = list(
                pool.map(lambda r: send(url, *r), [*valid[:5], (headers, body), *valid[5:]])
            )
            assert answers[5].status_code == 400, answers[5].text
            assert answers[5].json()["field"] == field
            assert all(a.status_code in (200, 204) for a in answers[:5] + answers[6:])
    assert rows_count(two_processes) == 10 * len(hostile)


def rows_count(two_processes) -> int:
    from modelstats.core.settings import get_settings

    ((count,),) = rows(get_settings().require_database_url(), "SELECT count(*) FROM alert_events")
    return int(count)
