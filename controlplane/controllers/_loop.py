"""The one loop every controller's `run` uses: a pass every period until stop, gated, surviving errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

log = logging.getLogger("controlplane.controllers")

#: An optional async gate asked before each pass (leader election later); False skips the pass.
Gate = Callable[[], Awaitable[bool]]


async def run_every(
    name: str,
    sync_once: Callable[[], Awaitable[object]],
    period: timedelta,
    stop: asyncio.Event,
    gate: Gate | None = None,
    on_pass: Callable[[], None] | None = None,
    wake: asyncio.Event | None = None,
) -> None:
    """run_every calls sync_once every period (start to start) until stop is set; wake, when set, starts the next
    pass at once (it is cleared as the pass starts, so what set it during a pass gets a pass of its own).

    A pass that raises is logged and the loop goes on: one bad row or a store hiccup must not stop
    node lifecycle for the whole fleet. on_pass is called after every pass that finished (not one that raised,
    nor one the gate skipped): the process root tells a live controller from one that keeps failing by it.
    """
    loop = asyncio.get_running_loop()
    seconds = period.total_seconds()
    while not stop.is_set():
        started = loop.time()
        if wake is not None:
            wake.clear()
        try:
            if gate is None or await gate():
                await sync_once()
                if on_pass is not None:
                    on_pass()
        except Exception:
            log.exception("%s: pass failed", name)
        remaining = seconds - (loop.time() - started)
        if remaining > 0:
            await _wait(stop, wake, remaining)
        else:
            # A pass longer than the period: yield once so other controllers still get the loop.
            await asyncio.sleep(0)


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """_wait sleeps seconds, or less when stop (or wake) is set meanwhile."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, wake) if event is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
