"""Group commit in the alert function: events evaluated together behave as one at a time."""

from __future__ import annotations

import asyncio

from modelstats.alert import evaluation
from modelstats.core import cloudevents
from modelstats.store import db
from tests.alert.alerting import LOW_ACCURACY, configure, report, rows, stored, write_rules


def _evaluate_together(
    events: list[tuple[dict[str, str], bytes]],
) -> list[evaluation.Verdict]:
    async def run() -> list[evaluation.Verdict]:
        try:
            parsed = [cloudevents.parse(headers, body) for headers, body in events]
            return list(await asyncio.gather(*(evaluation.evaluate(e) for e in parsed)))
        finally:
            await db.close_async_pool()

    return asyncio.run(run())


def test_one_series_in_one_batch_moves_in_arrival_order(clean_db, monkeypatch, tmp_path):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, LOW_ACCURACY)))
    values = [0.1, 0.9, 0.1, 0.9, 0.5, 0.1]
    events = [stored(report(value, seconds=i)) for i, value in enumerate(values)]
    verdicts = _evaluate_together(events)
    kinds = [[alert.kind for alert in v.alerts] for v in verdicts]
    assert kinds == [["firing"], ["resolved"], ["firing"], ["resolved"], [], ["firing"]]
    assert [v.reply["type"] if v.reply else None for v in verdicts] == [
        "modelstats.alert.fired",
        "modelstats.alert.resolved",
        "modelstats.alert.fired",
        "modelstats.alert.resolved",
        None,
        "modelstats.alert.fired",
    ]
    transitions = rows(clean_db, "SELECT kind FROM alert_transitions ORDER BY id")
    assert [kind for (kind,) in transitions] == [
        "firing",
        "resolved",
        "firing",
        "resolved",
        "firing",
    ]
    assert rows(clean_db, "SELECT count(*) FROM alert_events") == [(6,)]


def test_twins_in_one_batch_are_evaluated_once_and_answered_alike(clean_db, monkeypatch, tmp_path):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, LOW_ACCURACY)))
    twin = stored(report(0.1), id="twin")
    other = stored(report(0.2, model="Llama"))
    first, second, third = _evaluate_together([twin, other, twin])
    assert not first.duplicate and third.duplicate
    assert first.reply is not None and third.reply is not None
    assert third.reply["id"] == first.reply["id"]
    assert third.reply.data == first.reply.data
    assert not second.duplicate and second.alerts
    assert rows(clean_db, "SELECT count(*) FROM alert_transitions") == [(2,)]
    # Redelivered later, on its own: the stored reply, nothing changes.
    (again,) = _evaluate_together([twin])
    assert again.duplicate and again.reply is not None and again.reply.data == first.reply.data
    assert rows(clean_db, "SELECT count(*) FROM alert_transitions") == [(2,)]


def test_events_without_observations_are_answered_without_the_database(
    clean_db, monkeypatch, tmp_path
):
    configure(monkeypatch, ALERT_RULES_FILE=str(write_rules(tmp_path, LOW_ACCURACY)))
    unrelated = stored(report(metrics={"drift": 0.5}))
    (verdict,) = _evaluate_together([unrelated])
    assert verdict.reply is None and not verdict.alerts
    assert rows(clean_db, "SELECT count(*) FROM alert_events") == [(0,)]
