"""The agent API over a real loopback socket, replaying the Go caractl's exact requests (design §3.6)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest

from agent.api.auth import Authorizer
from agent.api.routes import AgentAPI
from agent.http import AgentHTTPServer
from agent.runtime import RuntimeClient
from mesh import PeerNotFound, WhoIsResponse

from .fake_engine import FakeEngine

GO_LOGS = (
    b"GET /api/v1/logs/demo/web?follow=true&tail=5&timestamps=true HTTP/1.1\r\nHost: {host}\r\n"
    b"User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
)
GO_FORWARD = (
    b"GET /api/v1/forward/demo/web/{port} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Upgrade: websocket\r\n\r\n"
)


def who(login: str = "ops@example.com", tags: list[str] | None = None) -> WhoIsResponse:
    return WhoIsResponse.model_validate({"Node": {"Tags": tags or []}, "UserProfile": {"LoginName": login}})


class World:
    def __init__(self, caller: WhoIsResponse | None) -> None:
        self.engine = FakeEngine(address="127.0.0.1")
        self.engine.networks["cara-demo"] = {"Id": "n", "Name": "cara-demo", "Labels": {}}
        self.engine.images.add("img")
        self.caller = caller

    def run(self, name: str = "demo-web") -> None:
        self.engine.containers[name] = {
            "Id": "id-" + name,
            "Name": "/" + name,
            "State": {"Status": "running", "Running": True, "ExitCode": 0},
            "Config": {"Labels": {}, "Tty": False},
            "NetworkSettings": {"Networks": {"cara-demo": {"IPAddress": "127.0.0.1"}}},
        }

    async def whois(self, peer: str) -> WhoIsResponse:
        assert peer == "127.0.0.1"
        if self.caller is None:
            raise PeerNotFound(404, "no match for IP:port")
        return self.caller


@pytest.fixture
async def served() -> AsyncIterator[tuple[World, int]]:
    world = World(who())
    runtime = RuntimeClient("/fake.sock", transport=world.engine.transport())
    authorizer = Authorizer(whois=world.whois, admins=("ops",), viewers=("tag:viewer",))
    api = AgentAPI(runtime=lambda: runtime, authorizer=authorizer)
    server = AgentHTTPServer({"/healthz": lambda: (200, "text/plain", b"OK")}, streams=api.streams())
    await server.start("127.0.0.1", 0)
    assert server.port is not None
    try:
        yield world, server.port
    finally:
        await server.close()
        await runtime.aclose()


async def exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw.replace(b"{host}", f"127.0.0.1:{port}".encode()))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2 :]
    raise AssertionError("no final chunk")


async def test_go_logs_request_streams_demuxed_plain_text(served: tuple[World, int]) -> None:
    world, port = served
    world.run()
    world.engine.logs["demo-web"] = [(1, b"2026-11-30T10:00:00Z out\n"), (2, b"2026-11-30T10:00:01Z err\n")]
    status, headers, body = split(await exchange(port, GO_LOGS))
    assert status == 200
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["transfer-encoding"] == "chunked"
    assert unchunk(body) == b"2026-11-30T10:00:00Z out\n2026-11-30T10:00:01Z err\n"


async def test_logs_without_flags_asks_for_everything(served: tuple[World, int]) -> None:
    world, port = served
    world.run()
    world.engine.logs["demo-web"] = [(1, b"a\n")]
    status, _, body = split(await exchange(port, b"GET /api/v1/logs/demo/web HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (status, unchunk(body)) == (200, b"a\n")


@pytest.mark.parametrize(
    ("raw", "status", "detail"),
    [
        (b"GET /api/v1/logs/demo/nope HTTP/1.1\r\n\r\n", 404, "container demo-nope not found"),
        (b"GET /api/v1/logs/demo/web?tail=x HTTP/1.1\r\n\r\n", 400, "tail: 'x' is not a number of lines"),
        (b"GET /api/v1/forward/demo/web/99999 HTTP/1.1\r\n\r\n", 400, "port: '99999' is not a port (1-65535)"),
        (b"GET /api/v1/forward/demo/nope/80 HTTP/1.1\r\n\r\n", 404, "container demo-nope not found"),
        (b"POST /api/v1/logs/demo/web HTTP/1.1\r\n\r\n", 405, "POST is not allowed here; use GET"),
        (b"GET /api/v1/nothing HTTP/1.1\r\n\r\n", 404, "no route /api/v1/nothing"),
    ],
    ids=["logs-no-container", "logs-bad-tail", "forward-bad-port", "forward-no-container", "wrong-method", "unknown"],
)
async def test_errors_are_problem_documents(served: tuple[World, int], raw: bytes, status: int, detail: str) -> None:
    world, port = served
    world.run()
    got, headers, body = split(await exchange(port, raw))
    assert got == status
    assert headers["content-type"] == "application/problem+json"
    doc = json.loads(body)
    assert (doc["status"], doc["detail"]) == (status, detail)
    assert doc["title"]


async def test_follow_on_a_stopped_container_is_409_and_forward_503(served: tuple[World, int]) -> None:
    world, port = served
    world.run()
    world.engine.exit("demo-web", 0)
    status, _, body = split(await exchange(port, GO_LOGS))
    assert status == 409 and "is not running" in json.loads(body)["detail"]
    status, _, body = split(await exchange(port, GO_FORWARD.replace(b"{port}", b"80")))
    assert status == 503 and json.loads(body)["detail"] == "container demo-web is not running (exited)"


async def test_forward_to_a_closed_port_is_502_before_upgrading(served: tuple[World, int]) -> None:
    world, port = served
    world.run()
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    free = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    status, _, body = split(await exchange(port, GO_FORWARD.replace(b"{port}", str(free).encode())))
    assert status == 502 and f"cannot reach demo-web port {free}" in json.loads(body)["detail"]


@pytest.mark.parametrize(
    ("caller", "path", "status"),
    [
        (who("dev@example.com"), b"/api/v1/logs/demo/web", 403),
        (who("x", tags=["tag:viewer"]), b"/api/v1/forward/demo/web/80", 403),
        (None, b"/api/v1/logs/demo/web", 403),
    ],
    ids=["stranger", "viewer-may-not-forward", "unknown-address"],
)
async def test_refused_callers(
    served: tuple[World, int], caller: WhoIsResponse | None, path: bytes, status: int
) -> None:
    world, port = served
    world.run()
    world.caller = caller
    got, _, body = split(await exchange(port, b"GET " + path + b" HTTP/1.1\r\n\r\n"))
    assert got == status and "may not use" in json.loads(body)["detail"]


async def test_viewer_may_read_logs(served: tuple[World, int]) -> None:
    world, port = served
    world.run()
    world.caller = who("x", tags=["tag:viewer"])
    assert split(await exchange(port, b"GET /api/v1/logs/demo/web HTTP/1.1\r\n\r\n"))[0] == 200


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return bytes([0x80 | opcode]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    assert not second & 0x80, "server frames are not masked"
    return first & 0x0F, await reader.readexactly(size)


async def test_go_forward_request_carries_bytes_both_ways_as_binary_messages(served: tuple[World, int]) -> None:
    world, port = served
    world.run()
    received: list[bytes] = []

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read(100)
        received.append(data)
        w.write(b"pong:" + data + b"x" * 40000)  # more than one 32 KiB read
        await w.drain()
        w.close()

    backend = await asyncio.start_server(echo, "127.0.0.1", 0)
    backend_port = backend.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(GO_FORWARD.replace(b"{port}", str(backend_port).encode()).replace(b"{host}", b"h"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    writer.write(masked_frame(0x2, b"ping"))
    await writer.drain()
    got = b""
    sizes: list[int] = []
    while True:
        opcode, payload = await asyncio.wait_for(read_frame(reader), 5)
        if opcode == 0x8:
            break
        assert opcode == 0x2
        sizes.append(len(payload))
        got += payload
    assert received == [b"ping"]
    assert got == b"pong:ping" + b"x" * 40000
    assert max(sizes) <= 32 * 1024
    writer.close()
    backend.close()
    await backend.wait_closed()
