"""HTTP over a bare socket, for the tests that write what a hostile or unlucky client writes
(a head that never ends, a body past a limit) and read exactly what comes back."""

from __future__ import annotations

import socket


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes; AssertionError if it never does."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {timeout}s") from None
    except ConnectionResetError:
        pass
    return received


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer: its head, then as many body bytes as its content-length says."""
    sock.settimeout(10)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer) < answer_length(answer):
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {answer!r}"
        answer += chunk
    return answer


def answer_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(head) + 4
