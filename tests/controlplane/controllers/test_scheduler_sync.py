"""Scheduling passes against the real SQLite store: bind, no fit with its message, least loaded, exclusions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.api import Condition, ConditionStatus, ProjectPhase
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.scheduler import Scheduler
from controlplane.store.base import Store
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import make_project

READY: dict[str, Any] = {"state": "Ready", "allocatable": {"cpu": "4000m", "memory": "8Gi"}}


@pytest.fixture
def scheduler(memory_store: Store, clock: FakeClock, config: ControllerConfig) -> Scheduler:
    return Scheduler(store=memory_store, now=clock.now, config=config)


async def placed(store: Store) -> dict[str, tuple[str, str | None, Condition | None]]:
    """placed maps each project to (phase, nodeRef, Scheduled condition)."""
    result = {}
    for project in await store.list_projects():
        scheduled = next((c for c in project.status.conditions or () if c.type == "Scheduled"), None)
        result[project.name] = (project.status.phase.value, project.status.node_ref, scheduled)
    return result


def scheduled(status: str, reason: str, message: str, at: datetime) -> Condition:
    return Condition(
        type="Scheduled",
        status=ConditionStatus(status),
        reason=reason,
        message=message,
        last_heartbeat_time=at,
        last_transition_time=at,
    )


async def test_binds_pending_projects_least_loaded_first(
    memory_store: Store, scheduler: Scheduler, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("a", status=READY))
    await memory_store.create_node(make_node("b", status=READY))
    await memory_store.create_project(make_project("old", cpu="3", phase="Running", nodeRef="a"))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i, name in enumerate(["p3", "p1", "p2"]):
        await memory_store.create_project(make_project(name, cpu="1", memory="1Gi", created=base + timedelta(i)))
    assert await scheduler.sync_once() == 3
    now = clock.now()
    got = await placed(memory_store)
    assert got == {
        "old": ("Running", "a", None),
        # First come first served: p3 (b: 25%), p1 (b: 50% vs a: 100%), p2 (a: 100% vs b: 75%) → b, b, b.
        "p3": ("Scheduled", "b", scheduled("True", "Scheduled", "bound to node b", now)),
        "p1": ("Scheduled", "b", scheduled("True", "Scheduled", "bound to node b", now)),
        "p2": ("Scheduled", "b", scheduled("True", "Scheduled", "bound to node b", now)),
    }
    assert (await memory_store.get_project("p1")).metadata.updated_at == now
    assert await scheduler.sync_once() == 0


async def test_in_pass_accounting_spreads_and_stops_at_capacity(memory_store: Store, scheduler: Scheduler) -> None:
    await memory_store.create_node(make_node("a", status=READY))
    await memory_store.create_node(make_node("b", status=READY))
    for i in range(9):
        await memory_store.create_project(make_project(f"p{i}", cpu="1"))
    assert await scheduler.sync_once() == 8
    got = await placed(memory_store)
    on = [ref for _, ref, _ in got.values()]
    assert on.count("a") == 4 and on.count("b") == 4
    phase, ref, condition = got["p8"]
    assert (phase, ref) == ("Pending", None)
    assert condition is not None and condition.message == "0/2 nodes are available: 2 insufficient cpu"


async def test_no_fit_stays_pending_with_a_kubectl_like_message_written_once(
    memory_store: Store, scheduler: Scheduler, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("cordoned", unschedulable=True, status=READY))
    await memory_store.create_node(make_node("dead", status={**READY, "state": "NotReady"}))
    await memory_store.create_node(make_node("draining", unschedulable=True, status={**READY, "state": "Draining"}))
    await memory_store.create_node(
        make_node("pressed", status={**READY, "conditions": [{"type": "MemoryPressure", "status": "True"}]})
    )
    await memory_store.create_node(make_node("small", status={**READY, "allocatable": {"cpu": "1"}}))
    await memory_store.create_project(make_project("big", cpu="2", memory="1Gi"))
    assert await scheduler.sync_once() == 0
    t0 = clock.now()
    message = (
        "0/5 nodes are available: 1 NotReady, 1 Draining, 1 unschedulable, 1 MemoryPressure, "
        "1 insufficient cpu, 1 insufficient memory"
    )
    expected = ("Pending", None, scheduled("False", "Unschedulable", message, t0))
    assert (await placed(memory_store))["big"] == expected
    before = await memory_store.get_project("big")
    clock.step(5)
    await scheduler.sync_once()
    assert await memory_store.get_project("big") == before, "an unchanged message is not rewritten"

    # Room appears: the next retry binds, and Scheduled turns True with a new transition time.
    await memory_store.create_node(make_node("roomy", status=READY))
    clock.step(4.9)
    assert await scheduler.sync_once() == 0, "backing off: nothing new is Pending"
    clock.step(0.1)
    assert await scheduler.sync_once() == 1
    assert (await placed(memory_store))["big"] == (
        "Scheduled",
        "roomy",
        scheduled("True", "Scheduled", "bound to node roomy", clock.now()),
    )


async def test_terminating_projects_still_hold_their_node(memory_store: Store, scheduler: Scheduler) -> None:
    await memory_store.create_node(make_node("a", status=READY))
    await memory_store.create_project(make_project("leaving", cpu="4", phase="Terminating", nodeRef="a"))
    await memory_store.create_project(make_project("new", cpu="1"))
    assert await scheduler.sync_once() == 0
    assert (await placed(memory_store))["new"][:2] == ("Pending", None)


async def test_no_nodes_at_all(memory_store: Store, scheduler: Scheduler) -> None:
    await memory_store.create_project(make_project("p"))
    await scheduler.sync_once()
    condition = (await placed(memory_store))["p"][2]
    assert condition is not None and (condition.reason, condition.message) == (
        "Unschedulable",
        "0/0 nodes are available",
    )


async def test_only_pending_projects_are_touched(memory_store: Store, scheduler: Scheduler) -> None:
    await memory_store.create_node(make_node("a", status=READY))
    for phase in (ProjectPhase.FAILED, ProjectPhase.TERMINATED):
        await memory_store.create_project(make_project(phase.value.lower(), phase=phase.value))
    assert await scheduler.sync_once() == 0
    got = await placed(memory_store)
    assert got == {"failed": ("Failed", None, None), "terminated": ("Terminated", None, None)}


async def test_first_come_first_served_when_room_is_short(
    memory_store: Store, scheduler: Scheduler, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("a", status=READY))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    await memory_store.create_project(make_project("aaa-newer", cpu="3", created=base + timedelta(seconds=1)))
    await memory_store.create_project(make_project("zzz-older", cpu="3", created=base))
    assert await scheduler.sync_once() == 1
    got = await placed(memory_store)
    assert (got["zzz-older"][:2], got["aaa-newer"][:2]) == (("Scheduled", "a"), ("Pending", None))
    condition = got["aaa-newer"][2]
    assert condition == scheduled("False", "Unschedulable", "0/1 nodes are available: 1 insufficient cpu", clock.now())


async def test_a_new_pending_project_ends_the_backoff(
    memory_store: Store, scheduler: Scheduler, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("a", status=READY))
    await memory_store.create_project(make_project("huge", cpu="64"))
    assert await scheduler.sync_once() == 0
    clock.step(1)
    await memory_store.create_project(make_project("small", cpu="1"))
    assert await scheduler.sync_once() == 1
    assert (await placed(memory_store))["small"][:2] == ("Scheduled", "a")
