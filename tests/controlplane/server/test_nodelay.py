"""Accepted connections of every listener kind have TCP_NODELAY as uvicorn serves them, so a response whose
body is written after its head is not held ~40 ms by Nagle plus delayed ACK (bench/run shows that latency)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from agent.http import AgentHTTPServer, RequestHead
from controlplane.server.binding import dev_addresses, open_sockets, tailnet_addresses
from controlplane.server.serving import uvicorn_config
from mesh import Status
from tests.helpers import free_port


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """_app answers every request with a head, then a body in a second write (as uvicorn writes JSON)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _served_nodelay(sock: socket.socket) -> int:
    """_served_nodelay serves `sock` with the server's uvicorn configuration, holds one keep-alive connection
    and reads TCP_NODELAY off the accepted socket uvicorn's transport holds."""
    server = uvicorn.Server(uvicorn_config(_app, "warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        host, port = sock.getsockname()[:2]
        # The socket already listens, so the connection waits in its backlog until uvicorn accepts it.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        (protocol,) = server.server_state.connections
        accepted = protocol.transport.get_extra_info("socket")
        nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
    finally:
        server.should_exit = True
        await task
    return int(nodelay)


TAILNET = Status.model_validate({"BackendState": "Running", "TailscaleIPs": ["127.0.0.1", "::1"]})


def _addresses(kind: str) -> list[tuple[str, int]]:
    """_addresses goes through each listener kind's own address rules to a free loopback port."""
    mode, family = kind.split()
    host, fam = ("::1", socket.AF_INET6) if family == "IPv6" else ("127.0.0.1", socket.AF_INET)
    listen = f"[{host}]:{free_port(host, fam)}" if family == "IPv6" else f"{host}:{free_port(host, fam)}"
    return dev_addresses(listen) if mode == "dev" else tailnet_addresses(TAILNET, [listen])


@pytest.mark.parametrize("kind", ["dev IPv4", "dev IPv6", "tailnet IPv4", "tailnet IPv6"])
async def test_accepted_sockets_have_tcp_nodelay(kind: str) -> None:
    (sock,) = open_sockets(_addresses(kind))
    assert await _served_nodelay(sock) != 0, f"{kind}: accepted socket without TCP_NODELAY"


async def test_the_agent_http_server_sets_tcp_nodelay() -> None:
    """The agent's server comes from asyncio.start_server (getaddrinfo gives IPPROTO_TCP), so it is covered; a
    stream handler is given the accepted connection itself, so it reads the option there."""
    accepted: list[int] = []

    async def nodelay(head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        await writer.drain()
        writer.close()

    agent = AgentHTTPServer({}, streams={"/nodelay": nodelay})
    await agent.start("127.0.0.1", 0)
    try:
        assert agent.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        writer.write(b"GET /nodelay HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (await reader.read()).endswith(b"ok\n")
        writer.close()
    finally:
        await agent.close()
    assert accepted and accepted[0] != 0
