"""ETL_ROOT holds against links, FIFOs and swaps: the real etl function, real files."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelstats.core import timestamps
from modelstats.core.errors import BadInput
from modelstats.etl import jobs, logfiles, windows
from tests.cloudevents_http import binary
from tests.configuration import configure
from tests.functions import function_process

pytestmark = pytest.mark.slow

SOURCE = "functions/etl/main.py"
PING = "dev.knative.sources.ping"
PINGSOURCE = "/apis/v1/namespaces/modelstats/pingsources/etl-schedule"


def write_log(path: Path, model: str, lines: int) -> None:
    """`lines` records of `model` in one closed one-minute window, ten minutes ago."""
    start = windows.start_of(timestamps.now(), timedelta(minutes=1)) - timedelta(minutes=10)
    with path.open("w") as handle:
        for i in range(lines):
            moment = timestamps.format(start + timedelta(seconds=i))
            record = {"model": model, "version": "v1", "time": moment, "latency_ms": 5}
            handle.write(json.dumps({**record, "prediction": 1, "label": 1, "score": 0.5}) + "\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/logs/a.jsonl (inside), outside/secret.jsonl, and links from the root to outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "logs").mkdir(parents=True)
    outside.mkdir()
    write_log(root / "logs" / "a.jsonl", "inside", 3)
    write_log(outside / "secret.jsonl", "secret", 5)
    (root / "logs" / "evil.jsonl").symlink_to(outside / "secret.jsonl")
    (root / "linkdir").symlink_to(outside)
    (root / "reference.jsonl").symlink_to(outside / "secret.jsonl")
    os.mkfifo(root / "logs" / "pipe.jsonl")
    os.mkfifo(root / "pipe.jsonl")
    return tmp_path


@pytest.fixture
def etl_url(tree: Path, clean_db: str) -> Iterator[str]:
    with function_process("etl", SOURCE, clean_db, {"ETL_ROOT": str(tree / "root")}) as url:
        yield url


def post_job(url: str, job: dict[str, Any], tick: str = "tick-1") -> httpx.Response:
    headers, body = binary(
        job, id=tick, source=PINGSOURCE, type=PING, time=timestamps.format(timestamps.now())
    )
    return httpx.post(url, headers=headers, content=body, timeout=30)


def jsonl(path: Path | str, **fields: Any) -> dict[str, Any]:
    return {"source": "jsonl", "path": str(path), "lateness": "0s", **fields}


def test_a_directory_job_reads_its_files_and_no_link_or_fifo(etl_url: str, tree: Path) -> None:
    response = post_job(etl_url, jsonl(tree / "root" / "logs"))
    assert response.status_code == 200, response.text
    reports = response.json()["reports"]
    assert {r["model"] for r in reports} == {"inside"}
    assert sum(r["metrics"]["requests"] for r in reports) == 3


@pytest.mark.parametrize(
    ("job", "field", "says"),
    [
        (jsonl("root/logs/evil.jsonl"), "data.path", "symbolic links"),
        (jsonl("root/linkdir/secret.jsonl"), "data.path", "symbolic links"),
        (jsonl("root/linkdir"), "data.path", "symbolic links"),
        (jsonl("root/pipe.jsonl"), "data.path", "not a regular file"),
        (jsonl("root/logs", reference="root/reference.jsonl"), "data.reference", "symbolic"),
    ],
)
def test_links_and_fifos_under_the_root_are_refused(
    etl_url: str, tree: Path, job: dict[str, Any], field: str, says: str
) -> None:
    job = {k: str(tree / v) if k in ("path", "reference") else v for k, v in job.items()}
    response = post_job(etl_url, job)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert says in response.json()["message"]


def test_outside_the_root_the_answer_does_not_depend_on_existence(etl_url: str, tree: Path) -> None:
    existing = post_job(etl_url, jsonl(tree / "outside" / "secret.jsonl"))
    missing = post_job(etl_url, jsonl(tree / "outside" / "absent.jsonl"))
    assert existing.status_code == missing.status_code == 400
    assert existing.json() == missing.json()
    assert existing.json()["field"] == "data.path"


def test_without_etl_root_the_function_reads_nothing(tree: Path, clean_db: str) -> None:
    with function_process("etl", SOURCE, clean_db, {"ETL_ROOT": ""}) as url:
        refused = post_job(url, jsonl(tree / "outside" / "secret.jsonl"))
        synthetic = post_job(url, {"source": "synthetic"}, tick="tick-2")
    assert refused.status_code == 400
    assert refused.json()["field"] == "data.path"
    assert "ETL_ROOT is not set" in refused.json()["message"]
    assert synthetic.status_code == 200


def test_a_directory_swapped_for_a_link_after_listing_is_not_followed(tree: Path) -> None:
    """No check-then-open window: the open itself refuses what the listing did not see."""
    root = tree / "root"
    configure(ETL_ROOT=str(root))
    job = jobs.parse(jsonl(root / "logs"))
    assert isinstance(job, jobs.JsonlJob)
    listed = logfiles.discover(job.path)
    assert [p.name for p in listed] == ["a.jsonl"]
    # Now the directory becomes a link to a directory holding a file of the same name.
    shutil.copy(tree / "outside" / "secret.jsonl", tree / "outside" / "a.jsonl")
    (root / "logs").rename(root / "logs-old")
    (root / "logs").symlink_to(tree / "outside")
    with pytest.raises(BadInput) as caught:
        logfiles.read(listed, {}, 1 << 20)
    assert "symbolic links" in caught.value.message


def test_a_root_given_through_a_link_accepts_both_spellings(tree: Path) -> None:
    """ETL_ROOT=/tmp/x on a machine where /tmp is a link: jobs may name either form."""
    (tree / "root-link").symlink_to(tree / "root")
    configure(ETL_ROOT=str(tree / "root-link"))
    for spelling in (tree / "root-link" / "logs", tree / "root" / "logs"):
        job = jobs.parse(jsonl(spelling))
        assert isinstance(job, jobs.JsonlJob)
        assert job.path == str(tree / "root-link" / "logs")
        assert [p.name for p in logfiles.discover(job.path)] == ["a.jsonl"]
    with pytest.raises(BadInput):
        jobs.parse(jsonl(tree / "outside" / "secret.jsonl"))
