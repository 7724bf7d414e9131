"""Limits of a real `cara-server --dev` on loopback: body size, slow clients, and 1,000 concurrent connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from controlplane.api import MAX_BODY_BYTES
from controlplane.server.limits import BODY_TIMEOUT, HEAD_TIMEOUT, MAX_HEAD_BYTES
from tests.helpers import free_port

#: Connections of the load test: issue 8 asks for 1,000 at once.
CONNECTIONS = 1000
#: Requests each load connection sends on its kept-alive connection.
REQUESTS_PER_CONNECTION = 5
#: Descriptors the server and this test need: one per connection, plus the interpreter's own and slack.
NOFILE = 4 * CONNECTIONS


def _raise_nofile() -> None:
    """_raise_nofile lifts this process's open-file limit (inherited by the server) to NOFILE when it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < NOFILE:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, hard), hard))


@dataclass(frozen=True)
class Server:
    """Server is a running cara-server --dev: where it listens and its process."""

    host: str
    port: int
    process: psutil.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fds(self) -> int:
        return self.process.num_fds()

    def rss(self) -> int:
        return int(self.process.memory_info().rss)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """server runs the real cara-server --dev (its own process, SQLite in a temp dir) on a free loopback port."""
    _raise_nofile()
    data = tmp_path_factory.mktemp("cara-server")
    port = free_port()
    log = data / "server.log"
    command = [str(Path(sys.executable).parent / "cara-server"), "--dev", "--listen", f"127.0.0.1:{port}"]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--data-dir", str(data)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:  # readiness, not time: poll until it answers (or gives up with its log)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/healthz", timeout=1).text == "OK":
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Server("127.0.0.1", port, psutil.Process(proc.pid), log)
        assert proc.poll() is None, f"cara-server died: {log.read_text()}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """_read_response reads one HTTP/1.1 response with a Content-Length (all of ours have one)."""
    status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """_closed_by_server reports whether the server ends the stream within 5 s (EOF, or a reset of unread data)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout=5) == b""
    except ConnectionResetError:
        return True


