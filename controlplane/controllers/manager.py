"""The controllers' composition root: builds every controller from one config and runs their loops together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable

from ._loop import Gate
from .config import ControllerConfig
from .draining import DrainingController
from .node_lifecycle import NodeLifecycleController
from .rescheduler import Rescheduler
from .scheduler import Scheduler

__all__ = ["ControllerConfig", "Controllers", "build_controllers", "run_controllers"]


@dataclass(frozen=True, slots=True)
class Controllers:
    """Controllers is the set of controllers of one control-plane process."""

    lifecycle: NodeLifecycleController
    draining: DrainingController
    scheduler: Scheduler
    rescheduler: Rescheduler


def build_controllers(
    *, store: Store, leases: LeaseTable, now: Callable[[], datetime], config: ControllerConfig
) -> Controllers:
    """build_controllers makes every controller over the same store, clock and config."""
    return Controllers(
        lifecycle=NodeLifecycleController(store=store, leases=leases, now=now, config=config),
        draining=DrainingController(store=store, now=now, config=config),
        scheduler=Scheduler(store=store, now=now, config=config),
        rescheduler=Rescheduler(store=store, now=now, config=config),
    )


async def run_controllers(
    *,
    store: Store,
    leases: LeaseTable,
    now: Callable[[], datetime],
    config: ControllerConfig,
    stop: asyncio.Event,
    is_leader: Gate | None = None,
) -> None:
    """run_controllers runs every controller's loop until stop is set.

    is_leader, when given, is awaited before each pass of each controller; a pass is skipped while it
    answers False, so several replicas can share a store with one of them acting.
    """
    controllers = build_controllers(store=store, leases=leases, now=now, config=config)
    async with asyncio.TaskGroup() as group:
        group.create_task(controllers.lifecycle.run(stop, gate=is_leader))
        group.create_task(controllers.draining.run(stop, gate=is_leader))
        group.create_task(controllers.scheduler.run(stop, gate=is_leader))
        group.create_task(controllers.rescheduler.run(stop, gate=is_leader))
