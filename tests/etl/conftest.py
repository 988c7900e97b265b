"""Every ETL test reads logs under ETL_ROOT, as the function does: its own tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelstats.core import settings


@pytest.fixture(autouse=True)
def etl_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ETL_ROOT", str(tmp_path))
    settings.reset_settings()
    yield tmp_path
    settings.reset_settings()  # monkeypatch then restores the environment
