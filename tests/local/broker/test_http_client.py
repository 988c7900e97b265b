"""The broker's HTTP client against real TCP servers: framing, keep-alive, stale connections,
limits and failures. Each server is a few lines of asyncio that answers raw HTTP, so every
framing case (chunked, close-delimited, Connection: close) is exactly what is on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from modelstats.local.broker.http_client import HttpClient, HttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            try:
                await self.handler(reader, writer, self)
            finally:
                self.open_now -= 1
                writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/in?x=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


async def keep_alive(reader, writer, server: Server) -> None:
    """Echo every request's body, keeping the connection open."""
    while True:
        try:
            body = await server.read_request(reader)
        except asyncio.IncompleteReadError:
            return
        assert body is not None
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nx-echo: yes\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()


def run(coroutine: Awaitable[object]) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_sequential_requests_share_one_kept_alive_connection() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            client = HttpClient()
            answers = [
                await client.post(server.url, {"ce-id": str(i)}, b"body %d" % i, 5)
                for i in range(20)
            ]
            await client.close()
        assert [a.body for a in answers] == [b"body %d" % i for i in range(20)]
        assert answers[0].status == 200 and answers[0].headers["x-echo"] == "yes"
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /in?x=1 HTTP/1.1\r\n")
        assert b"\r\nce-id: 0\r\n" in first and b"\r\ncontent-length: 6\r\n" in first

    run(main())


def test_chunked_and_close_delimited_answers_are_read_whole() -> None:
    async def chunked(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        await writer.drain()
        await reader.read()  # keep it open until the client is done

    async def until_close(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end")
        await writer.drain()

    async def main() -> None:
        client = HttpClient()
        async with Server(chunked) as server:
            assert (await client.post(server.url, {}, b"", 5)).body == b"hello world"
        async with Server(until_close) as server:
            for _ in range(2):  # the closed connection is not reused
                assert (await client.post(server.url, {}, b"", 5)).body == b"to the end"
            assert server.connections == 2
        await client.close()

    run(main())


def test_a_kept_alive_connection_the_server_closed_is_retried_once_on_a_new_one() -> None:
    async def one_per_connection(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # says keep-alive, then closes
        await writer.drain()
        await asyncio.sleep(0.05)

    async def main() -> None:
        async with Server(one_per_connection) as server:
            client = HttpClient()
            first = await client.post(server.url, {}, b"1", 5)
            await asyncio.sleep(0.2)  # the server has closed it by now
            second = await client.post(server.url, {}, b"2", 5)
            await client.close()
        assert (first.status, second.status) == (204, 204)
        assert server.connections == 2

    run(main())


def test_failures_are_http_errors() -> None:
    async def silent(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        await asyncio.sleep(5)

    async def huge(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100000)
        await writer.drain()

    async def garbage(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        client = HttpClient(max_answer_bytes=1000)
        async with Server(silent) as server:
            with pytest.raises(HttpError, match=r"timed out after 0\.2s"):
                await client.post(server.url, {}, b"", 0.2)
        async with Server(huge) as server:
            with pytest.raises(HttpError, match="larger than 1000 bytes"):
                await client.post(server.url, {}, b"", 5)
        async with Server(garbage) as server:
            with pytest.raises(HttpError, match="malformed"):
                await client.post(server.url, {}, b"", 5)
        async with Server(keep_alive) as server:
            url = server.url
        with pytest.raises(HttpError, match="ConnectionRefused"):
            await client.post(url, {}, b"", 5)
        with pytest.raises(HttpError, match="line breaks"):
            await client.post(url, {"ce-id": "a\r\nx-injected: 1"}, b"", 5)
        with pytest.raises(HttpError, match="not an http"):
            await client.post("ftp://host/x", {}, b"", 5)
        await client.close()

    run(main())


def test_connections_per_host_are_capped_and_the_rest_wait() -> None:
    async def slow(reader, writer, server: Server) -> None:
        while True:
            try:
                await server.read_request(reader)
            except asyncio.IncompleteReadError:
                return
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async def main() -> None:
        async with Server(slow) as server:
            client = HttpClient(connections_per_host=2)
            answers = await asyncio.gather(
                *(client.post(server.url, {}, b"%d" % i, 5) for i in range(8))
            )
            await client.close()
        assert [a.status for a in answers] == [204] * 8
        assert server.most_open == 2 and server.connections == 2

    run(main())
