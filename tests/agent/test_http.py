"""The agent's own HTTP server: routing, and real GETs over a loopback socket."""

from __future__ import annotations

import asyncio

import httpx

from agent.callers import MetricsCallers
from agent.http import AgentHTTPServer
from mesh import LocalClient
from tests.mesh.captured import FakeDaemon


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


async def _guarded(allowed: tuple[str, ...], answer: tuple[int, str]) -> tuple[bytes, bytes]:
    daemon = FakeDaemon({"GET whois": answer})
    local = LocalClient("/fake/tailscaled.sock", transport=httpx.MockTransport(daemon))
    s = AgentHTTPServer(
        {"/healthz": lambda: (200, "text/plain", b"ok\n"), "/metrics": lambda: (200, "text/plain", b"m 1\n")},
        protected=frozenset({"/metrics"}),
        authorize=MetricsCallers(local=local, allowed=allowed).refusal,
    )
    await s.start("127.0.0.1", 0)
    try:
        assert s.port is not None
        metrics = await _get(s.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        health = await _get(s.port, b"GET /healthz HTTP/1.1\r\n\r\n")
        return metrics, health
    finally:
        await s.close()
        await local.aclose()


async def test_metrics_answer_a_caller_whose_tag_is_named() -> None:
    # edge1-whois-edge2.json: a machine tagged tag:cara-node, captured from the lab's tailscaled.
    metrics, _ = await _guarded(("tag:cara-node",), (200, "edge1-whois-edge2.json"))
    assert metrics.startswith(b"HTTP/1.1 200 OK") and metrics.endswith(b"m 1\n")


async def test_metrics_answer_an_operator_named_by_login() -> None:
    metrics, _ = await _guarded(("ops",), (200, "edge1-whois-operator.json"))
    assert metrics.startswith(b"HTTP/1.1 200 OK")


async def test_metrics_refuse_everyone_else_while_healthz_stays_open() -> None:
    metrics, health = await _guarded(("tag:cara-scraper",), (200, "edge1-whois-edge2.json"))
    assert metrics.startswith(b"HTTP/1.1 403 Forbidden") and b"may not read /metrics" in metrics
    assert health.startswith(b"HTTP/1.1 200 OK")
    unknown, _ = await _guarded(("tag:cara-scraper",), (404, "edge1-whois-unknown.txt"))
    assert unknown.startswith(b"HTTP/1.1 403") and b"is not a machine of this tailnet" in unknown
