"""Connection limits uvicorn lacks: a deadline and a size cap for the request head, and an idle timeout for the body.

uvicorn times out idle keep-alive connections only. A client that connects and sends nothing, trickles its
headers a byte at a time (slow loris) or stops halfway through a body would hold its connection, and the
task behind it, forever; and uvicorn's httptools protocol buffers the URL and headers without a bound. These
limits close such connections with a problem document, before the request reaches the app:

- head: the request line and headers must be complete within `head_timeout` of the connection (or of the
  request's first byte on a kept-alive connection) and fit in `max_head_bytes`, else 408 / 431;
- body: once the head is in, the body may pause at most `body_timeout` between two reads, else 408 (a body
  held back by our own flow control, because the app is busy, is not the client's fault and is not timed).

uvicorn has no public hook for these, so LimitedProtocol subclasses its HttpToolsProtocol and relies on parts of
it that are not a documented API: the parser callbacks it overrides (`UVICORN_HOOKS`) and the per-connection
attributes it reads (`UVICORN_ATTRIBUTES`). They were checked against uvicorn `CHECKED_UVICORN` (pinned in
pyproject.toml); tests/controlplane/server/test_limits_uvicorn.py fails, naming what changed, when uvicorn does.
"""

from __future__ import annotations

import asyncio
import functools
import json
from http import HTTPStatus
from typing import Any, Final, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .problems import PROBLEM_JSON, problem_body

#: The uvicorn release whose HttpToolsProtocol internals this module was checked against.
CHECKED_UVICORN: Final = "0.54.0"
#: HttpToolsProtocol methods LimitedProtocol overrides and extends (each calls the original).
UVICORN_HOOKS: Final = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_message_complete",
)
#: HttpToolsProtocol attributes LimitedProtocol reads: `flow.read_paused` and `cycle.response_started` included.
UVICORN_ATTRIBUTES: Final = ("loop", "logger", "transport", "flow", "client", "cycle")

#: Defaults. Head: a request line and headers are one packet or a few; 10 s tolerates a bad link (Go servers often
#: use 10 s for ReadHeaderTimeout). Body: 20 s without a byte mid-body is a dead link or a hostile client; agents
#: retry. Head size: our requests carry a handful of short headers; 64 KiB is h11's default and far above them.
HEAD_TIMEOUT: Final = 10.0
BODY_TIMEOUT: Final = 20.0
MAX_HEAD_BYTES: Final = 64 * 1024


def _problem_bytes(status: int, detail: str) -> bytes:
    """_problem_bytes renders a whole HTTP/1.1 problem response that closes the connection."""
    body = json.dumps(problem_body(status, detail)).encode()
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {PROBLEM_JSON}\r\n"
    return f"{head}content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body


#: How long a closing connection keeps reading (and discarding) what the client still sends.
LINGER: Final = 2.0


class _LingeringTransport:
    """_LingeringTransport makes close() a lingering close: send FIN after the answer, read on for LINGER seconds.

    Closing a socket that still has unread request bytes makes the kernel send RST, and a client that is still
    writing its (oversized, refused) body may then lose the 413 it was sent. Half-closing first and discarding
    input for a moment lets the answer arrive, as nginx's lingering_close does.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self.lingering = False

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        self.lingering = True
        try:
            self._transport.resume_reading()
            self._transport.write_eof()
        except (OSError, RuntimeError):
            self._transport.close()
            return
        self._loop.call_later(LINGER, self._transport.close)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LimitedProtocol(HttpToolsProtocol):
    """LimitedProtocol is uvicorn's httptools protocol with the head and body limits of this module."""

    def __init__(self, *args: Any, head_timeout: float, body_timeout: float, max_head_bytes: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.head_timeout, self.body_timeout, self.max_head_bytes = head_timeout, body_timeout, max_head_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # HeadBytes: bytes received since the request began, while its head is incomplete; None once it is.
        self._head_bytes: int | None = 0

    def _cancel(self, timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def _reject(self, status: int, detail: str) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_problem_bytes(status, detail))
        self.logger.info("closing the connection of %s: %s", self.client, detail)
        self.transport.close()

    def _head_expired(self) -> None:
        self._reject(408, f"the request line and headers did not arrive within {self.head_timeout:g} s")

    def _body_expired(self) -> None:
        if self.flow.read_paused:  # we stopped reading (the app is busy), not the client: wait on
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_expired)
            return
        self._reject(408, f"the request body stalled for {self.body_timeout:g} s")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self.loop))  # type: ignore[arg-type]
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if getattr(self.transport, "lingering", False):  # closing: what the client still sends is discarded
            return
        if self._body_timer is not None:  # the body moves: restart its idle timer
            self._body_timer.cancel()
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_expired)
        super().data_received(data)
        if self._head_bytes is not None:  # counted after parsing: a request that began in data counts all of it
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._reject(431, f"the request line and headers exceed {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:  # the next request on a kept-alive connection
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def on_headers_complete(self) -> None:
        self._cancel(self._head_timer)
        self._head_timer, self._head_bytes = None, None
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.body_timeout, self._body_expired)

    def on_message_complete(self) -> None:
        self._cancel(self._body_timer)
        self._body_timer = None
        super().on_message_complete()


def limited_protocol(
    *, head_timeout: float = HEAD_TIMEOUT, body_timeout: float = BODY_TIMEOUT, max_head_bytes: int = MAX_HEAD_BYTES
) -> type[asyncio.Protocol]:
    """limited_protocol returns the protocol factory for uvicorn.Config(http=...) with these limits.

    uvicorn only calls what it is given, so a partial stands in for the class its annotation names.
    """
    factory = functools.partial(
        LimitedProtocol, head_timeout=head_timeout, body_timeout=body_timeout, max_head_bytes=max_head_bytes
    )
    return cast(type[asyncio.Protocol], factory)
