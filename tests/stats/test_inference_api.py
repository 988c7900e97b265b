"""/drift, /accuracy and /overview over six hours of a monitored model written as the inference
job writes them (tests/stats/inference_scenario.py): every figure the answers give is checked
against what was planted, computed here from the planted samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelstats.core import drift_methods
from tests.configuration import configure
from tests.stats import inference_scenario as story
from tests.stats.samples import add_samples, client, iso
from tests.stats.scenario import add_alert


@pytest.fixture
def scenario(clean_db: str) -> story.InferenceScenario:
    return story.seed(clean_db, datetime.now(UTC))


def get(path: str, **params: str) -> dict:
    with client() as stats:
        response = stats.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def planted_columns(scenario: story.InferenceScenario) -> dict[str, dict[int, tuple]]:
    """Column -> window -> (method, figure, drifted), from the planted samples."""
    columns: dict[str, dict[int, tuple]] = {}
    for window in range(story.WINDOWS):
        for feature, method in [*story.FEATURES.items(), ("prediction", story.PREDICTION_METHOD)]:
            labels = {"feature": feature, "method": method}
            figure = scenario.value("feature_drift", window, **labels)
            if figure is not None:
                drifted = scenario.value("feature_drifted", window, **labels)
                columns.setdefault(feature, {})[window] = (method, figure, drifted)
    return columns


def test_each_window_is_a_cell_and_each_feature_a_row_most_drifted_first(scenario) -> None:
    answer = get(
        f"/drift/{story.MODEL}/{story.VERSION}",
        since=iso(scenario.since()),
        until=iso(scenario.until()),
    )
    assert answer["window_seconds"] == answer["cell_seconds"] == 300
    cells = answer["cells"]
    assert [c["time"] for c in cells] == [iso(start) for start in scenario.starts]
    for window, cell in enumerate(cells):
        assert cell["windows"] == 1
        assert cell["rows"] == scenario.value("rows", window)
        assert cell["no_reference"] == (window in story.NO_REFERENCE)
        assert cell["rows_short"] == (window == story.ROWS_SHORT)
        share = scenario.value("drift_share", window)
        assert cell["drift_share"] == share and cell["drift_share_max"] == share
        assert cell["judged"] == (share is not None)
        assert cell["dataset_drift"] == (scenario.value("dataset_drift", window) == 1)

    planted = planted_columns(scenario)
    drifted = {name: sum(v[2] for v in windows.values()) for name, windows in planted.items()}
    features = [c["feature"] for c in answer["features"]]
    assert "prediction" not in features
    assert features == sorted(set(planted) - {"prediction"}, key=lambda f: (-drifted[f], f))
    assert features[0] == "country" and features[-1] == "age"  # the planted story
    columns = {c["feature"]: c for c in [*answer["features"], answer["prediction"]]}
    for name, windows in planted.items():
        column = columns[name]
        assert column["drifted"] == drifted[name]
        assert column["judged"] == len(windows)
        assert column["methods"] == [story.FEATURES.get(name, story.PREDICTION_METHOD)]
        arrays = column["cells"]  # aligned with the answer's cells
        assert {len(values) for values in arrays.values()} == {story.WINDOWS}
        for window in range(story.WINDOWS):
            found = tuple(arrays[k][window] for k in ("method", "figure", "drifted", "judged"))
            if window in windows:
                method, figure, was_drifted = windows[window]
                assert found == (method, figure, was_drifted, 1)
            else:
                assert found == (None, None, 0, 0)  # no reference yet, or too few rows
    assert answer["methods"]["ks"] == {"kind": "p-value", "threshold": 0.05}
    assert answer["methods"]["jensenshannon"] == {"kind": "distance", "threshold": 0.1}
    assert set(answer["methods"]) == set(drift_methods.THRESHOLDS)


def test_a_long_range_groups_whole_windows_and_keeps_the_worst_figure(scenario) -> None:
    since = scenario.until() - timedelta(days=2)  # 576 windows: two a cell keeps 288
    answer = get(
        f"/drift/{story.MODEL}/{story.VERSION}", since=iso(since), until=iso(scenario.until())
    )
    assert answer["window_seconds"] == 300 and answer["cell_seconds"] == 600
    pairs: dict[str, list[int]] = {}
    for window, start in enumerate(scenario.starts):
        epoch = int(start.timestamp())
        cell = datetime.fromtimestamp(epoch - epoch % 600, UTC)
        pairs.setdefault(iso(cell), []).append(window)
    assert [c["time"] for c in answer["cells"]] == list(pairs)
    planted = planted_columns(scenario)
    amount = answer["features"][1]
    assert amount["feature"] == "amount"
    for i, (time, windows) in enumerate(pairs.items()):
        cell = answer["cells"][i]
        assert cell["time"] == time
        assert cell["windows"] == len(windows)
        shares = [scenario.value("drift_share", w) for w in windows]
        judged = [s for s in shares if s is not None]
        assert cell["judged"] == len(judged)
        if judged:
            assert cell["drift_share"] == pytest.approx(sum(judged) / len(judged))
            assert cell["drift_share_max"] == max(judged)
        figures = [planted["amount"][w] for w in windows if w in planted["amount"]]
        assert amount["cells"]["judged"][i] == len(figures)
        assert amount["cells"]["drifted"][i] == sum(f[2] for f in figures)
        least = min(f[1] for f in figures) if figures else None
        assert amount["cells"]["figure"][i] == least  # a p-value: the least is the most drifted


def test_accuracy_per_window_with_coverage_and_provisional_windows(scenario) -> None:
    path = f"/accuracy/{story.MODEL}/{story.VERSION}"
    window = {"since": iso(scenario.since()), "until": iso(scenario.until())}
    answer = get(path, **window)
    assert answer["task"] == "classification"
    assert answer["metrics"] == ["prediction_accuracy"]
    assert answer["horizon_seconds"] == 7 * 86400
    assert [c["time"] for c in answer["cells"]] == [iso(s) for s in scenario.starts]
    for number, cell in enumerate(answer["cells"]):
        coverage = scenario.value("label_coverage", number)
        assert cell["label_coverage"] == cell["label_coverage_min"] == coverage
        accuracy = scenario.value("prediction_accuracy", number)
        assert cell["values"] == ({} if accuracy is None else {"prediction_accuracy": accuracy})
        # Every window is within 7 days: those whose labels are not all in may still move.
        assert cell["provisional"] == (coverage < 1)
    assert sum(c["provisional"] for c in answer["cells"]) == story.WINDOWS - story.LABELLED_UNTIL
    # With a 30-minute horizon, only the windows that started less than 30 minutes ago.
    short = get(path, horizon="30m", **window)
    recent = scenario.now - timedelta(minutes=30)
    for start, cell in zip(scenario.starts, short["cells"], strict=True):
        assert cell["provisional"] == (start >= recent and cell["label_coverage"] < 1)
    assert 0 < sum(c["provisional"] for c in short["cells"]) < story.WINDOWS - story.LABELLED_UNTIL


def test_a_regression_model_gets_its_errors(clean_db) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    labels = {"source": "inference"}
    rows = []
    for i in range(6):
        at = start + timedelta(minutes=5 * i)
        rows += [
            ("prices", "v2", "rows", labels, at, 100.0),
            ("prices", "v2", "label_coverage", labels, at, 1.0),
            ("prices", "v2", "mae", labels, at, 2.0 + i),
            ("prices", "v2", "rmse", labels, at, 3.0 + i),
        ]
    add_samples(clean_db, rows)
    answer = get("/accuracy/prices/v2", since="2h")
    assert answer["task"] == "regression"
    assert answer["metrics"] == ["mae", "rmse"]
    assert [c["values"] for c in answer["cells"]] == [
        {"mae": 2.0 + i, "rmse": 3.0 + i} for i in range(6)
    ]
    assert all(c["provisional"] == 0 for c in answer["cells"])  # every label is in


def test_the_overview_lists_every_model_with_its_last_figures(scenario, clean_db) -> None:
    import psycopg

    quiet_alert = {
        "rule": "Silent",
        "state": "firing",
        "metric": "rows",
        "severity": "critical",
        "summary": "no traffic",
        "value": 0.0,
        "active_at": scenario.now - timedelta(days=3),
        "fired_at": scenario.now - timedelta(days=3),
    }
    with psycopg.connect(clean_db) as conn:
        add_alert(conn, quiet_alert, [], model="Quiet", version="v0")
    answer = get("/overview", since="24h")
    models = {m["model"]: m["versions"] for m in answer["models"]}
    assert list(models) == ["Mistral", "Quiet", "fraud"]
    (fraud,) = models["fraud"]
    assert fraud["inference"] is True
    assert fraud["requests"] == sum(scenario.value("requests", w) for w in range(story.WINDOWS))
    assert fraud["rows"] == sum(scenario.value("rows", w) for w in range(story.WINDOWS))
    last = story.WINDOWS - 1
    assert fraud["drift"] == {
        "time": iso(scenario.starts[last]),
        "drift_share": scenario.value("drift_share", last),
        "dataset_drift": scenario.value("dataset_drift", last),
    }
    labelled = story.UNLABELLED.start - 1  # the newest window with an accuracy
    assert fraud["accuracy"] == {
        "time": iso(scenario.starts[labelled]),
        "metric": "prediction_accuracy",
        "value": scenario.value("prediction_accuracy", labelled),
        "label_coverage": scenario.value("label_coverage", labelled),
        "inference": True,
    }
    assert [(a["rule"], a["metric"], a["severity"]) for a in fraud["firing"]] == [
        ("DatasetDrift", "dataset_drift", "warning")
    ]
    (mistral,) = models["Mistral"]
    assert mistral["inference"] is False
    assert (mistral["requests"], mistral["rows"], mistral["drift"]) == (None, None, None)
    assert mistral["accuracy"]["value"] == 0.88 and mistral["accuracy"]["label_coverage"] is None
    assert mistral["samples"] == 71 and mistral["firing"] == []
    (quiet,) = models["Quiet"]  # no samples in the range, yet an alert fires
    assert quiet["samples"] == 0 and quiet["last_seen"] is None
    assert [a["rule"] for a in quiet["firing"]] == ["Silent"]
    # A range before everything: only what fires now.
    early = get("/overview", since="30d", until="20d")
    assert [m["model"] for m in early["models"]] == ["Quiet", "fraud"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/drift/fraud/v1", {"since": "yesterday"}, "since"),
        ("/drift/fraud/v1", {"metric": "rows"}, "metric"),
        ("/accuracy/fraud/v1", {"horizon": "100d"}, "horizon"),
        ("/accuracy/fraud/v1", {"horizon": "soon"}, "horizon"),
        ("/overview", {"until": "2h", "since": "1h"}, "since"),
        ("/overview", {"limit": "3"}, "limit"),
    ],
)
def test_bad_parameters_are_named(clean_db, path, params, field) -> None:
    with client() as stats:
        response = stats.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_unknown_versions_are_404_and_the_token_rule_holds(scenario) -> None:
    with client() as stats:
        assert stats.get("/drift/fraud/v9").status_code == 404
        assert stats.get("/accuracy/nobody/v1").status_code == 404
        # A version without inference figures has an empty strip, not an error.
        empty = stats.get("/drift/Mistral/v1").json()
        assert (empty["cells"], empty["features"], empty["prediction"]) == ([], [], None)
    configure(STATS_API_TOKEN="s3cret")
    with client() as stats:
        for path in ("/drift/fraud/v1", "/accuracy/fraud/v1", "/overview"):
            assert stats.get(path).status_code == 401
            granted = stats.get(path, headers={"authorization": "Bearer s3cret"})
            assert granted.status_code == 200
