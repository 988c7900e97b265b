"""The dashboard in a real browser: Debian's chromium, headless, against the stats function run as
its container runs it, over a seeded day of three models (tests/stats/scenario.py).

Each test loads a view from its URL and reads what the page shows; every test also checks that
the page asked nothing of any other server and logged no script error. Screenshots of three
views are left in the test's temporary directory (paths printed; run with -s to see them).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.functions import function_process
from tests.stats import browser
from tests.stats.browser import (
    assert_only_own_requests_and_no_errors,
    hover,
    open_view,
    shot,
    text,
    utc,
    view,
)
from tests.stats.samples import SOURCE, add_samples, iso
from tests.stats.scenario import Scenario, add_alert, seed

pytestmark = pytest.mark.slow

TOKEN = "dashboard-s3cret"


@pytest.fixture
def scenario(clean_db: str) -> Scenario:
    return seed(clean_db, datetime.now(UTC))


def six_hours(scenario: Scenario, ahead: timedelta = timedelta(0)) -> dict[str, str]:
    """A custom range: the collapse falls in it, and it may run past the last sample."""
    start = scenario.now - timedelta(hours=6)
    return {"from": iso(start), "to": iso(scenario.now + ahead)}


def expected_axis(since: datetime, until: datetime, step: timedelta) -> list[str]:
    """The labels of a UTC time axis with ticks every `step` inside [since, until]."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    tick = epoch + -(-(since - epoch) // step) * step
    labels = []
    while tick <= until:
        clock = tick.strftime("%H:%M")
        first_or_midnight = not labels or clock == "00:00"
        labels.append(f"{clock}\n{tick:%b} {tick.day}" if first_or_midnight else clock)
        tick += step
    return labels


