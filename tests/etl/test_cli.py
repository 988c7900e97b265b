"""`modelstats etl run`: prints a job's reports; a dry run unless --commit."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from modelstats import cli
from modelstats.core import timestamps
from modelstats.etl import windows


def invoke(*args: str):
    return CliRunner().invoke(cli.main, ["etl", "run", *args])


def test_synthetic_job_prints_its_reports():
    result = invoke("--job", '{"source": "synthetic", "models": ["a", "b"], "seed": 1}')
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [r["model"] for r in printed["reports"]] == ["a", "b"]
    assert "source /modelstats/etl/synthetic id " in result.stderr


def test_jsonl_job_is_a_dry_run_unless_committed(clean_db, tmp_path):
    log = tmp_path / "inference.jsonl"
    start = windows.start_of(timestamps.now(), timedelta(minutes=1)) - timedelta(minutes=5)
    line = {"model": "m", "version": "v1", "time": timestamps.format(start), "prediction": 1}
    log.write_text(json.dumps({**line, "latency_ms": 4}) + "\n")
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"source": "jsonl", "path": str(log), "lateness": "0s"}))
    dry = invoke("--job", f"@{job_file}")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["reports"][0]["metrics"]["requests"] == 1
    committed = invoke("--job", f"@{job_file}", "--commit")
    assert json.loads(committed.stdout) == json.loads(dry.stdout)
    after = invoke("--job", f"@{job_file}", "--commit")
    assert json.loads(after.stdout) == {"reports": []}
    assert "nothing new" in after.stderr


def test_a_bad_job_fails_naming_the_field():
    result = invoke("--job", '{"source": "kafka"}')
    assert result.exit_code == 1
    assert "data.source" in result.stderr
