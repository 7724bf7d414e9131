"""The server's own supervised loops: the lease flusher and the HTTP server (the controllers' loop is composed in
main.py, the only server module that may import the controllers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from datetime import timedelta
from typing import Final

import uvicorn

from controlplane.supervision import LoopFn, Progress

from .context import ServerContext

log = logging.getLogger("cara.server")

#: The lease flusher is stalled when no flush succeeded for this many flush periods (at least FLUSH_STALL_MIN):
#: the store has been out of reach that long, and beats are only in memory.
FLUSH_STALL_PERIODS: Final = 3
FLUSH_STALL_MIN: Final = timedelta(seconds=30)


def flush_stall_bound(period: timedelta) -> float:
    """flush_stall_bound is the lease flusher's stall bound in seconds."""
    return max(period * FLUSH_STALL_PERIODS, FLUSH_STALL_MIN).total_seconds()


def lease_flusher(context: ServerContext) -> LoopFn:
    """lease_flusher is the loop that, every lease_flush_interval, refreshes the binding cache by revision and
    persists the renewed leases; and once more when stopping. A failed flush is logged and retried next period
    (the leases stay in memory); it ticks progress only after a flush that succeeded."""

    async def run(stop: asyncio.Event, progress: Progress) -> None:
        period = context.settings.lease_flush_interval.total_seconds()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)
            try:
                await context.writes.refresh_bindings()
                await context.leases.flush(context.store)
            except Exception:
                log.exception("lease flush failed; retrying in %gs", period)
                continue
            progress.tick()

    return run


class _Uvicorn(uvicorn.Server):
    """_Uvicorn leaves the signals to the process root, which stops every loop together (and flushes last)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def http_server(config: uvicorn.Config, sockets: list[socket.socket]) -> LoopFn:
    """http_server is the loop serving the app on the already bound sockets until stop."""

    async def run(stop: asyncio.Event, progress: Progress) -> None:
        server = _Uvicorn(config)
        serving = asyncio.create_task(server.serve(sockets=sockets), name="uvicorn")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            stopping.cancel()
            await serving
        if not server.started and not stop.is_set():
            raise RuntimeError("uvicorn did not start (see its log above)")

    return run
