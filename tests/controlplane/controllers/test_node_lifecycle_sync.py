"""One lifecycle pass at a time against the real SQLite store: every Ready/NotReady/Draining transition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import pytest

from controlplane.api import Node, NodeState
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.node_lifecycle import NodeLifecycleController
from controlplane.store.base import NodeChanges, ProjectedChanges, Store
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import conditions_of, put_status

T = TypeVar("T")

FACTS = {
    "capacity": {"cpu": "4000m", "memory": "8Gi", "disk": "100Gi"},
    "allocatable": {"cpu": "4000m", "memory": "8Gi"},
    "available": {"memory": "4Gi", "disk": "50Gi"},
    "network": {"mode": "Direct", "tailnet": {"online": True}},
}


@pytest.fixture
def lifecycle(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, config: ControllerConfig
) -> NodeLifecycleController:
    return NodeLifecycleController(store=memory_store, leases=leases, now=clock.now, config=config)


async def state_of(store: Store, name: str = "edge1") -> tuple[NodeState | None, str, str | None, datetime | None]:
    node = await store.get_node(name)
    status, reason, since = conditions_of(node)["Ready"]
    return node.status.state, status, reason, since


async def test_never_beat_is_not_ready_with_ready_unknown(
    memory_store: Store, lifecycle: NodeLifecycleController, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    assert await lifecycle.sync_once() == 1
    t0 = clock.now()
    assert await state_of(memory_store) == (NodeState.NOT_READY, "Unknown", "NodeStatusNeverUpdated", t0)
    clock.step(600)
    assert await lifecycle.sync_once() == 0, "nothing changed: no write"
    assert await state_of(memory_store) == (NodeState.NOT_READY, "Unknown", "NodeStatusNeverUpdated", t0)


async def test_beat_ready_then_silent_past_grace_not_ready(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    await lifecycle.sync_once()
    clock.step(5)
    leases.renew("edge1", clock.now())
    beat_at = clock.now()
    assert await lifecycle.sync_once() == 1
    assert await state_of(memory_store) == (NodeState.READY, "True", "AgentReady", beat_at)
    clock.step(40)  # exactly at grace: still Ready, and nothing written
    assert await lifecycle.sync_once() == 0
    assert await state_of(memory_store) == (NodeState.READY, "True", "AgentReady", beat_at)
    clock.step(1)
    assert await lifecycle.sync_once() == 1
    node = await memory_store.get_node("edge1")
    assert await state_of(memory_store) == (NodeState.NOT_READY, "False", "HeartbeatTimeout", clock.now())
    ready = next(c for c in node.status.conditions or () if c.type == "Ready")
    assert ready.message == "no heartbeat within the grace period of 40s"
    assert node.metadata.updated_at == clock.now()
    clock.step(3)
    leases.renew("edge1", clock.now())
    await lifecycle.sync_once()
    assert await state_of(memory_store) == (NodeState.READY, "True", "AgentReady", clock.now())


async def test_going_away_is_not_ready_at_once(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await lifecycle.sync_once()
    clock.step(1)
    leases.release("edge1", clock.now())
    await lifecycle.sync_once()
    assert await state_of(memory_store) == (NodeState.NOT_READY, "False", "AgentShutdown", clock.now())


async def test_restart_no_not_ready_before_a_full_grace(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, config: ControllerConfig
) -> None:
    await memory_store.create_node(make_node("edge1"))
    await memory_store.create_node(make_node("edge2"))
    leases.renew("edge1", clock.now())
    leases.renew("edge2", clock.now())
    first = NodeLifecycleController(store=memory_store, leases=leases, now=clock.now, config=config)
    await first.sync_once()
    ready_since = clock.now()
    await leases.flush(memory_store)
    # The control plane is down for 5 minutes; edge1's agent went away meanwhile, edge2 beats on after.
    clock.step(300)
    restarted = LeaseTable()
    await restarted.load(memory_store)
    second = NodeLifecycleController(store=memory_store, leases=restarted, now=clock.now, config=config)
    assert await second.sync_once() == 0
    clock.step(20)
    restarted.renew("edge2", clock.now())
    clock.step(20)  # a full grace since the restart: still held
    assert await second.sync_once() == 0
    assert await state_of(memory_store, "edge1") == (NodeState.READY, "True", "AgentReady", ready_since)
    clock.step(0.5)
    assert await second.sync_once() == 1
    assert await state_of(memory_store, "edge1") == (NodeState.NOT_READY, "False", "HeartbeatTimeout", clock.now())
    assert await state_of(memory_store, "edge2") == (NodeState.READY, "True", "AgentReady", ready_since)


async def test_a_stalled_controller_holds_ready_nodes_for_a_grace_like_a_restart(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    assert lifecycle.resume(clock.now()) is False
    await lifecycle.sync_once()
    ready_since = clock.now()
    clock.step(10)  # one bound (a quarter of the 40 s grace): an ordinary late pass
    assert lifecycle.resume(clock.now()) is False
    clock.step(30)  # frozen 30 s (SIGSTOP); the lease is now 40 s old and the agent is still backing off
    assert lifecycle.resume(clock.now()) is True
    for _ in range(70):  # thawed: the loop passes each second again, and no beat arrives (agents back off)
        assert await lifecycle.sync_once() == 0
        clock.step(1)
        assert lifecycle.resume(clock.now()) is False
    assert await lifecycle.sync_once() == 0  # the stall's 30 s and a grace since the thaw: still held
    assert await state_of(memory_store) == (NodeState.READY, "True", "AgentReady", ready_since)
    clock.step(0.5)  # past them, still silent: now it is the node's silence
    assert lifecycle.resume(clock.now()) is False
    assert await lifecycle.sync_once() == 1
    assert await state_of(memory_store) == (NodeState.NOT_READY, "False", "HeartbeatTimeout", clock.now())


async def test_restart_never_turns_a_stale_node_ready(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, config: ControllerConfig
) -> None:
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await leases.flush(memory_store)
    clock.step(100)
    first = NodeLifecycleController(store=memory_store, leases=leases, now=clock.now, config=config)
    await first.sync_once()
    assert (await state_of(memory_store))[:3] == (NodeState.NOT_READY, "False", "HeartbeatTimeout")
    second = NodeLifecycleController(store=memory_store, leases=leases, now=clock.now, config=config)
    assert await second.sync_once() == 0
    assert (await state_of(memory_store))[:3] == (NodeState.NOT_READY, "False", "HeartbeatTimeout")


async def test_stored_last_heartbeat_stands_in_for_a_lease_never_flushed(
    memory_store: Store, lifecycle: NodeLifecycleController, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1", status={"lastHeartbeat": "2026-11-24T11:59:50Z"}))
    await lifecycle.sync_once()
    assert (await state_of(memory_store))[:3] == (NodeState.READY, "True", "AgentReady")
    clock.step(40)  # stale for 30 s already, but held: this instance first saw it 40 s ago
    await lifecycle.sync_once()
    assert (await state_of(memory_store))[:3] == (NodeState.READY, "True", "AgentReady")
    clock.step(0.5)
    await lifecycle.sync_once()
    assert (await state_of(memory_store))[:3] == (NodeState.NOT_READY, "False", "HeartbeatTimeout")


async def test_draining_is_kept_across_beats_and_passes(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1", unschedulable=True, status={"state": "Draining"}))
    for _ in range(3):
        leases.renew("edge1", clock.now())
        await lifecycle.sync_once()
        assert (await state_of(memory_store))[:3] == (NodeState.DRAINING, "True", "AgentReady")
        clock.step(10)
    clock.step(100)
    await lifecycle.sync_once()
    assert (await state_of(memory_store))[:3] == (NodeState.DRAINING, "False", "HeartbeatTimeout")


async def test_blocking_agent_condition_holds_a_live_node_not_ready(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await put_status(memory_store, "edge1", conditions=[{"type": "NetworkUnavailable", "status": "True"}])
    assert await lifecycle.sync_once() == 1
    assert (await state_of(memory_store))[:3] == (NodeState.NOT_READY, "False", "BlockingCondition")
    await put_status(
        memory_store,
        "edge1",
        conditions=[{"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"}],
    )
    clock.step(5)  # the next resync reads the new facts
    leases.renew("edge1", clock.now())
    assert await lifecycle.sync_once() == 1
    node = await memory_store.get_node("edge1")
    assert node.status.state == NodeState.READY
    assert conditions_of(node)["NetworkUnavailable"] == ("False", "RouteCreated", None), "agent's own, untouched"


async def test_pressure_path_and_tailnet_conditions_move_transition_time_only_on_status_change(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await put_status(memory_store, "edge1", **FACTS)
    await lifecycle.sync_once()
    t0 = clock.now()
    assert conditions_of(await memory_store.get_node("edge1")) == {
        "Ready": ("True", "AgentReady", t0),
        "MemoryPressure": ("False", "SufficientMemory", t0),
        "DiskPressure": ("False", "SufficientDisk", t0),
        "PathRelayed": ("False", "PathDirect", t0),
        "TailnetOffline": ("False", "TailnetOnline", t0),
    }

    clock.step(10)
    leases.renew("edge1", clock.now())
    t1 = clock.now()
    await put_status(
        memory_store,
        "edge1",
        available={"memory": "512Mi", "disk": "10Gi"},
        network={"mode": "DERP", "tailnet": {"online": False}},
    )
    assert await lifecycle.sync_once() == 1
    node = await memory_store.get_node("edge1")
    assert node.status.state == NodeState.READY, "pressure and an offline hint never make a node NotReady"
    assert conditions_of(node) == {
        "Ready": ("True", "AgentReady", t0),
        "MemoryPressure": ("True", "MemoryPressure", t1),
        "DiskPressure": ("True", "DiskPressure", t1),
        "PathRelayed": ("True", "PathRelayed", t1),
        "TailnetOffline": ("True", "TailnetOffline", t1),
    }

    clock.step(10)
    leases.renew("edge1", clock.now())
    await put_status(memory_store, "edge1", available={"memory": "400Mi", "disk": "9Gi"}, network={"mode": "DERP"})
    t2 = clock.now()
    assert await lifecycle.sync_once() == 1, "the tailnet view went missing: Unknown"
    assert conditions_of(await memory_store.get_node("edge1")) == {
        "Ready": ("True", "AgentReady", t0),
        "MemoryPressure": ("True", "MemoryPressure", t1),
        "DiskPressure": ("True", "DiskPressure", t1),
        "PathRelayed": ("True", "PathRelayed", t1),
        "TailnetOffline": ("Unknown", "FactsUnknown", t2),
    }

    clock.step(10)
    leases.renew("edge1", clock.now())
    await put_status(memory_store, "edge1", network={"mode": "Direct"})
    t3 = clock.now()
    await lifecycle.sync_once()
    assert conditions_of(await memory_store.get_node("edge1"))["PathRelayed"] == ("False", "PathDirect", t3)


async def test_deleted_nodes_are_forgotten(
    memory_store: Store, lifecycle: NodeLifecycleController, leases: LeaseTable, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await lifecycle.sync_once()
    await memory_store.delete_node("edge1")
    leases.forget("edge1")  # as the server's DELETE does
    clock.step(60)  # stale by now, but the write finds the node gone
    assert await lifecycle.sync_once() == 0
    await memory_store.create_node(make_node("edge1"))
    clock.step(5)
    assert await lifecycle.sync_once() == 1
    assert (await state_of(memory_store))[:3] == (NodeState.NOT_READY, "Unknown", "NodeStatusNeverUpdated")


class ListCounter:
    """ListCounter is the store, counting the reads of the Nodes (list_nodes_changed or project_nodes_changed)."""

    def __init__(self, store: Store) -> None:
        self.store, self.lists = store, 0

    async def list_nodes_changed(self, known: Mapping[str, int]) -> NodeChanges:
        self.lists += 1
        return await self.store.list_nodes_changed(known)

    async def project_nodes_changed(
        self, known: Mapping[str, int], project: Callable[[Node], T]
    ) -> ProjectedChanges[T]:
        self.lists += 1
        return await self.store.project_nodes_changed(known, project)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_between_resyncs_leases_are_judged_every_pass_and_facts_wait_for_the_resync(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, config: ControllerConfig
) -> None:
    counter = ListCounter(memory_store)
    lifecycle = NodeLifecycleController(store=cast(Store, counter), leases=leases, now=clock.now, config=config)
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await lifecycle.sync_once()
    clock.step(1)
    await put_status(memory_store, "edge1", network={"mode": "DERP"})
    assert await lifecycle.sync_once() == 0, "facts are read at the next resync"
    clock.step(4)  # resync period (5 s) since the last list
    assert await lifecycle.sync_once() == 1
    assert conditions_of(await memory_store.get_node("edge1"))["PathRelayed"][:2] == ("True", "PathRelayed")
    assert counter.lists == 2
    # The last beat was 5 s ago. Relist at 38 s; the pass at 41 s judges the cached node without a list.
    clock.step(33)
    assert await lifecycle.sync_once() == 0
    clock.step(3)
    assert await lifecycle.sync_once() == 1
    assert counter.lists == 3
    assert (await state_of(memory_store))[:3] == (NodeState.NOT_READY, "False", "HeartbeatTimeout")


async def test_a_write_between_resyncs_keeps_a_drain_the_cache_has_not_seen(
    memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    slow = NodeLifecycleController(
        store=memory_store, leases=leases, now=clock.now, config=ControllerConfig(lifecycle_resync=timedelta(hours=1))
    )
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    await slow.sync_once()
    await put_status(memory_store, "edge1", state="Draining")
    clock.step(41)
    assert await slow.sync_once() == 1, "the cached Ready node timed out"
    assert (await state_of(memory_store))[:3] == (NodeState.DRAINING, "False", "HeartbeatTimeout")


async def test_a_going_away_beat_wakes_the_run_loop_at_once(
    memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    # An hour's period: the second pass can only be the one the goodbye (LeaseTable.release) starts.
    config = ControllerConfig(lifecycle_period=timedelta(hours=1))
    lifecycle = NodeLifecycleController(store=memory_store, leases=leases, now=clock.now, config=config)
    await memory_store.create_node(make_node("edge1"))
    leases.renew("edge1", clock.now())
    stop, passed = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(lifecycle.run(stop, on_pass=passed.set))
    try:
        await asyncio.wait_for(passed.wait(), timeout=30)
        assert (await state_of(memory_store))[:3] == (NodeState.READY, "True", "AgentReady")
        passed.clear()
        clock.step(1)
        leases.release("edge1", clock.now())
        await asyncio.wait_for(passed.wait(), timeout=30)
        assert await state_of(memory_store) == (NodeState.NOT_READY, "False", "AgentShutdown", clock.now())
    finally:
        stop.set()
        await runner
