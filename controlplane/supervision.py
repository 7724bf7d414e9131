"""Supervisor: one process root that runs a binary's loops side by side, restarts a loop that raises, and says
which loop is dead or stalled.

A leaf module (standard library only, nothing of Nodes) so that cara-server and cara-agent both use it.

- Each loop is a coroutine function taking (stop, progress); it runs until stop is set. It calls
  `progress.tick()` whenever it makes progress (a beat attempted, a pass finished), optionally saying within how
  long it will next (`tick(within=delay)`: a loop backing off announces its longer wait). A loop with a stall
  bound that has not ticked within that bound (plus its announced wait) is *stalled*.
- A loop that raises is logged with its traceback, counted (`restarts`, and the `on_restart` hook for the
  binary's metrics) and started again after a backoff (1 s doubling to 30 s). A loop that fails `max_failures`
  times within `window` cannot be restarted: the supervisor stops every loop and `run` returns 1, so the
  process exits non-zero and systemd starts it again.
- A loop marked `ends_process` (the HTTP server) ending by itself stops the others: the process is done.
- `problems()` names every loop that is dead (waiting to restart, or given up) or stalled; /healthz answers 503
  with them.

Time comes in through `clock` (monotonic seconds) and `sleep`, so tests step it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

log = logging.getLogger("cara.supervision")

#: A loop that fails this many times within FAILURE_WINDOW seconds is not restarted again: the process ends.
MAX_FAILURES: Final = 5
FAILURE_WINDOW: Final = 300.0
#: Backoff before a restart: BASE seconds, doubling per failure in the window, at most CAP.
RESTART_BASE: Final = 1.0
RESTART_CAP: Final = 30.0
#: The exit code of a process whose loop could not be restarted.
EXIT_LOOP_FAILED: Final = 1


class Progress:
    """Progress is what a loop reports its progress through; the supervisor reads when it last ticked."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.last: float = clock()
        self.within: float = 0.0

    def tick(self, within: float = 0.0) -> None:
        """tick records that the loop made progress now, and will next within `within` seconds (plus its bound)."""
        self.last, self.within = self._clock(), max(within, 0.0)


#: A supervised loop: runs until stop is set, ticking progress as it goes.
LoopFn = Callable[[asyncio.Event, Progress], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class LoopState:
    """LoopState is one supervised loop as the supervisor sees it (read by /healthz and /metrics)."""

    name: str
    run: LoopFn
    # StallAfter: seconds without a tick after which the loop counts as stalled; None: never.
    stall_after: float | None
    # EndsProcess: the loop ending by itself (not on stop) stops the process.
    ends_process: bool
    # RestartAfter: the least wait before a restart, whatever the backoff says.
    restart_after: float
    # Graceful: on stop the loop is awaited to finish by itself (an HTTP server draining), not cancelled.
    graceful: bool
    progress: Progress
    restarts: int = 0
    failures: list[float] = field(default_factory=list)
    # Down: why the loop is not running right now (waiting to restart, or given up); "" while it runs.
    down: str = ""


class Supervisor:
    """Supervisor runs loops side by side until stop, restarting the ones that raise (see the module doc)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_restart: Callable[[str], None] | None = None,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        restart_base: float = RESTART_BASE,
        restart_cap: float = RESTART_CAP,
    ) -> None:
        self._clock = clock
        self._sleep, self._on_restart = sleep, on_restart
        self.max_failures, self.window = max_failures, window
        self.restart_base, self.restart_cap = restart_base, restart_cap
        self.loops: dict[str, LoopState] = {}
        # Fatal: the loop that could not be restarted, once one could not.
        self.fatal: str | None = None

    def add(
        self,
        name: str,
        run: LoopFn,
        *,
        stall_after: float | None = None,
        ends_process: bool = False,
        restart_after: float = 0.0,
        graceful: bool = False,
    ) -> None:
        """add registers a loop to run under `run`: stalled past stall_after seconds without a tick (None: never),
        ending the process when it ends by itself (ends_process), restarted no sooner than restart_after. On stop
        every loop is cancelled at once (a beat or a measurement under way is cut short, so a SIGTERM turns into a
        goodbye at once), except a graceful one, which is left to finish by itself."""
        if name in self.loops:
            raise ValueError(f"loop {name!r} is already supervised")
        self.loops[name] = LoopState(
            name, run, stall_after, ends_process, restart_after, graceful, Progress(self._clock)
        )

    def restarts(self) -> dict[str, int]:
        """restarts returns loop name → how many times it was restarted after raising."""
        return {name: loop.restarts for name, loop in self.loops.items()}

    def problems(self) -> dict[str, str]:
        """problems returns loop name → why it is unhealthy, for every loop that is dead or stalled."""
        now = self._clock()
        found: dict[str, str] = {}
        for name, loop in self.loops.items():
            if loop.down:
                found[name] = loop.down
            elif loop.stall_after is not None and now - loop.progress.last > loop.stall_after + loop.progress.within:
                bound = loop.stall_after + loop.progress.within
                found[name] = f"no progress for {now - loop.progress.last:.0f}s (bound {bound:g}s)"
        return found

    async def run(self, stop: asyncio.Event) -> int:
        """run runs every loop until stop is set (or a loop that ends the process ends); returns the exit code:
        0, or EXIT_LOOP_FAILED when a loop could not be restarted."""
        tasks = {name: asyncio.create_task(self._keep(loop, stop), name=name) for name, loop in self.loops.items()}
        ended = asyncio.ensure_future(asyncio.wait(tasks.values()))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            for name, task in tasks.items():
                if not self.loops[name].graceful:
                    task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            for waiter in (ended, stopped):
                waiter.cancel()
            await asyncio.gather(ended, stopped, return_exceptions=True)
        return EXIT_LOOP_FAILED if self.fatal is not None else 0

    async def _keep(self, loop: LoopState, stop: asyncio.Event) -> None:
        while not stop.is_set():
            loop.progress.tick()  # a (re)started loop gets its whole stall bound
            try:
                await loop.run(stop, loop.progress)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if stop.is_set():
                    log.warning("loop %s raised while stopping: %r", loop.name, exc)
                    return
                delay = self._failed(loop, exc)
                if delay is None:
                    stop.set()
                    return
                await self._wait(stop, delay)
                loop.down = ""
                continue
            if not stop.is_set() and loop.ends_process:
                log.info("loop %s ended: stopping the process", loop.name)
                stop.set()
            elif not stop.is_set():
                log.error("loop %s ended by itself", loop.name)
                loop.down = "ended"
            return

    def _failed(self, loop: LoopState, exc: Exception) -> float | None:
        """_failed logs and counts a failure; returns the delay before the restart, or None when giving up."""
        now = self._clock()
        loop.failures = [at for at in loop.failures if now - at <= self.window] + [now]
        if len(loop.failures) >= self.max_failures:
            log.critical(
                "loop %s failed %d times within %gs; giving up: the process exits",
                loop.name,
                len(loop.failures),
                self.window,
                exc_info=exc,
            )
            loop.down = f"failed {len(loop.failures)} times within {self.window:g}s: {exc!r}"
            self.fatal = loop.name
            return None
        delay = max(loop.restart_after, min(self.restart_cap, self.restart_base * 2.0 ** (len(loop.failures) - 1)))
        log.error("loop %s raised; restarting it in %gs", loop.name, delay, exc_info=exc)
        loop.restarts += 1
        loop.down = f"restarting in {delay:g}s after {exc!r}"
        if self._on_restart is not None:
            self._on_restart(loop.name)
        return delay

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """_wait sleeps seconds through the injected sleep, or less when stop is set meanwhile."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._sleep(seconds))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
