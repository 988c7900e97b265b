"""Every client reads the broker's 413: urllib (which writes the whole body before it reads a
byte of the answer), requests, httpx and curl, with declared and chunked bodies of 8.5, 20 and
50 MB. The broker answers at once and drains the rest (web/connections.py); a reset connection
instead would lose the answer, and Knative's senders would retry it as a network error."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from tests.brokers import BrokerProcess, binary_event, broker_yaml, run_broker, trigger_yaml
from tests.receivers import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MB = 1000 * 1000
SIZES = {"8.5MB": 8_500_000, "20MB": 20 * MB, "50MB": 50 * MB}
CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    home = tmp_path_factory.mktemp("oversized")
    with Receiver() as sink, run_broker(home, broker_yaml() + trigger_yaml("t", sink.url)) as b:
        yield b


@pytest.fixture(scope="module")
def bodies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per size, for curl; the Python clients read the same bytes."""
    home = tmp_path_factory.mktemp("bodies")
    files = {}
    for name, size in SIZES.items():
        path = home / f"{name}.json"
        with path.open("wb") as handle:
            handle.write(b'{"pad": "')
            handle.write(b"x" * (size - 11))
            handle.write(b'"}')
        files[name] = path
    return files


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _urllib(url: str, headers: dict[str, str], path: Path, chunked: bool) -> tuple[int, str]:
    data = _chunks(path) if chunked else path.read_bytes()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _requests(url: str, headers: dict[str, str], path: Path, chunked: bool) -> tuple[int, str]:
    data = _chunks(path) if chunked else path.read_bytes()
    response = requests.post(url, data=data, headers=headers, timeout=60)
    return response.status_code, response.text


def _httpx(url: str, headers: dict[str, str], path: Path, chunked: bool) -> tuple[int, str]:
    content = _chunks(path) if chunked else path.read_bytes()
    response = httpx.post(url, content=content, headers=headers, timeout=60)
    return response.status_code, response.text


def _curl(url: str, headers: dict[str, str], path: Path, chunked: bool) -> tuple[int, str]:
    argv = ["curl", "-sS", "--max-time", "60", "-X", "POST", url, "--data-binary", f"@{path}"]
    for name, value in {**headers, **({"transfer-encoding": "chunked"} if chunked else {})}.items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-w", "\n%{http_code}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


CLIENTS = {"urllib": _urllib, "requests": _requests, "httpx": _httpx, "curl": _curl}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("mode", ["declared", "chunked"])
@pytest.mark.parametrize("client", list(CLIENTS))
def test_every_client_reads_its_413(
    broker: BrokerProcess, bodies: dict[str, Path], client: str, mode: str, size: str
) -> None:
    headers, _ = binary_event(data={})
    status, text = CLIENTS[client](broker.ingress, headers, bodies[size], mode == "chunked")
    assert status == 413, text[:200]
    assert "body larger than 8388608 bytes" in text
    # And the broker goes on serving.
    assert broker.post(*binary_event(data={"after": client})).status_code == 202
