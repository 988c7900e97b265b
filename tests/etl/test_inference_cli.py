"""The inference commands as a user runs them, against `modelstats run`: a reference set from
CSV and Parquet files, shown and cleared; labels loaded from a file through the broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.stacks import poll, running_stack

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def modelstats(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelstats.cli", *args, "--data-dir", str(stack.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_references_and_labels_from_files(tmp_path: Path) -> None:
    csv = tmp_path / "training.csv"
    csv.write_text("amount,country\n10.5,NL\n12.0,DE\n,FR\n")
    table = pa.table({"amount": [1.0, 2.0, None], "country": ["NL", None, "BE"]})
    parquet = tmp_path / "training.parquet"
    pq.write_table(table, parquet)
    labels = tmp_path / "truth.csv"
    labels.write_text("id,label\n0017,1\nreq-2,0\nreq-3,cat\n")
    with running_stack(tmp_path, ping_every="1h") as stack:
        done = modelstats(
            stack, "reference", "set", "--model", "fraud", "--version", "v1", str(csv)
        )
        assert done.returncode == 0, done.stderr
        assert "3 rows, kept whole" in done.stdout and "country: text" in done.stdout
        done = modelstats(
            stack, "reference", "set", "--model", "fraud", "--version", "v2", str(parquet)
        )
        assert done.returncode == 0, done.stderr
        shown = modelstats(stack, "reference", "show")
        assert shown.returncode == 0, shown.stderr
        assert "fraud v1: upload:training.csv#" in shown.stdout
        assert "fraud v2: upload:training.parquet#" in shown.stdout
        bad = tmp_path / "bad.csv"
        bad.write_text("amount\n1\n2,3\n")
        refused = modelstats(
            stack, "reference", "set", "--model", "fraud", "--version", "v1", str(bad)
        )
        assert refused.returncode == 1 and "line 3" in refused.stderr
        cleared = modelstats(stack, "reference", "clear", "--model", "fraud", "--version", "v2")
        assert "reference cleared" in cleared.stdout

        loaded = modelstats(stack, "labels", "load", "--model", "fraud", str(labels))
        assert loaded.returncode == 0, loaded.stderr
        assert "3 label(s) sent" in loaded.stdout

        def kept() -> list[tuple[str, str]]:
            with psycopg.connect(stack.state.database_url) as conn:
                return conn.execute("SELECT id, label FROM inference_labels ORDER BY id").fetchall()

        rows = poll(lambda: len(kept()) == 3 and kept(), 30, "the labels stored")
        assert rows == [("0017", "1"), ("req-2", "0"), ("req-3", "cat")]  # ids stay text
