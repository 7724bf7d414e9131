"""The controllers' composition root: builds every controller from one config and runs their loops together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from controlplane.store.base import Store, StoreError
from controlplane.store.leases import LeaseTable
from controlplane.store.witnesses import WitnessBoard

from ._loop import Gate
from .config import ControllerConfig
from .draining import DrainingController
from .node_lifecycle import Isolation, NodeLifecycleController
from .rescheduler import Rescheduler
from .scheduler import Scheduler

__all__ = [
    "CONTROLLER_NAMES",
    "PASS_BOUND",
    "ControllerConfig",
    "Controllers",
    "ControllersStalled",
    "Leadership",
    "build_controllers",
    "run_controllers",
    "run_when_leading",
]

log = logging.getLogger("controlplane.controllers")


@dataclass(frozen=True, slots=True)
class Controllers:
    """Controllers is the set of controllers of one control-plane process."""

    lifecycle: NodeLifecycleController
    draining: DrainingController
    scheduler: Scheduler
    rescheduler: Rescheduler


def build_controllers(
    *,
    store: Store,
    leases: LeaseTable,
    now: Callable[[], datetime],
    config: ControllerConfig,
    witnesses: WitnessBoard | None = None,
    on_isolation: Callable[[bool], None] | None = None,
) -> Controllers:
    """build_controllers makes every controller over the same store, clock and config; the lifecycle controller's
    isolation judgement is shared with the rescheduler and the draining controller, which hold their moves on it."""
    isolation = Isolation()
    lifecycle = NodeLifecycleController(
        store=store,
        leases=leases,
        now=now,
        config=config,
        witnesses=witnesses,
        isolation=isolation,
        on_isolation=on_isolation,
    )
    return Controllers(
        lifecycle=lifecycle,
        draining=DrainingController(store=store, now=now, config=config, isolation=isolation),
        scheduler=Scheduler(store=store, now=now, config=config),
        rescheduler=Rescheduler(store=store, now=now, config=config, isolation=isolation),
    )


async def run_controllers(
    *,
    store: Store,
    leases: LeaseTable,
    now: Callable[[], datetime],
    config: ControllerConfig,
    stop: asyncio.Event,
    is_leader: Gate | None = None,
    on_pass: Callable[[str], None] | None = None,
    witnesses: WitnessBoard | None = None,
    on_isolation: Callable[[bool], None] | None = None,
) -> None:
    """run_controllers runs every controller's loop until stop is set.

    is_leader, when given, is awaited before each pass of each controller; a pass is skipped while it
    answers False, so several replicas can share a store with one of them acting. on_pass, when given, is
    called with the controller's name (CONTROLLER_NAMES) after each pass it finished.
    """
    controllers = build_controllers(
        store=store, leases=leases, now=now, config=config, witnesses=witnesses, on_isolation=on_isolation
    )

    def passed(name: str) -> Callable[[], None] | None:
        return None if on_pass is None else lambda: on_pass(name)

    async with asyncio.TaskGroup() as group:
        group.create_task(controllers.lifecycle.run(stop, gate=is_leader, on_pass=passed("node-lifecycle")))
        group.create_task(controllers.draining.run(stop, gate=is_leader, on_pass=passed("draining")))
        group.create_task(controllers.scheduler.run(stop, gate=is_leader, on_pass=passed("scheduler")))
        group.create_task(controllers.rescheduler.run(stop, gate=is_leader, on_pass=passed("rescheduler")))


#: The controllers of one term, by the names on_pass reports.
CONTROLLER_NAMES: Final = ("node-lifecycle", "draining", "scheduler", "rescheduler")
#: A leader whose controller has not finished a pass for this long is not leading well: it stops renewing the
#: leader lease and run_when_leading raises (the process root restarts it, another replica may take over).
#: Well above every pass period (5 s at most) and a 20k-Node pass (well under 1 s).
PASS_BOUND: Final = timedelta(seconds=30)


class ControllersStalled(Exception):
    """ControllersStalled is raised by run_when_leading when the leader's controllers died or stopped passing."""


