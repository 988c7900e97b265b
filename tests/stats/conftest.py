"""The browser tests' chromium and stats function: one of each per test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.functions import function_process
from tests.stats import browser
from tests.stats.samples import SOURCE


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    why = browser.missing()
    if why is not None:
        # .ci/run installs chromium and asks for these tests: there, missing it is a failure.
        if os.environ.get("MODELSTATS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser tests must run (MODELSTATS_REQUIRE_BROWSER=1): {why}")
        pytest.skip(why)
    with browser.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def stats_url(database_url: str) -> Iterator[str]:
    with function_process("stats", SOURCE, database_url, {"STATS_API_TOKEN": ""}) as url:
        yield url