def test_a_view_from_its_url_has_a_utc_time_axis_over_the_whole_range(
    driver: Any, stats_url: str, scenario: Scenario, tmp_path: Path
) -> None:
    # Two hours past the last sample: the axis must cover the range asked for, not the data.
    window = six_hours(scenario, ahead=timedelta(hours=2))
    open_view(driver, view(stats_url, model="Mistral", version="v2", **window))
    assert driver.execute_script("return document.getElementById('model').value") == "Mistral"
    assert driver.execute_script("return document.getElementById('version').value") == "v2"
    since = scenario.now - timedelta(hours=6)
    until = scenario.now + timedelta(hours=2)
    status = text(driver, "#status")
    assert status.startswith(f"{utc(since)} → {utc(until)}, buckets of 2m")
    # When it was loaded, on the same 24-hour UTC clock as every other time on the page.
    assert re.search(r", updated [0-2]\d:[0-5]\d:[0-5]\d UTC$", status), status
    figures = driver.find_elements("css selector", "figure.chart")
    assert [f.get_attribute("data-metric") for f in figures] == [
        "drift",
        "inference_time",
        "prediction_accuracy",
    ]
    assert "inference_time (ms)" in [f.find_element("tag name", "figcaption").text for f in figures]
    labels = json.loads(figures[0].get_attribute("data-x-labels"))
    first, second = (datetime.strptime(label[:5], "%H:%M") for label in labels[:2])
    step = (second - first) % timedelta(days=1)  # uPlot picks it from the chart's width
    assert step in (timedelta(hours=1), timedelta(hours=2)), labels
    assert labels == expected_axis(since, until, step)
    # An axis over the data's span (it ends at the last sample) would stop sooner.
    assert len(labels) > len(expected_axis(since, scenario.now, step))
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_the_firing_interval_is_shaded_on_its_metric_with_the_alert_on_hover(
    driver: Any, stats_url: str, scenario: Scenario, tmp_path: Path
) -> None:
    window = six_hours(scenario)
    open_view(
        driver, view(stats_url, model="Mistral", version="v2", **{"label.env": "prod"}, **window)
    )
    accuracy = driver.find_element("css selector", "figure[data-metric=prediction_accuracy]")
    bands = accuracy.find_elements("css selector", ".alert-band")
    assert len(bands) == 1
    band = bands[0]
    assert band.get_attribute("data-rule") == "LowPredictionAccuracy"
    assert "critical" in band.get_attribute("class").split()
    assert band.get_attribute("data-from") == iso(scenario.fired_at).replace("Z", ".000Z")
    assert band.get_attribute("data-to") == iso(scenario.resolved_at).replace("Z", ".000Z")
    # Where it is drawn: the same fraction of the plot as the interval is of the range.
    plot = accuracy.find_element("css selector", ".u-over")
    span = timedelta(hours=6)
    left = (band.location["x"] - plot.location["x"]) / plot.size["width"]
    width = band.size["width"] / plot.size["width"]
    assert left == pytest.approx((scenario.fired_at - (scenario.now - span)) / span, abs=0.005)
    assert width == pytest.approx((scenario.resolved_at - scenario.fired_at) / span, abs=0.005)
    # The band is narrower than its rule's name: the label is the name in full, in the plot.
    label = band.find_element("css selector", ".alert-label")
    assert label.text == "LowPredictionAccuracy"
    assert label.size["width"] > band.size["width"]
    assert plot.location["x"] <= label.location["x"]
    assert label.location["x"] + label.size["width"] <= plot.location["x"] + plot.size["width"]
    assert driver.execute_script("return arguments[0].scrollWidth", label) <= label.size["width"]
    # The drift alert still fires: its band runs to the end; latency had no alert.
    drift = driver.find_element("css selector", "figure[data-metric=drift] .alert-band")
    assert drift.get_attribute("data-rule") == "drift_high"
    latency = driver.find_element("css selector", "figure[data-metric=inference_time]")
    assert latency.find_elements("css selector", ".alert-band") == []

    hover(driver, band)
    tooltip = text(driver, "figure[data-metric=prediction_accuracy] .tooltip")
    assert "alert LowPredictionAccuracy (critical): prediction_accuracy lower than 0.3" in tooltip
    assert f"fired {utc(scenario.fired_at)}, resolved {utc(scenario.resolved_at)}" in tooltip
    local = text(driver, "figure[data-metric=prediction_accuracy] .tooltip .local")
    assert str(scenario.now.year) in local  # the bucket's time again, in the browser's zone
    panel = text(driver, "#alerts")
    assert "Firing now (1)" in panel and "drift_high" in panel
    # In the API's words: the series went back to inactive, the alert is resolved.
    resolved = "LowPredictionAccuracy v2 prediction_accuracy {env=prod}: firing → resolved"
    assert f"{utc(scenario.resolved_at)} {resolved}" in panel
    assert "inactive" not in panel.split(resolved)[0].splitlines()[-1]
    assert "Dead letters in the last 24 h: 2" in text(driver, "#health")
    assert "model: missing" in text(driver, "#health")
    shot(driver, tmp_path, "alert")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_a_baseline_is_overlaid_and_the_table_gives_the_difference(
    driver: Any, stats_url: str, scenario: Scenario, tmp_path: Path
) -> None:
    window = six_hours(scenario)
    params = {"model": "Mistral", "version": "v2", "baseline": "v1", "label.env": "prod", **window}
    open_view(driver, view(stats_url, **params))
    accuracy = driver.find_element("css selector", "figure[data-metric=prediction_accuracy]")
    legend = accuracy.find_element("css selector", ".legend").text
    assert "v2 mean" in legend and "v1 (baseline) mean" in legend
    answer = httpx.get(
        f"{stats_url}/stats/Mistral",
        params={
            "baseline": "v1",
            "label.env": "prod",
            "bucket": "auto",
            "since": window["from"],
            "until": window["to"],
        },
    ).json()

    hover(driver, accuracy.find_element("css selector", ".u-over"), x_offset=-50)
    tooltip = accuracy.find_element("css selector", ".tooltip")
    heads = [th.text for th in tooltip.find_elements("css selector", "tr:first-child th")]
    assert heads == ["", "v2", "v1 (baseline)"]
    when = tooltip.find_element("css selector", ".when").text.split(", bucket")[0]
    means = [td.text for td in tooltip.find_elements("css selector", "tr:nth-child(3) td")]
    for version, shown in zip(("v2", "v1"), means, strict=True):
        points = answer["versions"][version]["series"]["prediction_accuracy"]
        point = next(p for p in points if utc(datetime.fromisoformat(p["time"])) == when)
        assert shown == repr(point["mean"])  # exact in the tooltip

    stats = answer["versions"]["v2"]["metrics"]["prediction_accuracy"]
    change = stats["vs_baseline"]["mean"]
    row = driver.find_element("css selector", "table.summary tbody tr.main:nth-last-child(2)")
    cells = row.find_elements("tag name", "td")
    assert cells[0].text == "prediction_accuracy"
    assert cells[3].text == f"{stats['mean']:.4g}"  # 4 significant digits on screen,
    assert cells[3].get_attribute("title") == repr(stats["mean"])  # exact on hover
    assert cells[-2].get_attribute("title").startswith(f"difference {change['difference']!r}")
    shot(driver, tmp_path, "baseline")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_the_label_filter_tells_series_apart_and_lives_in_the_url(
    driver: Any, stats_url: str, scenario: Scenario
) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    open_view(driver, view(stats_url, model="Mistral", version="v2", **six_hours(scenario)))
    assert "Series with different env (prod, staging) are merged" in text(driver, "#label-hint")
    choice = Select(driver.find_element("css selector", "#labels select[data-label=env]"))
    assert [o.text for o in choice.options] == ["any", "prod", "staging"]
    browser.requests(driver)
    choice.select_by_visible_text("staging")
    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements("css selector", "table.summary tbody tr")) == 1
    )
    assert parse_qs(urlsplit(driver.current_url).query)["label.env"] == ["staging"]
    cells = [td.text for td in driver.find_elements("css selector", "table.summary tbody td")]
    assert cells[:4] == ["prediction_accuracy", "v2", "72", "0.61"]  # one every 5 minutes
    assert text(driver, "#label-hint") == ""
    # The link reproduces the view.
    open_view(driver, driver.current_url)
    assert Select(
        driver.find_element("css selector", "#labels select")
    ).first_selected_option.text == ("staging")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_an_empty_range_says_so_and_when_the_last_sample_was(
    driver: Any, stats_url: str, scenario: Scenario, tmp_path: Path
) -> None:
    since = scenario.now - timedelta(days=20)
    until = since + timedelta(hours=3)
    open_view(
        driver,
        view(stats_url, model="Mistral", version="v2", **{"from": iso(since), "to": iso(until)}),
    )
    last = scenario.now - timedelta(minutes=5)
    assert text(driver, "#message") == (
        f"no samples of Mistral v2 between {utc(since)} and {utc(until)};"
        f" last sample at {utc(last)}"
    )
    assert driver.find_elements("css selector", "figure.chart") == []
    shot(driver, tmp_path, "empty")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_dragging_zooms_in_and_back_returns(
    driver: Any, stats_url: str, scenario: Scenario
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    open_view(driver, view(stats_url, model="Mistral", version="v1", range="24h", refresh="off"))
    plot = driver.find_element("css selector", "figure[data-metric=drift] .u-over")
    width = plot.size["width"]  # the charts are drawn anew for the zoomed range
    ActionChains(driver).move_to_element_with_offset(plot, -100, 0).click_and_hold().move_by_offset(
        120, 0
    ).release().perform()
    WebDriverWait(driver, 30).until(lambda d: "from=" in d.current_url)
    query = parse_qs(urlsplit(driver.current_url).query)
    since, until = (datetime.fromisoformat(query[k][0]) for k in ("from", "to"))
    dragged = timedelta(hours=24) * 120 / width  # 120 px of a day
    assert (until - since) / dragged == pytest.approx(1, abs=0.02)
    assert query["refresh"] == ["off"]
    WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "back").is_displayed())
    driver.find_element("id", "back").click()
    WebDriverWait(driver, 30).until(lambda d: "range=24h" in d.current_url)
    assert not driver.find_element("id", "back").is_displayed()
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_a_401_asks_for_the_token_then_sends_it(
    driver: Any, database_url: str, scenario: Scenario
) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    with function_process("stats", SOURCE, database_url, {"STATS_API_TOKEN": TOKEN}) as base:
        open_view(driver, view(base, model="Llama"))
        assert driver.find_element("id", "token-form").is_displayed()
        assert "This API needs a token" in text(driver, "#token-why")
        driver.find_element("id", "token-input").send_keys("wrong" + Keys.ENTER)
        WebDriverWait(driver, 30).until(lambda d: "refused" in text(d, "#token-why"))
        driver.find_element("id", "token-input").send_keys(TOKEN + Keys.ENTER)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements("css selector", "figure.chart"))
        assert not driver.find_element("id", "token-form").is_displayed()
        assert driver.execute_script("return document.getElementById('model').value") == "Llama"
        sent = browser.requests(driver)
        api = [r for r in sent if urlsplit(r["url"]).path == "/models"]
        assert api[-1]["headers"].get("Authorization") == f"Bearer {TOKEN}"
        assert all(r["url"].startswith(base + "/") for r in sent)
        assert browser.problems(driver, allowed_statuses=(401,)) == []
        driver.execute_script("localStorage.clear()")


