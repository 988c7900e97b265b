"""infra/grafana: every SQL query of the dashboard (panels, annotations, variables), expanded as
Grafana's PostgreSQL data source expands it, runs against the real PostgreSQL as the read-only
role, over seeded samples and an alert history written by the real alert evaluation; the rows
are what the stats API says for the same buckets. The provisioning files point at that role.

The test lets the role log in (it is NOLOGIN until someone gives it a password): with
TEST_DATABASE_URL that changes a role of your server, as the migration created it there.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from modelstats.alert import evaluation, rulebook
from modelstats.core import cloudevents, timestamps
from modelstats.store import db, reader
from tests.alert.alerting import stored, write_rules
from tests.infra.grafana_sql import expand
from tests.stats.samples import Sample, add_samples, client

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "modelstats.json"
HOUR = 3600

RULES = """
rules:
  - name: LowAccuracy
    metric: prediction_accuracy
    op: "<"
    threshold: 0.3
    severity: critical
  - name: HighDrift
    metric: drift
    op: ">"
    threshold: 0.5
"""


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text("utf-8"))


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside rows


def all_queries(document: dict[str, Any]) -> list[str]:
    found = [t["rawSql"] for p in panels(document) for t in p.get("targets", [])]
    found += [a["target"]["rawSql"] for a in document["annotations"]["list"] if "target" in a]
    found += [v["query"] for v in document["templating"]["list"] if v["type"] == "query"]
    return found


@pytest.fixture
def seeded(clean_db: str, tmp_path: Path) -> dict[str, Any]:
    """Six whole UTC hours ending an hour ago: samples of three versions, and alerts."""
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=7)
    rows = []
    for minute in range(5, 6 * 60, 10):  # every 10 minutes, never on a bound
        at = start + timedelta(minutes=minute)
        wave = math.sin(minute / 37)
        rows.append(("Mistral", "v1", "prediction_accuracy", {"env": "prod"}, at, 0.6 + wave / 4))
        rows.append(("Mistral", "v1", "prediction_accuracy", {"env": "dev"}, at, 0.5 - wave / 5))
        rows.append(("Mistral", "v1", "drift", {}, at, 0.1 + (minute % 70) / 100))
        rows.append(("Mistral", "v2", "drift", {}, at, 9.0))
        rows.append(("Llama", "v1", "drift", {}, at, 7.0))
    rows += _inference_samples(start)
    add_samples(clean_db, rows)
    _alert_history(start, write_rules(tmp_path, RULES))
    return {"url": clean_db, "start": start, "end": start + timedelta(hours=6)}


INFERENCE = {"source": "inference"}
FEATURES = ("amount", "country", "prediction")


def _drift_share(version: str, window: int) -> float:
    return (window % 4) / 4 if version == "v1" else 0.5


def _drifted(feature: str, window: int) -> float:
    amount_moved = feature == "amount" and window >= 6
    return float(amount_moved or (feature == "prediction" and window == 9))


def _inference_samples(start: datetime) -> list[Sample]:
    """Twelve half-hour windows of drift figures, as the inference job writes them (at each
    window's start); a metric-only twin with the same name (no source label) must not count."""
    rows: list[Sample] = []
    for window in range(12):
        at = start + timedelta(minutes=30 * window)
        for version in ("v1", "v2"):
            rows.append(
                ("Mistral", version, "drift_share", INFERENCE, at, _drift_share(version, window))
            )
        for feature in FEATURES:
            labels = {**INFERENCE, "feature": feature, "method": "ks"}
            rows.append(("Mistral", "v1", "feature_drifted", labels, at, _drifted(feature, window)))
        rows.append(("Mistral", "v1", "drift_share", {}, at + timedelta(minutes=1), 0.99))
    return rows


def _alert_history(start: datetime, rules_path: Path) -> None:
    """Low accuracy fires at +1h and resolves at +3h; high drift fires at +5h and stays."""

    def report(hours: float, metrics: dict[str, float]) -> dict[str, Any]:
        moment = timestamps.format(start + timedelta(hours=hours))
        return {"model": "Mistral", "version": "v1", "time": moment, "metrics": metrics}

    events = [
        report(1, {"prediction_accuracy": 0.2}),
        report(3, {"prediction_accuracy": 0.8}),
        report(5, {"drift": 0.9}),
    ]
    loaded = rulebook.load(str(rules_path))

    async def evaluate_all() -> None:
        try:
            for number, event in enumerate(events):
                headers, body = stored(event, id=f"grafana-{number}")
                await evaluation.evaluate(cloudevents.parse(headers, body), rule_set=loaded)
        finally:
            await db.close_async_pool()

    asyncio.run(evaluate_all())


@pytest.fixture
def as_reader(seeded: dict[str, Any]) -> Iterator[psycopg.Connection[Any]]:
    """A session of the read-only role itself (its own login, its own settings)."""
    reader.enable_login(seeded["url"], "grafana-test")
    url = make_conninfo(seeded["url"], user=reader.ROLE, password="grafana-test")
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def run(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql.encode()).fetchall()  # the dashboard's text, not input


def stats_api(seeded: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    since, until = timestamps.format(seeded["start"]), timestamps.format(seeded["end"])
    with client() as stats:
        response = stats.get(
            f"/stats/Mistral/{version}", params={"since": since, "until": until, "bucket": "1h"}
        )
    assert response.status_code == 200
    return response.json()


def expanded(sql: str, seeded: dict[str, Any], metric: list[str]) -> str:
    return expand(
        sql,
        seeded["start"],
        seeded["end"],
        HOUR,
        single={"model": "Mistral", "version": "v1"},
        multi={"metric": metric},
    )


def test_the_variables_list_what_is_stored(seeded, as_reader) -> None:
    by_name = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert set(by_name) == {"model", "version", "metric"}
    assert by_name["metric"]["multi"] and by_name["metric"]["includeAll"]

    def values(name: str) -> list[str]:
        return [row[0] for row in run(as_reader, expanded(by_name[name]["query"], seeded, []))]

    assert values("model") == ["Llama", "Mistral"]
    assert values("version") == ["v1", "v2"]
    assert values("metric") == ["drift", "drift_share", "feature_drifted", "prediction_accuracy"]


def test_each_bucket_is_what_the_stats_api_says(seeded, as_reader) -> None:
    (series,) = [p for p in panels(dashboard()) if p.get("repeat") == "metric"]
    assert series["type"] == "timeseries"  # one panel per metric: $metric is one quoted value
    (target,) = series["targets"]
    assert target["format"] == "time_series"
    api = stats_api(seeded)["series"]
    for metric in ("drift", "prediction_accuracy"):
        rows = run(as_reader, expanded(target["rawSql"], seeded, [metric]))
        assert len(rows) == 6
        for (moment, mean, low, high, p95), bucket in zip(rows, api[metric], strict=True):
            assert moment == timestamps.parse(bucket["time"], "time").timestamp()
            for got, wanted in ((mean, "mean"), (low, "min"), (high, "max"), (p95, "p95")):
                assert math.isclose(got, bucket[wanted], rel_tol=1e-12), (metric, wanted)


def test_the_summary_table_matches_the_stats_api(seeded, as_reader) -> None:
    (table,) = [p for p in panels(dashboard()) if p["type"] == "table"]
    (target,) = table["targets"]
    rows = run(as_reader, expanded(target["rawSql"], seeded, ["drift", "prediction_accuracy"]))
    api = stats_api(seeded)["metrics"]
    assert [row[0] for row in rows] == ["drift", "prediction_accuracy"]
    for metric, samples, mean, low, high, p95, last in rows:
        wanted = api[metric]
        assert samples == wanted["count"]
        assert math.isclose(mean, wanted["mean"], rel_tol=1e-12)
        assert (low, high) == (wanted["min"], wanted["max"])
        assert math.isclose(p95, wanted["p95"], rel_tol=1e-12)
        assert timestamps.format(last) == wanted["last"]


def test_alert_annotations_are_the_firing_intervals(seeded, as_reader) -> None:
    (annotation,) = dashboard()["annotations"]["list"]
    sql = annotation["target"]["rawSql"]
    start = seeded["start"]
    rows = run(as_reader, expanded(sql, seeded, ["drift", "prediction_accuracy"]))
    assert [(row[0], row[3]) for row in rows] == [
        (start + timedelta(hours=1), "LowAccuracy,critical,prediction_accuracy"),
        (start + timedelta(hours=5), "HighDrift,warning,drift"),
    ]
    resolved, firing = rows
    assert resolved[1] == start + timedelta(hours=3)
    assert resolved[2] == (
        "LowAccuracy on prediction_accuracy: prediction_accuracy lower than 0.3 (resolved)"
    )
    assert firing[1] >= datetime.now(UTC) - timedelta(minutes=5)  # still firing: until now
    assert firing[2].endswith("(firing)")
    # Only the metrics chosen: drift alone shows the drift alert alone.
    only_drift = run(as_reader, expanded(sql, seeded, ["drift"]))
    assert [row[3] for row in only_drift] == ["HighDrift,warning,drift"]


def test_every_query_of_the_dashboard_is_covered_and_the_role_cannot_write(
    seeded, as_reader
) -> None:
    document = dashboard()
    queries = all_queries(document)
    # The 3 variables, the table, the series, the annotation, the two drift panels: above.
    assert len(queries) == 8
    for sql in queries:
        run(as_reader, expanded(sql, seeded, ["drift"]))  # none fails as the reader
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        as_reader.execute("INSERT INTO series (model, version, metric) VALUES ('x', 'y', 'z')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_reader.execute("SELECT count(*) FROM ingest_events")


def drift_panel(kind: str) -> dict[str, Any]:
    (panel,) = [p for p in panels(dashboard()) if p["type"] == kind and "drift" in p["title"]]
    (target,) = panel["targets"]
    assert target["format"] == "time_series"
    return target


def test_the_drift_share_panel_has_a_series_per_version(seeded, as_reader) -> None:
    rows = run(as_reader, expanded(drift_panel("timeseries")["rawSql"], seeded, []))
    start = seeded["start"]
    wanted = sorted(
        (start + timedelta(minutes=30 * window), version, _drift_share(version, window))
        for window in range(12)
        for version in ("v1", "v2")
    )
    assert sorted(rows) == wanted  # the metric-only drift_share of 0.99 is not among them


def test_the_feature_panel_has_each_features_verdict_per_window(seeded, as_reader) -> None:
    rows = run(as_reader, expanded(drift_panel("status-history")["rawSql"], seeded, []))
    start = seeded["start"]
    assert rows == [
        (start + timedelta(minutes=30 * window), feature, _drifted(feature, window))
        for window in range(12)
        for feature in sorted(FEATURES)
    ]
    assert sum(row[2] for row in rows) == 7  # amount from window 6 on, the prediction once


def test_provisioning_points_at_the_reader_and_the_dashboards() -> None:
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/modelstats.yaml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["type"] == "grafana-postgresql-datasource"
    assert datasource["user"] == reader.ROLE
    assert datasource["uid"] == dashboard()["panels"][0]["datasource"]["uid"]
    uids = {p["datasource"]["uid"] for p in panels(dashboard())}
    uids |= {v["datasource"]["uid"] for v in dashboard()["templating"]["list"]}
    assert uids == {datasource["uid"]}
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/modelstats.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"
