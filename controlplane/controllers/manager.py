"""The controllers' composition root: builds every controller from one config and runs their loops together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from controlplane.store.base import Store, StoreError
from controlplane.store.leases import LeaseTable
from controlplane.store.witnesses import WitnessBoard

from ._loop import Gate
from .config import ControllerConfig
from .draining import DrainingController
from .node_lifecycle import Isolation, NodeLifecycleController
from .rescheduler import Rescheduler
from .scheduler import Scheduler

__all__ = ["ControllerConfig", "Controllers", "Leadership", "build_controllers", "run_controllers", "run_when_leading"]

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
    witnesses: WitnessBoard | None = None,
    on_isolation: Callable[[bool], None] | None = None,
) -> None:
    """run_controllers runs every controller's loop until stop is set.

    is_leader, when given, is awaited before each pass of each controller; a pass is skipped while it
    answers False, so several replicas can share a store with one of them acting.
    """
    controllers = build_controllers(
        store=store, leases=leases, now=now, config=config, witnesses=witnesses, on_isolation=on_isolation
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(controllers.lifecycle.run(stop, gate=is_leader))
        group.create_task(controllers.draining.run(stop, gate=is_leader))
        group.create_task(controllers.scheduler.run(stop, gate=is_leader))
        group.create_task(controllers.rescheduler.run(stop, gate=is_leader))


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
    witnesses: WitnessBoard | None = None,
    on_isolation: Callable[[bool], None] | None = None,
) -> None:
    """run_when_leading renews the leader lease every renew_every and runs the controllers while it is held.

    Each term of leadership gets freshly built controllers, so a newly elected leader applies the restart
    rule (no NotReady before a full grace since it began leading). With merge_leases (replicas sharing a
    store), the leader also reads the leases the other replicas flushed, at the start of a term and at each
    renewal, newest winning; a beat another replica received reaches the leader within one flush period
    plus renew_every, well inside the grace.
    """
    term: tuple[asyncio.Event, asyncio.Task[None]] | None = None

    async def end_term() -> None:
        nonlocal term
        if term is not None:
            term[0].set()
            await asyncio.gather(term[1], return_exceptions=True)
            term = None

    try:
        while not stop.is_set():
            leading = await leadership.renew()
            if leading and merge_leases:
                try:
                    await leases.load(store)
                except StoreError as exc:
                    log.warning("leader: reading the other replicas' leases failed: %s", exc)
            if leading and term is None:
                log.info("leader: %s now runs the controllers", leadership.holder)
                term_stop = asyncio.Event()
                task = asyncio.create_task(
                    run_controllers(
                        store=store,
                        leases=leases,
                        now=now,
                        config=config,
                        stop=term_stop,
                        is_leader=leadership.gate,
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
                if witnesses is not None:
                    witnesses.want(())  # a replica that does not lead asks nobody for witnesses
                if on_isolation is not None:
                    on_isolation(False)
                if on_change is not None:
                    on_change(False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=renew_every.total_seconds())
    finally:
        await end_term()
