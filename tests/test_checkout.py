"""The tests run this checkout's code: in the test process and in the processes it starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import modelstats

ROOT = Path(__file__).resolve().parent.parent


def test_the_test_process_imports_the_checkout() -> None:
    assert Path(modelstats.__file__).resolve().is_relative_to(ROOT / "src")


@pytest.mark.slow
def test_started_processes_import_the_checkout() -> None:
    found = subprocess.run(
        [sys.executable, "-c", "import modelstats; print(modelstats.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert Path(found.stdout.strip()).resolve().is_relative_to(ROOT / "src")