def test_controls_write_the_view_into_the_url(
    driver: Any, stats_url: str, scenario: Scenario
) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    open_view(driver, view(stats_url, model="Mistral", version="v2", range="7d"))
    assert "buckets of 1h" in text(driver, "#status")
    # Whole days of a week come from rollups: the API says its percentiles are sketches.
    heads = [th.text for th in driver.find_elements("css selector", "table.summary th")]
    assert heads[7:11] == ["≈p50", "≈p90", "≈p95", "≈p99"]
    assert "daily sketches" in text(driver, "#table-note")
    Select(driver.find_element("id", "baseline")).select_by_visible_text("v1")
    driver.find_element("css selector", "#metrics input[value=drift]").click()  # unchecks it
    driver.find_element("id", "refresh").click()
    query = parse_qs(urlsplit(driver.current_url).query)
    assert query["baseline"] == ["v1"]
    assert query["metric"] == ["inference_time,prediction_accuracy"]
    assert query["refresh"] == ["off"]
    start = scenario.now - timedelta(hours=3)
    driver.find_element("id", "from").send_keys(start.strftime("%Y-%m-%d %H:%M"))
    driver.find_element("id", "to").send_keys(scenario.now.strftime("%Y-%m-%d %H:%M"))
    driver.find_element("css selector", "#custom button").click()
    WebDriverWait(driver, 30).until(lambda d: "from=" in d.current_url)
    query = parse_qs(urlsplit(driver.current_url).query)
    assert (query["from"], query["to"]) == ([iso(start)], [iso(scenario.now)])
    WebDriverWait(driver, 30).until(lambda d: text(d, "#status").startswith(utc(start)))
    charts = driver.find_elements("css selector", "figure.chart")
    assert [c.get_attribute("data-metric") for c in charts] == [
        "inference_time",
        "prediction_accuracy",
    ]
    driver.find_element("id", "from").clear()
    driver.find_element("id", "from").send_keys("yesterday")
    driver.find_element("css selector", "#custom button").click()
    assert "write from and to as YYYY-MM-DD HH:MM (UTC)" in text(driver, "#message")
    assert_only_own_requests_and_no_errors(driver, stats_url)


