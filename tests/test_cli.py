"""The `modelstats` commands from a directory that is not the checkout: path defaults come
from the checkout, and the commands that need the database find a running stack (or say what
to set). Each command runs as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelstats.core import timestamps
from modelstats.local.stack.state import StackState
from tests.stacks import Stack, running_stack

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # every test here runs the command as a process
DATABASE_COMMANDS = [
    ["migrate"],
    ["retention", "--older-than", "400d"],
    ["notify"],
    ["etl", "run", "--job", '{"source": "jsonl", "path": "inference.jsonl"}'],
]


def modelstats(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "MODELSTATS_DATA_DIR", "ALERT_RULES_FILE", "ETL_ROOT")
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "modelstats.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A working directory outside the checkout."""
    with tempfile.TemporaryDirectory(prefix="modelstats-elsewhere-") as directory:
        yield Path(directory)


def test_check_manifests_and_rules_find_their_files_from_anywhere(elsewhere: Path) -> None:
    default = modelstats("check-manifests", cwd=elsewhere)
    assert default.returncode == 0, default.stderr
    assert f"in {ROOT / 'infra' / 'knative'}: 0 problem(s)" in default.stderr
    given = modelstats("check-manifests", str(ROOT / "infra" / "knative"), cwd=elsewhere)
    assert given.returncode == 0, given.stderr
    assert "Traceback" not in given.stderr
    rules_file = ROOT / "infra" / "knative" / "rules" / "alert-rules.yaml"
    for args in [(), (str(rules_file),)]:
        rules = modelstats("check-rules", *args, cwd=elsewhere)
        assert rules.returncode == 0, rules.stderr
        assert rules.stdout.startswith(f"{rules_file}: ") and "rule(s) OK" in rules.stdout


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_without_a_stack_a_database_command_says_what_to_set(
    elsewhere: Path, command: list[str]
) -> None:
    data_dir = elsewhere / "data"
    data_dir.mkdir()
    # A stack killed with SIGKILL leaves its state behind: a dead pid is no running stack.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    broker = "http://127.0.0.1:9/modelstats/default"
    StackState(int(dead.stdout), broker, "postgresql://nobody@/nothing").write(data_dir)
    # ETL_ROOT set: the jsonl job gets as far as needing the database.
    env = {"ETL_ROOT": str(elsewhere)}
    done = modelstats(*command, "--data-dir", str(data_dir), cwd=elsewhere, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error: no database: DATABASE_URL is not set" in done.stderr
    assert f"--data-dir {data_dir}" in done.stderr


# -- against a stack started from elsewhere, without the demo --------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cwd = tmp_path_factory.mktemp("cwd")
    data = tmp_path_factory.mktemp("cli")
    with running_stack(data, ping_every="1s", args=("--no-demo",), cwd=cwd) as running:
        yield running


def test_run_from_elsewhere_shows_its_database_and_runs_no_demo(stack: Stack) -> None:
    output = stack.output()
    assert f"database        {stack.state.database_url}  (embedded" in output
    assert "demo            off (--no-demo)" in output
    # --ping-every 1s fires every PingSource the broker has each second: not the demo's.
    time.sleep(3)
    pings = "modelstats_broker_pings_total"
    assert stack.broker_counter(pings, pingsource="alert-schedule") >= 2
    assert stack.broker_counter(pings, pingsource="demo-schedule") == 0
    assert "demo-schedule" not in output


@pytest.mark.parametrize("through", ["--data-dir", "MODELSTATS_DATA_DIR"])
def test_each_database_command_finds_the_running_stack(
    stack: Stack, elsewhere: Path, through: str
) -> None:
    window = timestamps.now().replace(second=0, microsecond=0)
    # Under the stack's ETL_ROOT, which etl run takes from the stack like its database.
    logs = Path(stack.state.etl_root) / f"inference-{through.strip('-').lower()}.jsonl"
    line = {"model": "m", "version": "v1", "time": timestamps.format(window), "prediction": 1}
    logs.write_text(json.dumps(line) + "\n")
    commands = [
        (["migrate"], "schema is up to date"),
        (["retention", "--older-than", "400d"], "dropped 0 partition(s)"),
        (["notify"], "delivered 0, failed 0"),
        # Without the stack's database it would say "dead letters: skipped".
        (["replay"], "dead letters: 0 sent, 0 not accepted"),
        (["etl", "run", "--job", json.dumps({"source": "jsonl", "path": logs.name})], "reports"),
    ]
    for command, expected in commands:
        if through == "--data-dir":
            done = modelstats(*command, "--data-dir", str(stack.data_dir), cwd=elsewhere)
        else:
            env = {"MODELSTATS_DATA_DIR": str(stack.data_dir)}
            done = modelstats(*command, cwd=elsewhere, env=env)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert expected in done.stdout, (command, done.stdout)