@contextlib.asynccontextmanager
async def _raw(server: Server, head: bytes) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """_raw opens a connection, sends head (any bytes) and closes the connection when done."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _stored_nodes(server: Server) -> list[object]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        items: list[object] = (await client.get("/api/v1/nodes")).json()["items"]
    return items


def _head(method: str, path: str, *headers: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: cara-server", *headers, "", ""]).encode()


async def test_body_over_the_limit_by_content_length_is_refused_before_it_is_sent(server: Server) -> None:
    started = time.monotonic()
    head = _head("POST", "/api/v1/nodes", f"Content-Length: {4 * MAX_BODY_BYTES}", "Content-Type: application/json")
    async with _raw(server, head + b'{"metadata": {"name": "big"}, "x": "') as (reader, _):
        status, headers, body = await asyncio.wait_for(_read_response(reader), timeout=5)
        assert await _closed_by_server(reader)
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["detail"] == f"request body exceeds the limit of {MAX_BODY_BYTES} bytes"
    assert time.monotonic() - started < 5  # answered from the header, not after reading 4 MiB
    assert await _stored_nodes(server) == []


async def test_chunked_body_over_the_limit_is_cut_off_at_the_limit(server: Server) -> None:
    chunk = b"x" * 65536
    sent = 0
    async with _raw(server, _head("POST", "/api/v1/nodes", "Transfer-Encoding: chunked")) as (reader, writer):
        answer = asyncio.ensure_future(_read_response(reader))
        while not answer.done() and sent < 8 * MAX_BODY_BYTES:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            try:
                await writer.drain()
            except ConnectionError:  # the server answered and closed; the answer is already buffered
                break
            sent += len(chunk)
            await asyncio.sleep(0)
        status, headers, body = await asyncio.wait_for(answer, timeout=5)
        # The server closes rather than drain an endless body: the answer came before 8 MiB, then end of stream.
        assert await _closed_by_server(reader)
    assert status == 413 and json.loads(body)["title"] == "Content Too Large"
    assert headers["connection"] == "close" and sent < 8 * MAX_BODY_BYTES


async def test_an_oversized_request_head_is_431(server: Server) -> None:
    async with _raw(server, b"GET /api/healthz HTTP/1.1\r\nX-Junk: " + b"a" * (MAX_HEAD_BYTES + 1024)) as (reader, _):
        status, headers, body = await asyncio.wait_for(_read_response(reader), timeout=5)
    assert status == 431 and headers["connection"] == "close"
    assert json.loads(body)["detail"] == f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"


async def _silent(server: Server) -> tuple[int, float]:
    """_silent connects and sends nothing at all."""
    started = time.monotonic()
    async with _raw(server, b"") as (reader, _):
        status, _, _ = await _read_response(reader)
    return status, time.monotonic() - started


async def _slow_loris(server: Server) -> tuple[int, float]:
    """_slow_loris sends a request head one header every second, never finishing it."""
    started = time.monotonic()
    async with _raw(server, b"POST /api/v1/nodes HTTP/1.1\r\nHost: cara-server\r\n") as (reader, writer):
        answer = asyncio.ensure_future(_read_response(reader))
        index = 0
        while not answer.done():
            try:
                writer.write(b"X-Loris-%d: still here\r\n" % index)
                await writer.drain()
            except ConnectionError:
                break
            index += 1
            await asyncio.wait([answer], timeout=1)
        status, _, _ = await answer
    return status, time.monotonic() - started


async def _stalled_body(server: Server) -> tuple[int, float]:
    """_stalled_body sends a whole head and 10 of the 100 body bytes it announced, then nothing."""
    async with _raw(server, _head("POST", "/api/v1/nodes", "Content-Length: 100") + b'{"metadata"') as (reader, _):
        started = time.monotonic()
        status, _, _ = await _read_response(reader)
    return status, time.monotonic() - started


@pytest.mark.slow
async def test_slow_clients_are_cut_off_and_others_are_served_meanwhile(server: Server) -> None:
    """Silent, trickling (slow loris, x1,000 at once) and stalled clients get 408 at the deadlines; a normal client
    is served at once while they hold their connections."""
    baseline = server.fds()
    silent = asyncio.ensure_future(_silent(server))
    loris = asyncio.ensure_future(_slow_loris(server))
    stalled = asyncio.ensure_future(_stalled_body(server))
    horde = [asyncio.ensure_future(_slow_loris(server)) for _ in range(CONNECTIONS)]
    assert await _reached(server.fds, baseline + CONNECTIONS) >= baseline + CONNECTIONS  # they hold their connections
    async with httpx.AsyncClient(base_url=server.url) as client:
        started = time.monotonic()
        assert (await client.get("/api/v1/nodes")).status_code == 200
        assert time.monotonic() - started < 1
    for task, deadline in ((silent, HEAD_TIMEOUT), (loris, HEAD_TIMEOUT), (stalled, BODY_TIMEOUT)):
        status, elapsed = await asyncio.wait_for(task, timeout=deadline + 10)
        assert status == 408 and deadline - 0.5 <= elapsed <= deadline + 3
    statuses = Counter(status for status, _ in await asyncio.gather(*horde))
    assert statuses == {408: CONNECTIONS}
    assert await _settled(server.fds, baseline + 5) <= baseline + 5  # every cut connection's socket is closed
    assert await _stored_nodes(server) == []
    assert "unhandled error" not in server.log.read_text()


async def _settled(measure: Callable[[], int], target: int, within: float = 5.0) -> int:
    """_settled polls measure() until it is at most target or `within` seconds passed; returns the last value."""
    deadline = time.monotonic() + within
    value = measure()
    while value > target and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = measure()
    return value


async def _reached(measure: Callable[[], int], target: int, within: float = 5.0) -> int:
    """_reached polls measure() until it is at least target or `within` seconds passed; returns the last value."""
    deadline = time.monotonic() + within
    value = measure()
    while value < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = measure()
    return value


async def _load_connection(server: Server, gate: asyncio.Event, opened: Counter[str]) -> list[int]:
    """_load_connection opens a connection, waits until all are open, then sends its requests kept alive."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    opened["connections"] += 1
    if opened["connections"] == CONNECTIONS:
        gate.set()
    await gate.wait()
    statuses = []
    for index in range(REQUESTS_PER_CONNECTION):
        if index % 2:
            writer.write(_head("GET", "/api/v1/nodes"))
        else:
            body = b'{"metadata": {"name": "load"}}'
            writer.write(_head("POST", "/api/v1/nodes/load/heartbeat", f"Content-Length: {len(body)}") + body)
        await writer.drain()
        status, _, _ = await _read_response(reader)
        statuses.append(status)
    writer.close()
    await writer.wait_closed()
    return statuses


async def _load(server: Server) -> Counter[int]:
    gate, opened = asyncio.Event(), Counter[str]()
    clients = [asyncio.ensure_future(_load_connection(server, gate, opened)) for _ in range(CONNECTIONS)]
    await asyncio.wait_for(gate.wait(), timeout=30)
    assert await _reached(server.fds, CONNECTIONS) >= CONNECTIONS  # 1,000 connections open at the same time
    return Counter(status for statuses in await asyncio.gather(*clients) for status in statuses)


@pytest.mark.slow
async def test_1000_concurrent_connections_without_errors_or_leaks(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.post("/api/v1/nodes", json={"metadata": {"name": "load"}})).status_code == 201
    baseline_fds = await _settled(server.fds, 0, within=1)
    first = await _load(server)
    rss_after_first = server.rss()
    second = await _load(server)
    expected = {204: CONNECTIONS * 3, 200: CONNECTIONS * 2}  # heartbeats and lists, all answered
    assert first == expected and second == expected
    assert await _settled(server.fds, baseline_fds + 5) <= baseline_fds + 5  # no descriptor leak
    assert server.rss() - rss_after_first < 16 * 1024 * 1024  # a second round costs no new memory (no leak)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.delete("/api/v1/nodes/load")).status_code == 204
    assert "unhandled error" not in server.log.read_text()