def summary_count(driver: Any, metric: str) -> str:
    """The count cell of a metric's row in the summary table, read in one script: a refresh
    may replace the table between two WebDriver calls."""
    return str(
        driver.execute_script(
            "for (const row of document.querySelectorAll('table.summary tbody tr')) {"
            "  if (row.cells[0].textContent === arguments[0]) return row.cells[2].textContent;"
            "}"
            "return '';",
            metric,
        )
    )


def test_auto_refresh_reloads_a_range_ending_now_until_switched_off(
    driver: Any, stats_url: str, scenario: Scenario, clean_db: str
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    params = {"model": "Mistral", "version": "v2", "range": "15m", "metric": "drift"}
    open_view(driver, view(stats_url, **params, refresh="5s", **{"label.env": "prod"}))
    assert text(driver, "label.refresh") == "auto-refresh 5s"
    before = int(summary_count(driver, "drift"))
    sample = ("Mistral", "v2", "drift", {"env": "prod"}, datetime.now(UTC), 0.5)
    add_samples(clean_db, [sample])
    # Nothing but the timer loads the page again: the new sample shows within two intervals.
    WebDriverWait(driver, 12).until(lambda d: summary_count(d, "drift") == str(before + 1))

    driver.find_element("id", "refresh").click()
    assert parse_qs(urlsplit(driver.current_url).query)["refresh"] == ["off"]
    browser.requests(driver)  # forget the loads so far
    add_samples(clean_db, [(*sample[:4], datetime.now(UTC), 0.6)])
    time.sleep(12)  # two intervals and more
    loads = [r["url"] for r in browser.requests(driver) if "/stats/" in r["url"]]
    assert loads == []
    assert summary_count(driver, "drift") == str(before + 1)
    assert browser.problems(driver) == []


def test_a_refresh_interval_below_the_minimum_is_raised_to_it(
    driver: Any, stats_url: str, scenario: Scenario
) -> None:
    open_view(driver, view(stats_url, model="Mistral", version="v1", range="1h", refresh="1s"))
    assert text(driver, "label.refresh") == "auto-refresh 5s"
    open_view(driver, view(stats_url, model="Mistral", version="v1", range="1h", refresh="2m"))
    assert text(driver, "label.refresh") == "auto-refresh 2m"
    assert parse_qs(urlsplit(driver.current_url).query)["refresh"] == ["2m"]
    open_view(driver, view(stats_url, model="Mistral", version="v1", range="1h", refresh="soon"))
    assert text(driver, "label.refresh") == "auto-refresh 30s"
    assert "refresh" not in parse_qs(urlsplit(driver.current_url).query)
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_alerts_that_differ_only_by_labels_are_told_apart(
    driver: Any, stats_url: str, scenario: Scenario, clean_db: str
) -> None:
    import psycopg

    twin = {
        "rule": "drift_high",
        "state": "firing",
        "metric": "drift",
        "severity": "warning",
        "summary": "drift higher than 0.2",
        "value": 0.23,
        "active_at": scenario.drift_fired_at - timedelta(minutes=5),
        "fired_at": scenario.drift_fired_at,
        "env": "staging",
    }
    with psycopg.connect(clean_db) as conn:
        add_alert(conn, twin, [("firing", "pending", "firing", scenario.drift_fired_at)])
    open_view(driver, view(stats_url, model="Mistral", version="v2", **six_hours(scenario)))
    firing = [li.text for li in driver.find_elements("css selector", "#alerts ul.firing li")]
    assert len(firing) == 2
    assert any("drift_high (warning) v2 drift {env=prod}: drift higher" in f for f in firing)
    assert any("drift_high (warning) v2 drift {env=staging}: drift higher" in f for f in firing)
    changes = driver.find_elements("css selector", "#alerts ul.transitions li")
    twins = [c.text for c in changes if "drift_high" in c.text]
    assert len(twins) == 2 and twins[0] != twins[1]
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_at_1400_px_the_summary_table_fits_with_a_baseline(
    driver: Any, stats_url: str, scenario: Scenario, tmp_path: Path
) -> None:
    params = {"model": "Mistral", "version": "v2", "baseline": "v1", "range": "24h"}
    driver.set_window_size(1400, 1000)
    try:
        open_view(driver, view(stats_url, **params))
        table = driver.find_element("css selector", "#table table.summary")
        heads = [th.text for th in table.find_elements("css selector", "thead th")]
        assert heads[-2:] == ["mean vs v1", "p95 vs v1"]
        box = driver.find_element("css selector", "section.table")
        scroll, client = driver.execute_script(
            "return [arguments[0].scrollWidth, arguments[0].clientWidth]", box
        )
        assert scroll <= client, f"the table is {scroll} px wide in {client} px"
        shot(driver, tmp_path, "table-1400")
    finally:
        driver.set_window_size(1500, 1200)
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_a_ticked_metric_without_samples_in_the_range_says_so(
    driver: Any, stats_url: str, scenario: Scenario, clean_db: str
) -> None:
    # Known to the catalogue (it reported three days ago), not in the six hours shown.
    old = scenario.now - timedelta(days=3)
    add_samples(clean_db, [("Mistral", "v2", "queue_depth", {"env": "prod"}, old, 4.0)])
    window = six_hours(scenario)
    open_view(driver, view(stats_url, model="Mistral", version="v2", **window))
    assert driver.find_element("css selector", "#metrics input[value=queue_depth]").is_selected()
    figures = driver.find_elements("css selector", "figure.chart")
    assert [f.get_attribute("data-metric") for f in figures] == [
        "drift",
        "inference_time",
        "prediction_accuracy",
        "queue_depth",
    ]
    empty = driver.find_element("css selector", "figure.chart[data-metric=queue_depth]")
    assert empty.text == "queue_depth\nno samples in this range"
    assert empty.find_elements("css selector", ".u-over") == []  # no plot of nothing
    # Ticked alone beside one that has samples, as a link would tick it.
    open_view(
        driver,
        view(stats_url, model="Mistral", version="v2", metric="drift,queue_depth", **window),
    )
    shown = driver.find_elements("css selector", "figure.chart")
    assert [
        (f.get_attribute("data-metric"), "empty" in f.get_attribute("class")) for f in shown
    ] == [
        ("drift", False),
        ("queue_depth", True),
    ]
    assert_only_own_requests_and_no_errors(driver, stats_url)


def test_a_model_that_began_reporting_minutes_ago_fills_its_default_view(
    driver: Any, stats_url: str, scenario: Scenario, clean_db: str
) -> None:
    now = datetime.now(UTC)
    minutes = [now - timedelta(minutes=m, seconds=30) for m in range(20)]
    add_samples(
        clean_db, [("Fresh", "v1", "drift", {}, t, 0.1 + i / 100) for i, t in enumerate(minutes)]
    )
    open_view(driver, view(stats_url, model="Fresh"))  # no range: the page picks one
    assert parse_qs(urlsplit(driver.current_url).query)["range"] == ["1h"]
    pressed = driver.find_element("css selector", "#ranges button[aria-pressed=true]")
    assert pressed.text == "1h"
    assert ", buckets of 1m, " in text(driver, "#status")
    # Twenty buckets over the last third of the chart, not a few dots at its right edge.
    count = driver.find_element("css selector", "table.summary tbody td:nth-child(3)").text
    assert count == "20"
    # A model with a day and more of samples keeps the day.
    open_view(driver, view(stats_url, model="Mistral", version="v2"))
    assert parse_qs(urlsplit(driver.current_url).query)["range"] == ["24h"]
    assert_only_own_requests_and_no_errors(driver, stats_url)
