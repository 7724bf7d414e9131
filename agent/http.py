"""The agent's own HTTP server: GET /healthz and GET /metrics on its tailnet IP (a tiny asyncio responder).

It is deliberately not a web framework: two read-only routes do not justify the memory of one on an edge box.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger("cara.agent")

#: Largest request head we read; anything bigger is not a health probe.
MAX_HEAD: Final = 8 * 1024
READ_TIMEOUT: Final = 5.0

Handler = Callable[[], tuple[int, str, bytes]]
#: Authorize: the peer address → None when it may read a protected route, else why not.
Authorize = Callable[[str], Awaitable[str | None]]

_REASONS: Final = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    400: "Bad Request",
    403: "Forbidden",
    503: "Service Unavailable",
}


class AgentHTTPServer:
    """AgentHTTPServer answers GET on `routes` (path → handler giving status, content type, body); a path in
    `protected` answers only a peer `authorize` accepts (403 otherwise)."""

    def __init__(
        self, routes: dict[str, Handler], *, protected: frozenset[str] = frozenset(), authorize: Authorize | None = None
    ) -> None:
        self.routes = routes
        self.protected, self.authorize = protected, authorize
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """start listens on host:port (raises OSError when it cannot bind)."""
        self._server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        log.info("agent HTTP server on %s:%d (/healthz, /metrics)", host, port)

    @property
    def port(self) -> int | None:
        """port is the bound port (useful with port 0 in tests)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def respond(self, method: str, target: str) -> tuple[int, str, bytes]:
        """respond is the routing decision for one request (pure, so tests need no socket)."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        handler = self.routes.get(target.split("?", 1)[0])
        if handler is None:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        return handler()

    async def _refusal(self, target: str, writer: asyncio.StreamWriter) -> str | None:
        if target.split("?", 1)[0] not in self.protected:
            return None
        if self.authorize is None:
            return "forbidden"
        peer = writer.get_extra_info("peername")
        return await self.authorize(str(peer[0])) if peer else "the request has no peer address"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3:
                status, ctype, body = 400, "text/plain; charset=utf-8", b"bad request\n"
                method = "GET"
            else:
                method = parts[0]
                refusal = await self._refusal(parts[1], writer)
                if refusal is not None:
                    status, ctype, body = 403, "text/plain; charset=utf-8", refusal.encode() + b"\n"
                else:
                    status, ctype, body = self.respond(method, parts[1])
            header = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
