"""What hostile or unlucky clients cost the broker's ingress, on a real broker process and
real sockets: oversized bodies, heads that never end, idle and trickling connections, a spool
that would fill the disk, and a broker told twice to stop while it holds events."""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelstats.local.stack.ports import free_port
from tests.brokers import BrokerProcess, binary_event, broker_yaml, run_broker, trigger_yaml
from tests.raw_http import read_answer, read_until_closed
from tests.receivers import Receiver, Reply

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MiB = 1024 * 1024
PATH = "/modelstats/default"


def _address(broker: BrokerProcess) -> tuple[str, int]:
    host, port = broker.url.removeprefix("http://").split(":")
    return host, int(port)


def _head(extra: str = "") -> bytes:
    """A binary-mode CloudEvent request head, `extra` header lines included."""
    return (
        f"POST {PATH} HTTP/1.1\r\nhost: broker\r\nce-specversion: 1.0\r\nce-id: raw-1\r\n"
        f"ce-source: /tests/raw\r\nce-type: t\r\ncontent-type: application/json\r\n{extra}\r\n"
    ).encode()


def _metric(broker: BrokerProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{broker.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# -- connections: heads, idleness --------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(tmp_path: Path) -> None:
    manifests = broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9")
    with (
        run_broker(tmp_path, manifests, extra_args=["--header-timeout", "1s"]) as broker,
        socket.create_connection(_address(broker)) as sock,
    ):
        answer = read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer


def test_a_head_trickled_byte_by_byte_is_cut_off(tmp_path: Path) -> None:
    """uvicorn disarms its keep-alive timer on the first byte: a client that keeps sending one
    header byte at a time would hold the connection forever without the head deadline."""
    manifests = broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9")
    with (
        run_broker(tmp_path, manifests, extra_args=["--header-timeout", "1s"]) as broker,
        socket.create_connection(_address(broker)) as sock,
    ):
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nx-slow: ".encode())
        deadline = time.monotonic() + 10
        answered = False
        while time.monotonic() < deadline and not answered:
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            answered = bool(select.select([sock], [], [], 0.2)[0])
        assert time.monotonic() < deadline, "the trickling head was never cut off"
        answer = read_until_closed(sock, timeout=5)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_an_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        with (
            run_broker(tmp_path, manifests, extra_args=["--idle-timeout", "1s"]) as broker,
            socket.create_connection(_address(broker)) as sock,
        ):
            sock.sendall(_head("content-length: 2\r\n") + b"{}")
            answer = read_until_closed(sock, timeout=10)
    # The 202, then the server's own close once the connection sat idle.
    assert answer.startswith(b"HTTP/1.1 202 ")
    assert answer.count(b"HTTP/1.1") == 1


def test_a_kept_alive_connection_serves_requests_further_apart_than_the_head_timeout(
    tmp_path: Path,
) -> None:
    """Between requests the idle timeout applies, not the head deadline."""
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        args = ["--header-timeout", "1s", "--idle-timeout", "5s"]
        with (
            run_broker(tmp_path, manifests, extra_args=args) as broker,
            socket.create_connection(_address(broker)) as sock,
        ):
            for _ in range(2):
                sock.sendall(_head("content-length: 2\r\n") + b"{}")
                answer = read_answer(sock)
                assert answer.startswith(b"HTTP/1.1 202 "), answer
                time.sleep(1.5)
        assert len(sink.wait_for(2)) == 2


def test_a_head_that_never_ends_is_refused_with_431(tmp_path: Path) -> None:
    manifests = broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9")
    with (
        run_broker(tmp_path, manifests) as broker,
        socket.create_connection(_address(broker)) as sock,
    ):
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nx-big: ".encode() + b"a" * (70 * 1024))
        answer = read_until_closed(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("writes", [1, 2])
@pytest.mark.parametrize("kib", [70, 100])
def test_a_whole_head_over_the_cap_is_refused_however_it_arrives(
    tmp_path: Path, kib: int, writes: int
) -> None:
    """A complete head past 64 KiB, in one write or two: the cap is the head's size, not the
    size of the reads it came in."""
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        with (
            run_broker(tmp_path, manifests) as broker,
            socket.create_connection(_address(broker)) as sock,
        ):
            request = _head(f"x-big: {'a' * kib * 1024}\r\ncontent-length: 2\r\n") + b"{}"
            half = len(request) // 2
            for part in [request] if writes == 1 else [request[:half], request[half:]]:
                sock.sendall(part)
            answer = read_until_closed(sock, timeout=10)
            refused = _metric(broker, "modelstats_broker_events_refused_total", reason="too_large")
        assert sink.quiet_for(0.3) == []
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"connection: close" in answer
    assert refused == 0  # refused by the connection, before any event was read


# -- bodies ------------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_answered_at_once_then_drained(tmp_path: Path) -> None:
    """413 from the Content-Length alone, before a byte of the body is sent (curl waiting for
    100-continue reads it and sends nothing); a sender that goes on writing its 50 MiB has
    them drained, and the connection then serves its next request."""
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        with (
            run_broker(tmp_path, manifests) as broker,
            socket.create_connection(_address(broker)) as sock,
        ):
            sock.sendall(_head(f"content-length: {50 * MiB}\r\n"))
            answer = read_answer(sock)
            chunk = b"z" * MiB
            for _ in range(50):
                sock.sendall(chunk)
            sock.sendall(_head("content-length: 2\r\n") + b"{}")
            after = read_answer(sock)
            refused = _metric(broker, "modelstats_broker_events_refused_total", reason="too_large")
        assert len(sink.wait_for(1)) == 1
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" not in answer
    assert after.startswith(b"HTTP/1.1 202 ")
    assert refused == 1


def _send_until_cut_off(sock: socket.socket, total: int) -> int:
    """Write up to `total` body bytes; how many got out before the broker closed."""
    chunk = b"z" * MiB
    sent = 0
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_a_drain_past_its_byte_bound_is_cut_off(tmp_path: Path) -> None:
    manifests = broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9")
    with (
        run_broker(tmp_path, manifests) as broker,
        socket.create_connection(_address(broker)) as sock,
    ):
        sock.sendall(_head(f"content-length: {200 * MiB}\r\n"))
        assert read_answer(sock).startswith(b"HTTP/1.1 413 ")
        sent = _send_until_cut_off(sock, 200 * MiB)
    # 64 MiB drained, then closed; what the kernels' buffers held on the way counts too.
    assert 64 * MiB <= sent < 100 * MiB, sent / MiB


def test_a_drain_that_stalls_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    manifests = broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9")
    with (
        run_broker(tmp_path, manifests, extra_args=["--idle-timeout", "1s"]) as broker,
        socket.create_connection(_address(broker)) as sock,
    ):
        sock.sendall(_head(f"content-length: {50 * MiB}\r\n") + b"z" * MiB)
        started = time.monotonic()
        answer = read_until_closed(sock, timeout=10)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert took < 5, took


def test_after_a_413_the_rest_of_a_small_body_is_dropped_and_the_connection_kept(
    tmp_path: Path,
) -> None:
    """The sender that goes on writing its body gets its 413 (not a reset connection), and
    the connection serves its next request."""
    limit = 100_000
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        args = ["--max-body-bytes", str(limit)]
        with (
            run_broker(tmp_path, manifests, extra_args=args) as broker,
            socket.create_connection(_address(broker)) as sock,
        ):
            sock.sendall(_head("transfer-encoding: chunked\r\n"))
            chunk = b"%x\r\n%s\r\n" % (10_000, b"x" * 10_000)
            sock.sendall(chunk * (limit // 10_000 + 1))  # one chunk past the limit
            assert read_answer(sock).startswith(b"HTTP/1.1 413 ")
            sock.sendall(chunk * 20 + b"0\r\n\r\n")  # the rest of it, dropped
            sock.sendall(_head("content-length: 2\r\n") + b"{}")
            assert read_answer(sock).startswith(b"HTTP/1.1 202 ")
        assert len(sink.wait_for(1)) == 1


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _post_oversized(address: tuple[str, int], total: int, answers: list[bytes]) -> None:
    """POST a chunked body of `total` bytes as urllib does: all of it as fast as the broker
    takes it, and only then read the answer."""
    chunk = b"y" * (256 * 1024)
    with socket.create_connection(address) as sock:
        sock.sendall(_head("transfer-encoding: chunked\r\n"))
        for _ in range(total // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        answers.append(read_answer(sock))


def test_memory_stays_bounded_under_oversized_posts_and_normal_traffic(tmp_path: Path) -> None:
    """Five 50 MiB bodies at once, with ordinary events flowing: each sender reads its 413
    after writing its whole body, and the broker's resident memory stays within 64 MiB of its
    idle size: what is past the limit is dropped as it arrives, never kept."""
    with Receiver() as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as broker:
            pid = broker.popen.pid
            for _ in range(50):  # warm up: connections, codecs, counters
                assert broker.post(*binary_event(data={"warm": 1})).status_code == 202
            time.sleep(0.5)
            idle = _rss(pid)
            peak = idle
            answers: list[bytes] = []
            normal: list[int] = []
            streams = [
                threading.Thread(target=_post_oversized, args=(_address(broker), 50 * MiB, answers))
                for _ in range(5)
            ]

            def ordinary_traffic() -> None:
                with httpx.Client(timeout=10) as client:
                    while len(normal) < 20 or any(stream.is_alive() for stream in streams):
                        headers, body = binary_event(data={"n": len(normal)})
                        normal.append(
                            client.post(broker.ingress, headers=headers, content=body).status_code
                        )

            traffic = threading.Thread(target=ordinary_traffic)
            traffic.start()
            for stream in streams:
                stream.start()
            deadline = time.monotonic() + 60
            while traffic.is_alive() and time.monotonic() < deadline:
                peak = max(peak, _rss(pid))
                time.sleep(0.02)
            for thread in [*streams, traffic]:
                thread.join(timeout=30)
            refused = _metric(broker, "modelstats_broker_events_refused_total", reason="too_large")
    print(f"broker RSS: idle {idle / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB")
    assert len(answers) == 5
    assert all(answer.startswith(b"HTTP/1.1 413 ") for answer in answers), answers
    assert refused == 5
    assert normal and set(normal) == {202}
    assert peak - idle < 64 * MiB, f"idle {idle / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB"


# -- the spool ---------------------------------------------------------------------------------


def test_the_spool_refuses_past_its_cap_with_an_error(tmp_path: Path) -> None:
    cap = 4000
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every delivery fails for good
    manifests = broker_yaml() + trigger_yaml("t", dead)
    args = ["--spool-max-bytes", str(cap)]
    with run_broker(tmp_path, manifests, extra_args=args) as broker:
        posted = 12
        for n in range(posted):
            headers, body = binary_event(id=f"cap-{n}", data={"pad": "p" * 300})
            assert broker.post(headers, body).status_code == 202
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            spooled = _metric(broker, "modelstats_broker_deliveries_total", outcome="spooled")
            lost = _metric(broker, "modelstats_broker_deliveries_total", outcome="lost")
            if spooled + lost == posted:
                break
            time.sleep(0.1)
        entries = broker.spooled()
        size = broker.spool.stat().st_size
    assert 0 < len(entries) < posted
    assert spooled == len(entries) and lost == posted - len(entries)
    assert size <= cap
    assert f"cap of {cap} bytes" in broker.output()
    assert "LOST" in broker.output()


# -- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["SIGTERM twice", "SIGQUIT"])
def test_a_second_stop_signal_spools_everything_in_flight_at_once(
    tmp_path: Path, second: str
) -> None:
    with Receiver(default=Reply(204, delay=30)) as sink:
        manifests = broker_yaml() + trigger_yaml("t", sink.url)
        with run_broker(tmp_path, manifests) as broker:
            ids = [f"held-{n}" for n in range(20)]
            for event_id in ids:
                assert broker.post(*binary_event(id=event_id)).status_code == 202
            sink.wait_for(len(ids))
            started = time.monotonic()
            if second == "SIGQUIT":
                os.killpg(broker.popen.pid, signal.SIGQUIT)
            else:
                os.killpg(broker.popen.pid, signal.SIGTERM)
                time.sleep(0.3)
                os.killpg(broker.popen.pid, signal.SIGTERM)
            assert broker.popen.wait(timeout=20) == 0
            took = time.monotonic() - started
            entries = broker.spooled()
    assert sorted(e["event"]["id"] for e in entries) == sorted(ids)
    # Spooled at once, not after the 5 s the deliveries get on a single stop signal.
    assert took < 5, took
    assert "spooling what is still in flight" in broker.output()
