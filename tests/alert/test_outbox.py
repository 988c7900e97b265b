"""The notification outbox against real receivers that fail, throttle, go away and come back."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

from click.testing import CliRunner

from modelstats.alert import outbox
from modelstats.cli import main as cli
from modelstats.core.settings import from_environment
from modelstats.local.stack.ports import free_port
from modelstats.store import db
from tests.alert.alerting import (
    LOW_ACCURACY,
    alert_function,
    configure,
    evaluate,
    report,
    rows,
    stored,
    undelivered,
    write_rules,
)
from tests.receivers import Receiver, Reply


def post(client, *reports, id=None):
    headers, body = stored(*reports, id=id)
    return client.post("/", headers=headers, content=body)


def wait_until(condition, seconds: float = 10, step: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(step)


def test_a_receiver_that_is_down_gets_the_notification_once_it_is_back(
    clean_db, monkeypatch, tmp_path
):
    port = free_port()  # nothing listens here yet
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with alert_function(
        monkeypatch, rules_path, webhook=f"http://127.0.0.1:{port}", ALERT_RETRY_MAX_MS="200"
    ) as client:
        assert post(client, report(0.1)).status_code == 200
        # The log notification goes out; the webhook's stays, with its failed attempts.
        wait_until(
            lambda: rows(
                clean_db,
                "SELECT attempts FROM alert_notifications WHERE notifier = 'webhook'"
                " AND attempts >= 2",
            )
        )
        (error,) = rows(
            clean_db, "SELECT last_error FROM alert_notifications WHERE notifier = 'webhook'"
        )[0]
        assert "ConnectError" in error
        assert undelivered(clean_db) == 1
        with Receiver(default=Reply(200), port=port) as hook:
            (request,) = hook.wait_for(1)
            assert request.json()["status"] == "firing"
            wait_until(lambda: undelivered(clean_db) == 0)
            assert len(hook.quiet_for(0.5)) == 1


def test_server_errors_are_retried_until_delivered_then_never_again(
    clean_db, monkeypatch, tmp_path
):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    script = [Reply(500), Reply(502), Reply(503)]
    with (
        Receiver(script=script, default=Reply(200)) as hook,
        alert_function(monkeypatch, rules_path, webhook=hook.url) as client,
    ):
        assert post(client, report(0.1)).status_code == 200
        attempts = hook.wait_for(4)
        # The same notification each time, with growing waits in between (50, 100, 200 ms).
        assert len({r.body for r in attempts}) == 1
        gaps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(attempts)]
        assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.19
        assert len(hook.quiet_for(0.5)) == 4
    (row,) = rows(
        clean_db,
        "SELECT attempts, delivered_at IS NOT NULL, last_error FROM alert_notifications"
        " WHERE notifier = 'webhook'",
    )
    assert row == (4, True, None)


def test_429_retry_after_is_respected(clean_db, monkeypatch, tmp_path):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    script = [Reply(429, headers={"Retry-After": "1"})]
    with (
        Receiver(script=script, default=Reply(200)) as hook,
        alert_function(monkeypatch, rules_path, webhook=hook.url) as client,
    ):
        assert post(client, report(0.1)).status_code == 200
        first, second = hook.wait_for(2, timeout=5)
        assert second.monotonic - first.monotonic >= 0.95


def test_resolved_waits_for_its_firing_notification(clean_db, monkeypatch, tmp_path):
    """Per notifier and alert, notifications arrive in order even when one must be retried."""
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    script = [Reply(503, headers={"Retry-After": "1"})]
    with (
        Receiver(script=script, default=Reply(200)) as hook,
        alert_function(monkeypatch, rules_path, webhook=hook.url) as client,
    ):
        assert post(client, report(0.1)).status_code == 200
        hook.wait_for(1)
        assert post(client, report(0.9, seconds=60)).status_code == 200
        # Another alert's notification is not held up by this one.
        assert post(client, report(0.1, model="Other")).status_code == 200
        received = hook.wait_for(4, timeout=5)
    order = [(r.json()["commonLabels"]["model"], r.json()["status"]) for r in received]
    assert order == [
        ("Mistral", "firing"),  # 503
        ("Other", "firing"),
        ("Mistral", "firing"),  # retried after Retry-After
        ("Mistral", "resolved"),
    ]


def test_concurrent_senders_never_send_one_notification_twice(clean_db, monkeypatch, tmp_path):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with Receiver(default=Reply(200, delay=0.01)) as hook:
        configure(monkeypatch, ALERT_RULES_FILE=str(rules_path), ALERT_WEBHOOK_URL=hook.url)
        # 30 alerts recorded with no sender running: 30 webhook and 30 log rows wait.
        for n in range(30):
            headers, body = stored(report(0.1, model=f"m{n}"))
            assert evaluate(headers, body).alerts
        assert undelivered(clean_db) == 60
        # Four processes' worth of senders at once.
        senders = [outbox.Dispatcher(2, 0.2, 5) for _ in range(4)]
        for sender in senders:
            sender.start()
        try:
            wait_until(lambda: undelivered(clean_db) == 0)
            received = hook.quiet_for(0.3)
        finally:
            for sender in senders:
                sender.stop()
    models = sorted(r.json()["commonLabels"]["model"] for r in received)
    assert models == sorted(f"m{n}" for n in range(30))


def test_notify_command_sends_what_is_due(clean_db, monkeypatch, tmp_path):
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    port = free_port()
    configure(
        monkeypatch,
        ALERT_RULES_FILE=str(rules_path),
        ALERT_WEBHOOK_URL=f"http://127.0.0.1:{port}",
        ALERT_RETRY_INITIAL_MS="60000",
    )
    headers, body = stored(report(0.1))
    evaluate(headers, body)
    runner = CliRunner()
    down = runner.invoke(cli, ["notify"])
    assert down.exit_code == 1
    assert "delivered 1, failed 1" in down.output  # the log line went out, the webhook did not
    assert "waiting: 1 for webhook" in down.output
    with Receiver(default=Reply(200), port=port) as hook:
        # Not due for a minute: a plain run leaves it, --force sends it now.
        assert "delivered 0, failed 0" in runner.invoke(cli, ["notify"]).output
        forced = runner.invoke(cli, ["notify", "--force"])
        assert forced.exit_code == 0, forced.output
        assert "delivered 1, failed 0" in forced.output
        assert len(hook.wait_for(1)) == 1
    db.close_pools()


def test_notifications_survive_the_sender_and_go_out_from_the_next_process(
    clean_db, monkeypatch, tmp_path
):
    """Rows left by a process that is gone are picked up by the next one's senders."""
    rules_path = write_rules(tmp_path, LOW_ACCURACY)
    with Receiver(default=Reply(200)) as hook:
        configure(monkeypatch, ALERT_RULES_FILE=str(rules_path), ALERT_WEBHOOK_URL=hook.url)
        headers, body = stored(report(0.1))
        evaluate(headers, body)  # recorded, nobody sending
        assert hook.quiet_for(0.2) == []
        with alert_function(monkeypatch, rules_path, webhook=hook.url) as client:
            assert client.get("/healthz").status_code == 200  # the first request: senders start
            assert len(hook.wait_for(1)) == 1


# Pure parts: backoff and Retry-After.


def test_backoff_doubles_up_to_the_ceiling_and_honours_retry_after():
    settings = from_environment({"ALERT_RETRY_INITIAL_MS": "1000", "ALERT_RETRY_MAX_MS": "5000"})
    waits = [outbox.backoff(n, settings=settings).total_seconds() for n in range(1, 6)]
    assert waits == [1, 2, 4, 5, 5]
    assert outbox.backoff(1, retry_after=30, settings=settings) == timedelta(seconds=30)
    assert outbox.backoff(4, retry_after=0.5, settings=settings) == timedelta(seconds=5)
    assert outbox.backoff(1, retry_after=10**9, settings=settings) == timedelta(days=1)
