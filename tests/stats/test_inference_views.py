"""What the etl's inference job writes, read back by the stats function: logged records and
their labels ingested in process, the job run over them, its reply ingested as the broker would
deliver it; then /drift, /accuracy, /overview and /metrics give the job's own figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelstats.etl import jobs, runner
from modelstats.etl.inference import monitors
from tests.clients import function_client
from tests.configuration import configure
from tests.scrapes import key, samples
from tests.stats.samples import client, iso

JOB = jobs.parse({"source": "inference"})
MONITORS = "defaults: {window: 1m, lateness: 30s, reference_min_rows: 500, min_rows: 100}\n"
INGEST = "functions/ingest/main.py"


def headers(type_: str, event_id: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/views",
        "ce-type": type_,
        "content-type": "application/json",
    }


def records(start: datetime, rng: np.random.Generator, rows: int, shift: float) -> list[dict]:
    amounts = rng.normal(100 + 20 * shift, 20, rows)
    countries = rng.choice(["NL", "DE", "FR", "BE"] if shift else ["NL", "DE", "FR"], rows)
    return [
        {
            "id": f"{iso(start)}-{i}",
            "time": iso(start + timedelta(milliseconds=50 * i)),
            "features": {"amount": float(amounts[i]), "country": str(countries[i])},
            "prediction": int(amounts[i] > 120),
        }
        for i in range(rows)
    ]


@pytest.fixture
def figured(clean_db: str, tmp_path: Path) -> dict:
    """Three windows of logged traffic (the reference, a drifted one, a short one), the truth
    of half of the drifted window's rows, and the job's reports, stored."""
    path = tmp_path / "monitors.yaml"
    path.write_text(MONITORS)
    configure(MONITORS_FILE=str(path))
    monitors.reset()
    rng = np.random.default_rng(7)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    windows = [start + timedelta(minutes=i) for i in range(3)]
    logged = [
        records(windows[0], rng, 600, 0.0),
        records(windows[1], rng, 400, 1.0),
        records(windows[2], rng, 50, 0.0),
    ]
    truth = [{"id": r["id"], "label": int(r["features"]["amount"] > 125)} for r in logged[1]]
    with function_client("ingest", INGEST) as ingest:
        for number, rows in enumerate(logged):
            data = {"model": "fraud", "version": "v1", "records": rows}
            sent = ingest.post(
                "/",
                headers=headers("modelstats.inference.logged", f"rows-{number}"),
                content=json.dumps(data),
            )
            assert sent.status_code == 204, sent.text
        labels = {"model": "fraud", "labels": truth[::2]}
        sent = ingest.post(
            "/", headers=headers("modelstats.label.reported", "labels"), content=json.dumps(labels)
        )
        assert sent.status_code == 204, sent.text
    reports = runner.run(JOB, now=start + timedelta(minutes=5)).reports
    with function_client("ingest", INGEST) as ingest:
        sent = ingest.post(
            "/",
            headers=headers("modelstats.metric.reported", "reply"),
            content=json.dumps({"reports": reports}),
        )
        assert sent.status_code in (200, 202, 204), sent.text
    yield {"windows": windows, "reports": reports}
    monitors.reset()


def figures(reports: list[dict], at: datetime, **labels: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for report in reports:
        extra = {k: v for k, v in report["labels"].items() if k != "source"}
        if report["time"] == iso(at) and extra == labels:
            found.update(report["metrics"])
    return found


def test_the_drift_strip_holds_the_jobs_verdicts(figured) -> None:
    reports, windows = figured["reports"], figured["windows"]
    with client() as stats:
        answer = stats.get(
            "/drift/fraud/v1",
            params={"since": iso(windows[0]), "until": iso(windows[-1] + timedelta(minutes=1))},
        ).json()
    assert answer["window_seconds"] == 60
    drifted = figures(reports, windows[1])
    short = figures(reports, windows[2])
    cells = answer["cells"]
    assert [c["time"] for c in cells] == [iso(w) for w in windows]
    assert cells[1]["drift_share"] == drifted["drift_share"] > 0
    assert cells[1]["dataset_drift"] == drifted["dataset_drift"]
    assert short["drift_rows_short"] == 1 and cells[2]["rows_short"] == 1
    assert [c["rows"] for c in cells] == [600, 400, 50]
    columns = {c["feature"]: c for c in [*answer["features"], answer["prediction"]]}
    assert set(columns) == {"amount", "country", "prediction"}
    for name, column in columns.items():
        (method,) = column["methods"]
        job = figures(reports, windows[1], feature=name, method=method)
        assert column["cells"]["figure"][1] == job["feature_drift"]
        assert column["cells"]["drifted"][1] == job["feature_drifted"]
        assert column["cells"]["method"][2] is None  # the short window: no verdict
    assert columns["amount"]["drifted"] == 1  # shifted by a standard deviation


def test_accuracy_and_coverage_are_the_jobs(figured) -> None:
    reports, windows = figured["reports"], figured["windows"]
    job = figures(reports, windows[1])
    assert job["label_coverage"] == pytest.approx(0.5)
    with client() as stats:
        answer = stats.get("/accuracy/fraud/v1", params={"since": iso(windows[0])}).json()
    (cell,) = [c for c in answer["cells"] if c["time"] == iso(windows[1])]
    assert cell["values"]["prediction_accuracy"] == job["prediction_accuracy"]
    assert cell["label_coverage"] == job["label_coverage"]
    assert cell["provisional"] == 1  # half its labels may still come


def test_metrics_exposes_the_last_drift_share_and_the_overview_has_it(figured) -> None:
    reports, windows = figured["reports"], figured["windows"]
    last = figures(reports, windows[1])["drift_share"]  # the short window has none
    configure(STATS_API_TOKEN=None)
    with client() as stats:
        scraped = samples(stats.get("/metrics").text)
        overview = stats.get("/overview").json()
    gauge = key("modelstats_metric_last_value", model="fraud", version="v1", metric="drift_share")
    assert scraped[gauge] == last
    (fraud,) = [m for m in overview["models"] if m["model"] == "fraud"]
    (version,) = fraud["versions"]
    assert version["drift"]["drift_share"] == last
    assert version["drift"]["time"] == iso(windows[1])
    assert version["rows"] == 1050