class Leadership:
    """Leadership holds this replica's view of the controllers' leader lease kept in the store.

    `renew` takes or renews the lease; `leading` is True only until ttl after the last successful renewal
    began, so a replica cut off from the store stops acting before another one can take over.
    """

    def __init__(self, *, store: Store, holder: str, ttl: timedelta, now: Callable[[], datetime]) -> None:
        self._store, self.holder, self._ttl, self._now = store, holder, ttl, now
        self._until: datetime | None = None

    def leading(self) -> bool:
        """leading reports whether this replica holds the lease right now."""
        return self._until is not None and self._now() < self._until

    async def renew(self) -> bool:
        """renew takes or renews the lease; a store error counts as not leading (logged)."""
        started = self._now()
        try:
            won = await self._store.try_acquire_leadership(self.holder, self._ttl.total_seconds(), started)
        except StoreError as exc:
            log.warning("leader lease: renewal failed, not leading: %s", exc)
            won = False
        self._until = started + self._ttl if won else None
        return won

    async def gate(self) -> bool:
        """gate is the controllers' is_leader gate."""
        return self.leading()


async def run_when_leading(
    *,
    store: Store,
    leases: LeaseTable,
    now: Callable[[], datetime],
    config: ControllerConfig,
    stop: asyncio.Event,
    leadership: Leadership,
    renew_every: timedelta,
    merge_leases: bool,
    on_change: Callable[[bool], None] | None = None,
    progress: Callable[[], None] | None = None,
    pass_bound: timedelta = PASS_BOUND,
    clock: Callable[[], float] = time.monotonic,
    witnesses: WitnessBoard | None = None,
    on_isolation: Callable[[bool], None] | None = None,
) -> None:
    """run_when_leading renews the leader lease every renew_every and runs the controllers while it is held.

    Each term of leadership gets freshly built controllers, so a newly elected leader applies the restart
    rule (no NotReady before a full grace since it began leading). With merge_leases (replicas sharing a
    store), the leader also reads the leases the other replicas flushed, at the start of a term and at each
    renewal, newest winning; a beat another replica received reaches the leader within one flush period
    plus renew_every, well inside the grace.

    Before each renewal a leader checks its controllers: when their task ended, or one of them has not finished
    a pass within pass_bound (on `clock`, monotonic seconds), it does not renew but raises ControllersStalled
    naming it, so the lease lapses within its TTL and the process root restarts this loop. progress, when given,
    is called after every renewal that found the controllers well (the process root's stall check).
    """
    longest = max(config.lifecycle_period, config.draining_period, config.scheduler_period, config.rescheduler_period)
    if pass_bound <= longest:
        raise ValueError(f"pass_bound ({pass_bound}) must exceed the longest controller period ({longest})")
    term: tuple[asyncio.Event, asyncio.Task[None]] | None = None
    passes: dict[str, float] = {}

    def passed(name: str) -> None:
        passes[name] = clock()

    def check_term() -> None:
        if term is None:
            return
        task = term[1]
        if task.done():
            failure = None if task.cancelled() else task.exception()
            raise ControllersStalled(f"the controllers ended: {failure!r}") from failure
        late = {name: clock() - at for name, at in passes.items() if clock() - at > pass_bound.total_seconds()}
        if late:
            said = ", ".join(f"{name} for {age:.1f}s" for name, age in sorted(late.items()))
            raise ControllersStalled(f"no controller pass finished: {said} (bound {pass_bound.total_seconds():g}s)")

    def stepped_down() -> None:
        # A replica that does not lead asks nobody for witnesses and judges no isolation.
        if witnesses is not None:
            witnesses.want(())
        if on_isolation is not None:
            on_isolation(False)

    async def end_term() -> None:
        nonlocal term
        if term is not None:
            term[0].set()
            await asyncio.gather(term[1], return_exceptions=True)
            term = None

    try:
        while not stop.is_set():
            check_term()
            leading = await leadership.renew()
            if leading and merge_leases:
                try:
                    await leases.load(store)
                except StoreError as exc:
                    log.warning("leader: reading the other replicas' leases failed: %s", exc)
            if leading and term is None:
                log.info("leader: %s now runs the controllers", leadership.holder)
                term_stop = asyncio.Event()
                started = clock()
                passes = dict.fromkeys(CONTROLLER_NAMES, started)
                task = asyncio.create_task(
                    run_controllers(
                        store=store,
                        leases=leases,
                        now=now,
                        config=config,
                        stop=term_stop,
                        is_leader=leadership.gate,
                        on_pass=passed,
                        witnesses=witnesses,
                        on_isolation=on_isolation,
                    ),
                    name="controllers",
                )
                term = (term_stop, task)
                if on_change is not None:
                    on_change(True)
            elif not leading and term is not None:
                log.warning("leader: %s lost the leader lease; controllers stopped", leadership.holder)
                await end_term()
                stepped_down()
                if on_change is not None:
                    on_change(False)
            if progress is not None:
                progress()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=renew_every.total_seconds())
    except ControllersStalled:
        if on_change is not None:
            on_change(False)
        raise
    finally:
        await end_term()
        stepped_down()
