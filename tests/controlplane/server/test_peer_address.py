"""A caller is known by the address its connection comes from: the server's uvicorn configuration lets no
X-Forwarded-For header replace it, not even from loopback (uvicorn's default trusts 127.0.0.1)."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import Receive, Scope, Send

from controlplane.server.binding import dev_addresses, open_sockets
from controlplane.server.serving import uvicorn_config
from tests.helpers import free_port


async def test_a_forwarded_header_does_not_change_the_callers_address() -> None:
    seen: list[tuple[str, int] | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope.get("client"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    (sock,) = open_sockets(dev_addresses(f"127.0.0.1:{free_port()}"))
    server = uvicorn.Server(uvicorn_config(app, "warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 100.64.0.9\r\nX-Forwarded-Proto: https\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    finally:
        server.should_exit = True
        await task
    assert head.startswith(b"HTTP/1.1 204")
    assert len(seen) == 1 and seen[0] is not None and seen[0][0] == "127.0.0.1"
