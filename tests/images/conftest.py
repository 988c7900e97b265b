"""The built images, run with podman against a throwaway PostgreSQL (`make image-test`).

These tests need root and podman (infra/images.py installs it from Debian's packages), and the
images built first, so `make test` never collects them: `make image-test` builds the images,
then runs this folder with MODELSTATS_IMAGE_TEST=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import images

collect_ignore_glob = [] if os.environ.get("MODELSTATS_IMAGE_TEST") else ["test_*.py"]


@dataclass
class Container:
    """One function's image running under podman, on the host network at `url`; its
    PostgreSQL connections carry its `name` as application_name."""

    podman: images.Podman
    function: str
    name: str
    url: str

    def logs(self) -> str:
        done = self.podman("logs", self.name, check=False)
        return (done.stdout + done.stderr).decode(errors="replace")

    def exec(self, *command: str) -> subprocess.CompletedProcess[bytes]:
        return self.podman("exec", self.name, *command, check=False)

    def remove(self) -> None:
        self.podman("rm", "--force", "--time", "0", self.name, check=False)


@pytest.fixture(scope="session")
def podman() -> images.Podman:
    podman = images.Podman(images.default_cache_dir().resolve())
    images.preflight(podman)
    missing = [f for f in images.FUNCTIONS if not podman.image_exists(images.image_name(f))]
    if missing:
        pytest.fail(f"images not built for {missing}: `make image-test` builds them first")
    return podman


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    # Not under pytest's own temporary root: pytest keeps that private to root (0700) on every
    # session, and PostgreSQL runs as another user.
    home = Path(tempfile.mkdtemp(prefix="modelstats-images-"))
    server = images.TcpPostgres(home / "pg")
    try:
        server.start()
        yield server.url
    finally:
        server.remove()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def migration(podman: images.Podman, database: str) -> subprocess.CompletedProcess[bytes]:
    """`modelstats migrate` run from the ingest image, as the cluster's migration Job runs it."""
    return run_once(podman, "ingest", database, "modelstats", "migrate")


def run_once(
    podman: images.Podman, function: str, database: str, *command: str
) -> subprocess.CompletedProcess[bytes]:
    options = images.run_options(images.free_port(), database, function)
    return podman(
        "run", "--rm", *options, images.image_name(function), *command, check=False, timeout=120
    )


def start(
    podman: images.Podman, function: str, database: str, env: dict[str, str] | None = None
) -> Container:
    """A fresh container of `function`'s image, its default command, ready (/healthz 200)."""
    port = images.free_port()
    name = f"modelstats-test-{function}-{uuid.uuid4().hex[:8]}"
    options = images.run_options(port, database, service=name)
    options += [f"--env={key}={value}" for key, value in (env or {}).items()]
    podman("run", "--detach", "--name", name, *options, images.image_name(function))
    container = Container(podman, function, name, f"http://127.0.0.1:{port}")
    try:
        images.wait_for_200(container.url + "/healthz", timeout=90)
    except TimeoutError:
        logs = container.logs()
        container.remove()
        raise AssertionError(f"{function} never became healthy:\n{logs}") from None
    return container


@pytest.fixture
def started(
    podman: images.Podman, database: str, migration: subprocess.CompletedProcess[bytes]
) -> Iterator[list[Container]]:
    """Containers a test starts itself (`started.append(start(...))`), removed after it."""
    containers: list[Container] = []
    yield containers
    for container in containers:
        container.remove()


@pytest.fixture(scope="session")
def running(
    podman: images.Podman, database: str, migration: subprocess.CompletedProcess[bytes]
) -> Iterator[dict[str, Container]]:
    """The four functions, one container each, shared by the tests that only send requests."""
    assert migration.returncode == 0, migration.stderr.decode(errors="replace")
    containers: dict[str, Container] = {}
    try:
        for function in images.FUNCTIONS:
            containers[function] = start(podman, function, database)
        yield containers
    finally:
        for container in containers.values():
            container.remove()
