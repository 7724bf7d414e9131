"""The ingress proxy: the Go host rules, X-Forwarded-* headers and the 502 page, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.ingress import IngressProxy, Route, build_routes, request_host
from agent.runtime import RuntimeClient
from controlplane.api import Project

from .fake_engine import FakeEngine


def project(name: str, ingress: list[dict[str, Any]]) -> Project:
    return Project.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"services": [{"name": "web", "image": "x"}, {"name": "api", "image": "y"}], "ingress": ingress},
        }
    )


def test_go_host_rules() -> None:
    routes = build_routes(
        [
            project(
                "demo",
                [
                    {"name": "site", "host": "www", "target": {"service": "web", "port": 80}},
                    {"name": "api", "host": "api.example.test", "target": {"service": "api", "port": 8080}},
                    {"name": "bare", "target": {"service": "web", "port": 81}},
                ],
            )
        ]
    )
    assert routes == {
        "www.demo.local": Route("demo", "web", 80),
        "api.example.test": Route("demo", "api", 8080),
        "bare.demo.local": Route("demo", "web", 81),
    }


@pytest.mark.parametrize(
    ("header", "host"),
    [("www.demo.local:8081", "www.demo.local"), ("WWW.demo.local", "www.demo.local"), ("[fd7a::1]:8081", "[fd7a::1]")],
    ids=["port-stripped", "lowercased", "ipv6"],
)
def test_request_host(header: str, host: str) -> None:
    assert request_host({"host": header}) == host


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[FakeEngine, int, list[bytes], int]]:
    seen: list[bytes] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    web = await asyncio.start_server(backend, "127.0.0.1", 0)
    web_port = web.sockets[0].getsockname()[1]
    engine = FakeEngine(address="127.0.0.1")
    engine.containers["demo-web"] = {
        "Id": "id-web",
        "State": {"Status": "running", "Running": True},
        "NetworkSettings": {"Networks": {"cara-demo": {"IPAddress": "127.0.0.1"}}},
    }
    runtime = RuntimeClient("/fake.sock", transport=engine.transport())
    projects = [
        project(
            "demo",
            [
                {"name": "site", "host": "www", "target": {"service": "web", "port": web_port}},
                {"name": "down", "host": "down", "target": {"service": "api", "port": 80}},
            ],
        )
    ]
    proxy = IngressProxy(projects=lambda: projects, runtime=lambda: runtime)
    await proxy.start("127.0.0.1", 0)
    assert proxy.port is not None
    try:
        yield engine, proxy.port, seen, web_port
    finally:
        await proxy.close()
        await runtime.aclose()
        web.close()
        await web.wait_closed()


async def get(port: int, host: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_routes_by_host_and_sets_forwarded_headers(proxied: tuple[FakeEngine, int, list[bytes], int]) -> None:
    _, port, seen, _ = proxied
    answer = await get(port, f"www.demo.local:{port}")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"hello")
    head = seen[0].decode()
    assert head.startswith("GET /index.html HTTP/1.1\r\n")
    assert f"Host: www.demo.local:{port}\r\n" in head
    assert "X-Forwarded-For: 127.0.0.1\r\n" in head
    assert f"X-Forwarded-Host: www.demo.local:{port}\r\n" in head
    assert "X-Forwarded-Proto: http\r\n" in head
    assert "Connection: close\r\n" in head and "keep-alive" not in head


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("nope.demo.local", b"No ingress on this node serves host nope.demo.local."),
        ("down.demo.local", b"service api of project demo has no container"),
    ],
    ids=["unknown-host", "no-container"],
)
async def test_bad_gateway_page(proxied: tuple[FakeEngine, int, list[bytes], int], host: str, why: bytes) -> None:
    _, port, _, _ = proxied
    answer = await get(port, host)
    assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html; charset=utf-8\r\n")
    assert why in answer


async def test_dead_backend_and_stopped_container_are_502(proxied: tuple[FakeEngine, int, list[bytes], int]) -> None:
    engine, _, _, _ = proxied
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    dead = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    projects = [project("demo", [{"name": "s", "host": "www", "target": {"service": "web", "port": dead}}])]
    runtime = RuntimeClient("/fake.sock", transport=engine.transport())
    proxy = IngressProxy(projects=lambda: projects, runtime=lambda: runtime)
    await proxy.start("127.0.0.1", 0)
    assert proxy.port is not None
    try:
        answer = await get(proxy.port, "www.demo.local")
        assert (
            answer.startswith(b"HTTP/1.1 502")
            and f"Cannot reach service web of project demo on port {dead}".encode() in answer
        )
        engine.exit("demo-web", 137)
        answer = await get(proxy.port, "www.demo.local")
        assert answer.startswith(b"HTTP/1.1 502") and b"service web of project demo is not running" in answer
    finally:
        await proxy.close()
        await runtime.aclose()
