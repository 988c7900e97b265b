"""Debian's chromium, headless, driven through chromedriver (no tests here).

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
from pathlib import Path
from typing import Any

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
