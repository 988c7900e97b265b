"""Labels joined to logged predictions (real PostgreSQL, events ingested in process): every
figure equal to scikit-learn's on the same joined rows, recomputed as labels arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn import metrics as sk

from modelstats.etl import jobs, runner
from tests.loggers import kserve_headers, v2_request, v2_response

W0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
JOB = jobs.parse({"source": "inference"})
MONITORS = """
defaults: {window: 1m, lateness: 30s}
monitors:
  - model: prices
    task: regression
  - model: fraud
    horizon: 10m
"""


@pytest.fixture
def post(logged, monitors_file):
    monitors_file(MONITORS)
    return logged


def event(type_: str, event_id: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/labels",
        "ce-type": type_,
        "content-type": "application/json",
    }


def label(post, model: str, pairs: list[tuple[str, object]], at: datetime, event_id: str) -> None:
    data = {
        "model": model,
        "labels": [{"id": i, "label": v, "time": at.isoformat()} for i, v in pairs],
    }
    post(event("modelstats.label.reported", event_id), data)


def window(reports: list[dict], version: str, **labels: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for r in reports:
        if r["version"] == version and r["time"] == "2026-12-01T10:00:00Z" and r.get("replace"):
            extra = {k: v for k, v in r["labels"].items() if k != "source"}
            if extra == labels:
                found.update(r["metrics"])
    return found


def test_binary_figures_follow_the_labels_as_they_arrive(post) -> None:
    rng = np.random.default_rng(2)
    calls = 60
    probability = rng.random(calls)
    for i in range(calls):
        at = W0 + timedelta(seconds=i)
        post(kserve_headers("request", f"c{i}", "fraud", at), v2_request({"x": rng.normal(size=1)}))
        p = np.array([[1 - probability[i], probability[i]]])
        post(kserve_headers("response", f"c{i}", "fraud", at), v2_response({"p": p}, version="v1"))
    truth = (rng.random(calls) < probability).astype(int)
    # A third of the labels come before their window is profiled, one of them twice (the
    # later wins), and a label for a row that never existed.
    label(post, "fraud", [(f"c{i}", 1 - int(truth[i])) for i in range(0, 20)], W0, "early-a")
    label(
        post,
        "fraud",
        [(f"c{i}", int(truth[i])) for i in range(0, 20)],
        W0 + timedelta(seconds=70),
        "early-b",
    )
    label(post, "fraud", [("nobody", 1)], W0 + timedelta(seconds=70), "ghost")
    first = window(runner.run(JOB, now=W0 + timedelta(minutes=2)).reports, "v1")
    joined = list(range(20))
    predicted = (probability[joined] > 0.5).astype(int)
    assert first["label_coverage"] == 20 / calls
    assert first["prediction_accuracy"] == sk.accuracy_score(truth[joined], predicted)
    assert first["roc_auc"] == pytest.approx(sk.roc_auc_score(truth[joined], probability[joined]))
    assert first["label_delay_p50"] == pytest.approx(
        float(np.median([70 - i for i in joined])), abs=1e-3
    )

    label(
        post,
        "fraud",
        [(f"c{i}", int(truth[i])) for i in range(20, calls)],
        W0 + timedelta(minutes=3),
        "late",
    )
    again = runner.run(JOB, now=W0 + timedelta(minutes=4)).reports
    figures = window(again, "v1")
    macro = window(again, "v1", average="macro")
    predicted = (probability > 0.5).astype(int)
    assert figures["label_coverage"] == 1.0
    assert figures["prediction_accuracy"] == sk.accuracy_score(truth, predicted)
    assert figures["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, probability))
    precision, recall, f1, _ = sk.precision_recall_fscore_support(truth, predicted, average="macro")
    assert macro == pytest.approx({"precision": precision, "recall": recall, "f1": f1})
    for c in (0, 1):
        per_class = window(again, "v1", **{"class": str(c)})
        assert per_class["recall"] == pytest.approx(sk.recall_score(truth, predicted, pos_label=c))
    assert runner.run(JOB, now=W0 + timedelta(minutes=4)).event() is None  # nothing new

    # Past the horizon (10m), the label that never found its row is counted, and goes.
    gone = runner.run(JOB, now=W0 + timedelta(minutes=15)).reports
    (unmatched,) = [r for r in gone if "labels_unmatched" in r["metrics"]]
    assert unmatched["metrics"]["labels_unmatched"] == 1


def test_multiclass_records(post) -> None:
    rng = np.random.default_rng(3)
    classes = np.array(["cat", "dog", "bird"], dtype=object)
    predicted = classes[rng.integers(0, 3, 90)]
    truth = np.where(rng.random(90) < 0.7, predicted, classes[rng.integers(0, 3, 90)])
    records = [
        {
            "id": f"r{i}",
            "time": (W0 + timedelta(seconds=i / 2)).isoformat(),
            "features": {"w": float(i)},
            "prediction": str(predicted[i]),
        }
        for i in range(90)
    ]
    post(
        event("modelstats.inference.logged", "recs"),
        {"model": "pets", "version": "v2", "records": records},
    )
    label(
        post, "pets", [(f"r{i}", str(truth[i])) for i in range(90)], W0 + timedelta(minutes=1), "l"
    )
    reports = runner.run(JOB, now=W0 + timedelta(minutes=2)).reports
    assert window(reports, "v2")["prediction_accuracy"] == sk.accuracy_score(truth, predicted)
    precision, recall, f1, _ = sk.precision_recall_fscore_support(truth, predicted, average="macro")
    assert window(reports, "v2", average="macro") == pytest.approx(
        {"precision": precision, "recall": recall, "f1": f1}
    )
    assert "roc_auc" not in window(reports, "v2")  # three classes, no score


def test_regression_records(post) -> None:
    rng = np.random.default_rng(4)
    truth = np.round(rng.normal(100, 30, 50), 2)
    truth[:3] = 0.0
    predicted = truth + rng.normal(0, 5, 50)
    records = [
        {
            "id": f"p{i}",
            "time": (W0 + timedelta(seconds=i)).isoformat(),
            "features": {"rooms": i % 5},
            "prediction": float(predicted[i]),
        }
        for i in range(50)
    ]
    post(
        event("modelstats.inference.logged", "prices"),
        {"model": "prices", "version": "v1", "records": records},
    )
    label(
        post,
        "prices",
        [(f"p{i}", float(truth[i])) for i in range(50)],
        W0 + timedelta(minutes=1),
        "t",
    )
    figures = window(runner.run(JOB, now=W0 + timedelta(minutes=2)).reports, "v1")
    assert figures["mae"] == pytest.approx(sk.mean_absolute_error(truth, predicted))
    assert figures["rmse"] == pytest.approx(sk.root_mean_squared_error(truth, predicted))
    nonzero = truth != 0
    assert figures["mape"] == pytest.approx(
        sk.mean_absolute_percentage_error(truth[nonzero], predicted[nonzero])
    )
    assert figures["mape_zero_labels"] == 3


def kept(url: str, model: str) -> tuple[bool, set[bool]]:
    """Whether the model is marked labelled, and the `indexed` of its kept predictions."""
    import psycopg

    with psycopg.connect(url) as conn:
        (labelled,) = conn.execute(
            "SELECT labelled FROM inference_models WHERE model = %s", (model,)
        ).fetchone()
        rows = conn.execute(
            "SELECT DISTINCT indexed FROM inference_predictions WHERE model = %s", (model,)
        ).fetchall()
    return labelled, {indexed for (indexed,) in rows}


def test_a_first_label_after_its_rows_were_kept_still_finds_them(post, clean_db) -> None:
    """Predictions of a model without labels stay out of the id index (it costs them nothing);
    its first label puts them in, and every later row goes in as it is kept."""
    rng = np.random.default_rng(5)
    predicted = np.where(rng.random(40) < 0.5, "stay", "leave").astype(object)
    truth = np.where(rng.random(40) < 0.8, predicted, "other").astype(object)

    def records(model: str, first: int, count: int, start: datetime) -> None:
        rows = [
            {
                "id": f"{model}-{i}",
                "time": (start + timedelta(seconds=i - first)).isoformat(),
                "features": {"tenure": float(i)},
                "prediction": str(predicted[i % 40]),
            }
            for i in range(first, first + count)
        ]
        post(
            event("modelstats.inference.logged", f"{model}-{first}"),
            {"model": model, "version": "v1", "records": rows},
        )

    records("churn", 0, 40, W0)
    records("quiet", 0, 10, W0)
    runner.run(JOB, now=W0 + timedelta(minutes=2))
    assert kept(clean_db, "churn") == (False, {False})

    pairs = [(f"churn-{i}", str(truth[i])) for i in range(40)] + [("churn-none", "stay")]
    label(post, "churn", pairs, W0 + timedelta(minutes=2), "first")
    figures = window(runner.run(JOB, now=W0 + timedelta(minutes=3)).reports, "v1")
    assert figures["label_coverage"] == 1.0
    assert figures["prediction_accuracy"] == sk.accuracy_score(truth, predicted)
    assert kept(clean_db, "churn") == (True, {True})
    assert kept(clean_db, "quiet") == (False, {False})

    records("churn", 40, 5, W0 + timedelta(minutes=5))
    runner.run(JOB, now=W0 + timedelta(minutes=7))
    assert kept(clean_db, "churn") == (True, {True})
    # Past the horizon, only the label whose row never came counts as unmatched.
    gone = runner.run(JOB, now=W0 + timedelta(days=8)).reports
    unmatched = [
        r["metrics"]["labels_unmatched"] for r in gone if "labels_unmatched" in r["metrics"]
    ]
    assert unmatched == [1]
