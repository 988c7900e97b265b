"""Every ETL test reads logs under ETL_ROOT, as the function does: its own tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.configuration import configure


@pytest.fixture(autouse=True)
def etl_root(tmp_path: Path) -> Path:
    configure(ETL_ROOT=str(tmp_path))
    return tmp_path
