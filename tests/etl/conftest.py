"""Every ETL test reads logs under ETL_ROOT, as the function does: its own tmp_path. The
inference tests write their monitors file and post logged events with the fixtures below."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelstats.etl.inference import monitors
from tests.clients import function_client
from tests.configuration import configure


@pytest.fixture(autouse=True)
def etl_root(tmp_path: Path) -> Path:
    configure(ETL_ROOT=str(tmp_path))
    return tmp_path


@pytest.fixture
def monitors_file(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Write the monitors file the inference job under test reads: `monitors_file(text)`."""

    def write(text: str) -> Path:
        path = tmp_path / "monitors.yaml"
        path.write_text(text)
        configure(MONITORS_FILE=str(path))
        monitors.reset()
        return path

    yield write
    monitors.reset()


@pytest.fixture
def logged(clean_db: str) -> Iterator[Callable[[dict[str, str], object], None]]:
    """Post events to an ingest function in this process, each answered 204 (kept):
    `logged(headers, data)` with data as bytes, or JSON to encode."""
    with function_client("ingest", "functions/ingest/main.py") as client:

        def post(headers: dict[str, str], data: object) -> None:
            body = data if isinstance(data, bytes) else json.dumps(data).encode()
            answer = client.post("/", headers=headers, content=body)
            assert answer.status_code == 204, answer.text

        yield post
