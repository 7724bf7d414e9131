"""The agent's own HTTP server on its tailnet IP: GET /healthz and /metrics, and the agent API under /api/v1/.

It is deliberately not a web framework: a handful of routes do not justify the memory of one on an edge box.
Plain routes answer with one body; a `StreamHandler` (the agent API: streamed logs, WebSocket port-forward) gets
the parsed request head and the connection itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

from .listener import Listener

log = logging.getLogger("cara.agent")

#: Largest request head we read; anything bigger is not a health probe.
MAX_HEAD: Final = 8 * 1024
READ_TIMEOUT: Final = 5.0

Handler = Callable[[], tuple[int, str, bytes]]
#: Authorize: the peer address → None when it may read a protected route, else why not.
Authorize = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class RequestHead:
    """RequestHead is one parsed request line and its headers (names lowercased), with the caller's address."""

    method: str
    target: str
    headers: dict[str, str]
    # peer: the caller's IP address as the socket saw it ("" when unknown).
    peer: str
    # raw: the head's bytes as received (a WebSocket handshake parses them again).
    raw: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)


StreamHandler = Callable[[RequestHead, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

_REASONS: Final = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    400: "Bad Request",
    403: "Forbidden",
    503: "Service Unavailable",
}


class AgentHTTPServer(Listener):
    """AgentHTTPServer answers GET on `routes` (path → handler giving status, content type, body); a path in
    `protected` answers only a peer `authorize` accepts (403 otherwise)."""

    what = "agent HTTP server (/healthz, /metrics)"

    def __init__(
        self,
        routes: dict[str, Handler],
        *,
        streams: dict[str, StreamHandler] | None = None,
        protected: frozenset[str] = frozenset(),
        authorize: Authorize | None = None,
    ) -> None:
        self.routes = routes
        # streams: path prefix → handler that owns the connection (the agent API).
        self.streams = streams or {}
        self.protected, self.authorize = protected, authorize

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

    def _stream_for(self, parts: list[str]) -> StreamHandler | None:
        if len(parts) != 3:
            return None
        path = parts[1].split("?", 1)[0]
        return next((handler for prefix, handler in self.streams.items() if path.startswith(prefix)), None)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            stream = self._stream_for(parts)
            if stream is not None:
                await stream(parse_head(head, writer), reader, writer)
                return
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


def parse_head(head: bytes, writer: asyncio.StreamWriter) -> RequestHead:
    """parse_head reads the request line and headers of head (a complete head, ending in a blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    peer = writer.get_extra_info("peername")
    return RequestHead(method, target, headers, str(peer[0]) if peer else "", head)
