"""Listener: the lifecycle the agent's TCP servers share (the HTTP server and the ingress proxy): start on
host:port, the bound port, close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from typing import ClassVar

log = logging.getLogger("cara.agent")


class Listener(ABC):
    """Listener owns one asyncio TCP server whose connections go to `_handle`; `what` names it in the log."""

    #: What the log line calls this listener.
    what: ClassVar[str]
    #: asyncio's stream buffer limit: the longest line `_handle` can read (asyncio's default, 64 KiB).
    limit: ClassVar[int] = 2**16

    _server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """start listens on host:port (raises OSError when it cannot bind)."""
        self._server = await asyncio.start_server(self._handle, host, port, reuse_address=True, limit=self.limit)
        log.info("%s on %s:%d", self.what, host, port)

    @property
    def port(self) -> int | None:
        """port is the bound port (useful with port 0 in tests); None before start and after close."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """close stops accepting and waits for the server to close (its open connections are the handler's)."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    @abstractmethod
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """_handle serves one accepted connection."""
