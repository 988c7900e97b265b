"""Debian's chromium, headless, driven through chromedriver, and what the dashboard's browser
tests do with it: open a view, read it, hover, take screenshots (no tests here).

Nothing is downloaded: Selenium is given both binaries, so Selenium Manager never runs. The
flags keep chromium from calling home (background networking, component updates, sync), which
on a closed network would only log refused connections.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1200",
)


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)"
    if not Path(CHROMEDRIVER).exists():
        return f"{CHROMEDRIVER} is not installed (apt-get install chromium-driver)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium with a new empty profile; its console and network are logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="modelstats-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requests(driver: Any) -> list[dict[str, Any]]:
    """The requests the page sent since the last call (url, method, headers)."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent.append(message["params"]["request"])
    return sent


def problems(driver: Any, allowed_statuses: tuple[int, ...] = ()) -> list[str]:
    """Script errors and failed loads logged since the last call (answers with an allowed
    status, such as the 401 that makes the page ask for a token, excepted)."""
    found = []
    for entry in driver.get_log("browser"):
        text = entry["message"]
        if entry["source"] == "network" and any(
            f"status of {s} " in text for s in allowed_statuses
        ):
            continue
        if entry["level"] in ("SEVERE", "WARNING"):
            found.append(f"{entry['source']}: {text}")
    return found


def utc(moment: datetime) -> str:
    """A time as the page writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def view(base: str, **params: str) -> str:
    return f"{base}/?{urlencode(params)}"


def open_view(driver: Any, url: str) -> None:
    """Load the page and wait until it has drawn an answer (or asked for a token)."""
    from selenium.webdriver.support.ui import WebDriverWait

    requests(driver)  # forget what earlier tests logged
    problems(driver)
    driver.get(url)
    drawn = WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "const $ = (id) => document.getElementById(id);"
            " if (!$('status')) return 'not the dashboard: ' + document.body.innerText;"
            " return $('status').textContent || $('message').textContent"
            " || (!$('token-form').hidden && 'token')"
        )
    )
    assert not drawn.startswith("not the dashboard"), (url, drawn)


def text(driver: Any, selector: str) -> str:
    return str(driver.find_element("css selector", selector).text)


def assert_only_own_requests_and_no_errors(driver: Any, base: str, statuses: tuple = ()) -> None:
    sent = requests(driver)
    assert sent, "the page made no request at all"
    elsewhere = [r["url"] for r in sent if not r["url"].startswith(base + "/")]
    assert not elsewhere, f"requests outside the stats function: {elsewhere}"
    assert problems(driver, statuses) == []


def hover(driver: Any, element: Any, x_offset: int = 0) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).move_to_element_with_offset(element, x_offset, 0).perform()


def shot(driver: Any, directory: Path, name: str) -> Path:
    path = directory / f"dashboard-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path
