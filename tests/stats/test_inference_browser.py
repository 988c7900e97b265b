"""The overview page, the drift strip and the accuracy chart in a real browser (Debian's
chromium, headless) against the stats function run as its container runs it, over six hours of
a monitored model written as the inference job writes them (tests/stats/inference_scenario.py).

What the page shows is checked against the planted figures; screenshots of the three views are
left in the test's temporary directory (paths printed; run with -s to see them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.stats import inference_scenario as story
from tests.stats.browser import (
    assert_only_own_requests_and_no_errors,
    hover,
    open_view,
    shot,
    text,
    utc,
    view,
)
from tests.stats.samples import iso

pytestmark = pytest.mark.slow


@pytest.fixture
def scenario(clean_db: str) -> story.InferenceScenario:
    return story.seed(clean_db, datetime.now(UTC))


def fraud_view(base: str, scenario: story.InferenceScenario, **more: str) -> str:
    window = {"from": iso(scenario.since()), "to": iso(scenario.until())}
    return view(base, model=story.MODEL, version=story.VERSION, refresh="off", **window, **more)


def row_cells(row: Any) -> list[dict[str, str]]:
    """The cells of a strip row as the page placed them, read in one script."""
    return list(
        row.parent.execute_script(
            "return [...arguments[0].querySelectorAll('.track .cell')].map((c) => ({"
            " time: c.dataset.time, state: c.dataset.state, level: c.dataset.level || '',"
            " method: c.dataset.method || '', figure: c.dataset.figure || '',"
            " text: c.dataset.text, left: c.offsetLeft, width: c.offsetWidth,"
            " track: c.parentElement.clientWidth }))",
            row,
        )
    )


def test_the_home_page_lists_every_model_and_links_to_its_view(
    driver: Any, stats_url: str, scenario: story.InferenceScenario, tmp_path: Path
) -> None:
    open_view(driver, f"{stats_url}/")
    assert driver.execute_script("return document.body.className") == "home"
    rows = driver.find_elements("css selector", "table.overview-table tbody tr")
    assert [(r.get_attribute("data-model"), r.get_attribute("data-version")) for r in rows] == [
        ("Mistral", "v1"),
        ("fraud", "v1"),
    ]
    mistral, fraud = ([td.text for td in r.find_elements("tag name", "td")] for r in rows)
    last = story.WINDOWS - 1
    requests = sum(scenario.value("requests", w) for w in range(story.WINDOWS))
    rows_total = sum(scenario.value("rows", w) for w in range(story.WINDOWS))
    assert fraud[0] == "fraud monitored"
    assert fraud[2] == f"{requests:,.0f} requests, {rows_total:,.0f} rows"
    share = scenario.value("drift_share", last)
    dataset = "dataset drift" if scenario.value("dataset_drift", last) else "no dataset drift"
    assert fraud[3] == f"{share:.4g} ({dataset})"
    labelled = story.UNLABELLED.start - 1
    accuracy = scenario.value("prediction_accuracy", labelled)
    coverage = scenario.value("label_coverage", labelled)
    assert fraud[4] == f"{accuracy:.4g}, coverage {coverage:.4g}"
    assert fraud[5] == "DatasetDrift (warning) on dataset_drift"
    assert "has-firing" in rows[1].get_attribute("class")
    assert mistral[2:6] == ["71 samples", "–", "0.88", "–"]  # the model server's own accuracy
    shot(driver, tmp_path, "overview")
    assert_only_own_requests_and_no_errors(driver, stats_url)

    rows[1].find_element("tag name", "a").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: d.find_elements("css selector", ".strip"))
    query = parse_qs(urlsplit(driver.current_url).query)
    assert (query["model"], query["version"], query["range"]) == (["fraud"], ["v1"], ["24h"])
    assert driver.find_element("id", "inference").is_displayed()
    assert not driver.find_element("id", "overview").is_displayed()
    # Back home from the title, the range kept.
    driver.find_element("id", "home").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_elements("css selector", "table.overview-table")
    )
    assert "model=" not in driver.current_url and "range=24h" in driver.current_url
    assert driver.find_element("css selector", "table.overview-table").is_displayed()
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_the_drift_strip_colours_each_window_and_sorts_features(
    driver: Any, stats_url: str, scenario: story.InferenceScenario, tmp_path: Path
) -> None:
    open_view(driver, fraud_view(stats_url, scenario))
    strip = driver.find_element("css selector", ".strip")
    features = [
        row.get_attribute("data-feature")
        for row in strip.find_elements("css selector", ".strip-row.feature")
    ]
    assert features == ["country", "amount", "tenure", "age"]  # most drifted windows first
    heading = strip.find_element("css selector", ".strip-heading")
    assert heading.text == "prediction drift"
    prediction = strip.find_element("css selector", ".strip-row.prediction")
    assert prediction.get_attribute("data-feature") == "prediction"
    assert prediction.location["y"] > heading.location["y"]  # set apart, under the features

    windows = row_cells(strip.find_element("css selector", ".strip-row.windows"))
    assert [c["time"] for c in windows] == [iso(start) for start in scenario.starts]
    states = [c["state"] for c in windows]
    assert states[: len(story.NO_REFERENCE)] == ["no-reference"] * len(story.NO_REFERENCE)
    assert states[story.ROWS_SHORT] == "rows-short"
    for window, state in enumerate(states):
        if window not in story.NO_REFERENCE and window != story.ROWS_SHORT:
            drifted = scenario.value("dataset_drift", window) == 1
            assert state == ("dataset-drift" if drifted else "judged"), window
    assert "too few rows, 40 rows" in windows[story.ROWS_SHORT]["text"]
    assert windows[0]["text"].endswith("no reference yet, 600 rows")

    # Each cell at its window's place: the n-th of 72 windows starts n/72 of the way along.
    for window, found in enumerate(windows):
        assert found["left"] == pytest.approx(found["track"] * window / story.WINDOWS, abs=1.5)

    rows = {name: strip.find_element("css selector", f"[data-feature={name}]") for name in features}
    amount = {c["time"]: c for c in row_cells(rows["amount"]) if c["method"]}
    for window in story.AMOUNT_DRIFT:
        cell = amount[iso(scenario.starts[window])]
        figure = scenario.value("feature_drift", window, feature="amount", method="ks")
        assert cell["state"] == "drifted" and float(cell["figure"]) == figure
        assert cell["level"] == ("2" if figure >= 0.005 else "3")  # 10x past 0.05 is darker
    tenure = {c["time"]: c for c in row_cells(rows["tenure"]) if c["method"]}
    close = [w for w in story.TENURE_CLOSE if w != story.TENURE_DRIFT]
    assert {tenure[iso(scenario.starts[w])]["state"] for w in close} == {"close"}
    assert tenure[iso(scenario.starts[story.TENURE_DRIFT])]["state"] == "drifted"
    age = [c for c in row_cells(rows["age"]) if c["method"]]
    assert {c["state"] for c in age} == {"fine"}
    # Windows without a verdict show in every row too, said why.
    skipped = [c for c in row_cells(rows["age"]) if not c["method"]]
    assert len(skipped) == len(story.NO_REFERENCE) + 1

    target = rows["amount"].find_element(
        "css selector", f".cell[data-time='{iso(scenario.starts[story.AMOUNT_DRIFT.start])}']"
    )
    hover(driver, target)
    tip = text(driver, ".strip-tip")
    start = scenario.starts[story.AMOUNT_DRIFT.start]
    assert tip == f"amount, {utc(start)}: drifted; p-value 0.001 (ks: drifted below 0.05)"
    assert "no reference yet" in text(driver, ".strip-legend")
    shot(driver, tmp_path, "drift-strip")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_the_accuracy_chart_marks_the_provisional_windows(
    driver: Any, stats_url: str, scenario: story.InferenceScenario, tmp_path: Path
) -> None:
    open_view(driver, fraud_view(stats_url, scenario))
    figure = driver.find_element("css selector", "#accuracy figure.accuracy")
    assert figure.get_attribute("data-metric") == "prediction_accuracy"
    bands = figure.find_elements("css selector", ".provisional-band")
    # Labels may still come from window 60 on: a band over the accuracy, one over the coverage.
    assert len(bands) == 2
    since, until = scenario.since(), scenario.until()
    start = scenario.starts[story.LABELLED_UNTIL]
    for band in bands:
        assert band.get_attribute("data-from") == iso(start).replace("Z", ".000Z")
        assert band.get_attribute("data-to") == iso(until).replace("Z", ".000Z")
    plot = figure.find_element("css selector", ".u-over")
    left = (bands[0].location["x"] - plot.location["x"]) / plot.size["width"]
    assert left == pytest.approx((start - since) / (until - since), abs=0.01)
    assert bands[0].text == "provisional"

    # The strip's cells and the chart's windows line up.
    strip_track = driver.find_element("css selector", ".strip-row.windows .track")
    assert strip_track.location["x"] == pytest.approx(plot.location["x"], abs=2)
    assert strip_track.size["width"] == pytest.approx(plot.size["width"], abs=2)

    # Hover a provisional window: its figure, its coverage, and why it may still move.
    window = story.LABELLED_UNTIL + 3
    middle = scenario.starts[window] + story.WINDOW / 2
    offset = plot.size["width"] * ((middle - since) / (until - since) - 0.5)
    hover(driver, plot, x_offset=round(offset))
    tip = text(driver, "figure.accuracy .tooltip")
    accuracy = scenario.value("prediction_accuracy", window)
    coverage = scenario.value("label_coverage", window)
    assert tip == (
        f"{utc(scenario.starts[window])}: prediction_accuracy {accuracy:.4g}, label coverage"
        f" {coverage:.4g}; provisional: labels may still come"
    )
    shot(driver, tmp_path, "accuracy")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_a_model_without_inference_figures_has_no_drift_section(
    driver: Any, stats_url: str, scenario: story.InferenceScenario
) -> None:
    open_view(driver, view(stats_url, model="Mistral", version="v1", range="6h"))
    assert driver.execute_script("return document.body.className") == "model"
    assert not driver.find_element("id", "inference").is_displayed()
    assert driver.find_elements("css selector", "figure.chart[data-metric=prediction_accuracy]")
    # An unknown model in a link: the overview, and a word about it.
    open_view(driver, view(stats_url, model="Gone"))
    assert text(driver, "#message") == "no model Gone: every model is listed here"
    assert driver.find_element("css selector", "table.overview-table").is_displayed()
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_a_short_horizon_in_the_url_settles_older_windows(
    driver: Any, stats_url: str, scenario: story.InferenceScenario
) -> None:
    open_view(driver, fraud_view(stats_url, scenario, horizon="30m"))
    (band, _) = driver.find_elements("css selector", "#accuracy .provisional-band")
    recent = scenario.now - timedelta(minutes=30)
    first = min(s for s in scenario.starts if s >= recent)
    assert band.get_attribute("data-from") == iso(first).replace("Z", ".000Z")
    assert parse_qs(urlsplit(driver.current_url).query)["horizon"] == ["30m"]
    assert_only_own_requests_and_no_errors(driver, stats_url)
