"""The notification outbox: every notification is kept in PostgreSQL until it is delivered.

An alert transition writes one `alert_notifications` row per notifier in the same transaction as
the state change. Delivery claims one due row with `FOR UPDATE SKIP LOCKED`, sends it while the
row stays locked, and marks it delivered (or reschedules it) in that same transaction: two
processes never hold the same row, so no transition is sent twice by two senders; a row whose
sender died mid-way is unlocked by PostgreSQL and sent again later (the only case where a
receiver can see a repeat, as with any at-least-once delivery). A failure (transport error, 5xx,
429) reschedules the row with exponential backoff, or after Retry-After when the receiver gives
one; nothing is ever dropped. Per notifier and alert, a notification waits for the earlier ones
(a `resolved` never overtakes its `firing`).

Who sends: a `Dispatcher` of a few threads per worker process, started by the function's start
hook in each worker process (never at import) and woken right after each commit that adds rows;
between events it wakes when the next retry falls due, or every ALERT_POLL_INTERVAL_MS to pick
up rows left by other processes. Each thread has its own connection, outside the request pool.
Serverless caveat: a service scaled to zero sends nothing until its next event, so keep one
instance (`autoscaling.knative.dev/min-scale: "1"`) or run `modelstats notify`, which sends
whatever is due from anywhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg.rows import class_row, dict_row

from modelstats.alert.notification import Notification
from modelstats.alert.notifiers import Notifier, configured
from modelstats.core import metrics, timestamps
from modelstats.core.errors import DatabaseUnavailable, DeliveryFailed
from modelstats.core.holder import Holder
from modelstats.core.settings import Settings, get_settings
from modelstats.store import db, queries

log = logging.getLogger("modelstats.notify")

# Claim everything that waits, whatever its schedule (`modelstats notify --force`).
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
MAX_RETRY_AFTER = timedelta(days=1)

_attempts = metrics.Children(metrics.ALERT_NOTIFICATIONS)


SQL = queries.Group("alerts")


def backoff(
    failures: int, retry_after: float | None = None, settings: Settings | None = None
) -> timedelta:
    """Wait after the `failures`-th failure (1, 2, ...): doubling, capped; Retry-After wins."""
    settings = settings or get_settings()
    initial = settings.alert_retry_initial_ms / 1000
    ceiling = settings.alert_retry_max_ms / 1000
    delay = min(ceiling, initial * 2 ** min(max(failures - 1, 0), 30))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(timedelta(seconds=delay), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class DueNotification:
    """A notification claimed for sending (a row of `alert_notifications` with its alert)."""

    id: int
    notifier: str
    attempts: int
    alert: dict[str, Any]


@dataclass(frozen=True)
class DeliveryAttempt:
    """How one try to deliver a notification went."""

    id: int
    notifier: str
    delivered: bool
    error: str | None = None


def deliver_one(
    conn: psycopg.Connection[Any],
    notifiers: dict[str, Notifier],
    client: httpx.Client,
    due_by: datetime | None = None,
    skip: Iterable[int] = (),
) -> DeliveryAttempt | None:
    """Claim and send the next due notification; None when nothing is claimable.

    `conn` is an autocommit connection of the caller's own (not a pooled one: a slow receiver
    must not hold connections that requests need).
    """
    with (
        db.translate_errors(),
        conn.transaction(),
        conn.cursor(row_factory=class_row(DueNotification)) as cursor,
    ):
        due = cursor.execute(
            SQL["claim_notification"],
            (due_by or timestamps.now(), list(notifiers), list(skip)),
        ).fetchone()
        if due is None:
            return None
        notification_id, name = due.id, due.notifier
        try:
            notifiers[name].send(Notification.from_json(due.alert), client)
        except Exception as error:
            retry_after = error.retry_after if isinstance(error, DeliveryFailed) else None
            if not isinstance(error, DeliveryFailed):
                log.exception("notifier %s failed on notification %d", name, notification_id)
            wait = backoff(due.attempts + 1, retry_after)
            conn.execute(
                SQL["mark_failed"],
                (timestamps.now() + wait, str(error)[:1000], notification_id),
            )
            _attempts(name, "failed").inc()
            log.warning(
                "notification %d (%s) not delivered, attempt %d, next in %.1fs: %s",
                notification_id,
                name,
                due.attempts + 1,
                wait.total_seconds(),
                error,
            )
            return DeliveryAttempt(notification_id, name, False, str(error))
        conn.execute(SQL["mark_delivered"], (timestamps.now(), notification_id))
        _attempts(name, "sent").inc()
        return DeliveryAttempt(notification_id, name, True)


def next_due(conn: psycopg.Connection[Any], notifiers: Iterable[str]) -> datetime | None:
    with db.translate_errors(), conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(SQL["next_due"], (list(notifiers),)).fetchone()
    return row["due"] if row else None


@dataclass(frozen=True)
class Waiting:
    """Undelivered notifications of one notifier: how many, the next try, the most attempts."""

    notifier: str
    count: int
    next_attempt_at: datetime
    attempts: int


@dataclass(frozen=True)
class FlushResult:
    delivered: int
    failed: int
    waiting: list[Waiting]


def flush(force: bool = False, notifiers: dict[str, Notifier] | None = None) -> FlushResult:
    """Try every due notification once (`force`: every undelivered one); report what is left."""
    notifiers = notifiers if notifiers is not None else configured()
    tried: list[int] = []
    delivered = failed = 0
    timeout = get_settings().alert_delivery_timeout_ms / 1000
    with db.connect(autocommit=True) as conn, httpx.Client(timeout=timeout) as client:
        while True:
            due_by = FAR_FUTURE if force else None
            attempt = deliver_one(conn, notifiers, client, due_by=due_by, skip=tried)
            if attempt is None:
                break
            tried.append(attempt.id)
            if attempt.delivered:
                delivered += 1
            else:
                failed += 1
        with db.translate_errors(), conn.cursor(row_factory=class_row(Waiting)) as cursor:
            waiting = cursor.execute(SQL["undelivered"]).fetchall()
    return FlushResult(delivered, failed, waiting)


class Dispatcher:
    """Background senders of one process: woken after each commit, and when retries fall due."""

    def __init__(self, threads: int, poll_interval: float, timeout: float):
        self._threads_wanted = threads
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self._threads_wanted):
            thread = threading.Thread(
                target=self._run, name=f"modelstats-notify-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                self._wake.clear()
                wait = self._poll_interval
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = db.connect(autocommit=True)
                    notifiers = configured()
                    while not self._stop.is_set() and deliver_one(conn, notifiers, client):
                        pass
                    due = next_due(conn, notifiers)
                    if due is not None:
                        seconds = (due - timestamps.now()).total_seconds()
                        wait = min(self._poll_interval, max(0.05, seconds))
                except (DatabaseUnavailable, psycopg.Error) as error:
                    log.warning("notification delivery paused: %s", error)
                    if conn is not None:
                        conn.close()
                    conn = None
                except Exception:
                    log.exception("notification delivery failed")
                self._wake.wait(wait)
        if conn is not None:
            conn.close()


def _start_dispatcher() -> Dispatcher:
    settings = get_settings()
    started = Dispatcher(
        settings.alert_delivery_threads,
        settings.alert_poll_interval_ms / 1000,
        settings.alert_delivery_timeout_ms / 1000,
    )
    started.start()
    return started


_dispatcher: Holder[Dispatcher] = Holder(_start_dispatcher)


def dispatcher() -> Dispatcher:
    """This process's dispatcher, started on first use (in the worker, never at import)."""
    return _dispatcher.get()


def start() -> None:
    """Start this process's senders (the function's start hook, in the worker after the fork)."""
    dispatcher()


def shutdown() -> None:
    """Stop this process's dispatcher (the function's stop hook, and tests; a new one starts
    on next use)."""
    current = _dispatcher.take()
    if current is not None:
        current.stop()
