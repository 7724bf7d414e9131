"""The agent's own HTTP server: routing, and real GETs over a loopback socket."""

from __future__ import annotations

import asyncio

from agent.http import AgentHTTPServer


def server() -> AgentHTTPServer:
    return AgentHTTPServer({"/healthz": lambda: (200, "application/json", b'{"status":"ok"}\n')})


def test_routing() -> None:
    s = server()
    assert s.respond("GET", "/healthz") == (200, "application/json", b'{"status":"ok"}\n')
    assert s.respond("GET", "/healthz?verbose=1")[0] == 200
    assert s.respond("GET", "/nope")[0] == 404
    assert s.respond("POST", "/healthz")[0] == 405


async def _get(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return answer


async def test_serves_over_a_socket() -> None:
    s = server()
    await s.start("127.0.0.1", 0)
    try:
        assert s.port is not None
        answer = await _get(s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b'\r\n\r\n{"status":"ok"}\n')
        assert b"Content-Length: 16\r\n" in answer
        assert (await _get(s.port, b"GET /x HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404 Not Found")
        assert (await _get(s.port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 Bad Request")
        head = await _get(s.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
    finally:
        await s.close()
    assert s.port is None
