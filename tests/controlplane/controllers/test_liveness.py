"""Liveness with witnesses: HeartbeatTimeout, ControlLinkDown and ControlPlaneIsolated, and what the rescheduler and
the draining controller do under each; one lifecycle pass at a time on the fake clock against the real store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.api import NetworkMode, Node, NodeState, ProjectPhase, WitnessReport
from controlplane.controllers import rescheduler as rs
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.draining import DrainingController
from controlplane.controllers.node_lifecycle import (
    Isolation,
    NodeLifecycleController,
    isolation_window,
    valid_witness,
)
from controlplane.controllers.rescheduler import Rescheduler
from controlplane.store.base import Store
from controlplane.store.leases import Lease, LeaseTable
from controlplane.store.witnesses import Witness, WitnessBoard
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import make_project

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=40)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the pure rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("beats", "total", "expected"),
    [
        pytest.param([0, 1, 2], 4, ["a", "b", "c"], id="three-of-four-together"),
        pytest.param([0, 1], 4, [], id="half-is-not-more-than-half"),
        pytest.param([0, 1], 2, [], id="fewer-than-three-nodes"),
        pytest.param([0, 30, 80], 4, [], id="spread-over-more-than-a-grace"),
        pytest.param([0, 40, 41], 5, [], id="only-two-in-any-window"),
        pytest.param([0, 20, 40], 4, ["a", "b", "c"], id="exactly-one-grace-apart"),
        pytest.param([0, 40, 40.5], 4, [], id="a-little-more-than-one-grace-apart"),
    ],
)
def test_isolation_window(beats: list[float], total: int, expected: list[str]) -> None:
    silences = [(at(beat), name) for beat, name in zip(beats, "abc", strict=False)]
    assert isolation_window(silences, total, grace=GRACE, fraction=0.5, min_nodes=3) == expected


def test_isolation_window_picks_the_crowded_window_not_an_old_death() -> None:
    silences = [(at(-3600), "dead"), (at(0), "a"), (at(1), "b"), (at(2), "c")]
    assert isolation_window(silences, 5, grace=GRACE, fraction=0.5, min_nodes=3) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("interval", "grace", "after"),
    [(10, 40, 20), (2, 6, 2.5), (10, 20, 12.5), (10, 10, 10)],
    ids=["defaults", "lab", "short-grace", "grace-is-one-interval"],
)
def test_witness_after(interval: float, grace: float, after: float) -> None:
    config = ControllerConfig(heartbeat_interval=timedelta(seconds=interval), grace=timedelta(seconds=grace))
    assert config.witness_after == timedelta(seconds=after)


@pytest.mark.parametrize(
    ("witnessed", "now", "counts"),
    [
        pytest.param(10, 20, True, id="after-the-last-beat-within-grace"),
        pytest.param(0, 20, False, id="at-the-last-beat-vouches-for-nothing-new"),
        pytest.param(-5, 20, False, id="before-the-last-beat"),
        pytest.param(10, 50, True, id="exactly-grace-old"),
        pytest.param(10, 50.5, False, id="older-than-grace"),
    ],
)
def test_valid_witness(witnessed: float, now: float, counts: bool) -> None:
    witness = Witness("edge2", at(witnessed), NetworkMode.DIRECT, 1.0)
    assert (valid_witness(witness, Lease(at(0)), at(now), GRACE) is witness) is counts


# --- the lifecycle controller ---------------------------------------------------------------------------------


@pytest.fixture
def board() -> WitnessBoard:
    return WitnessBoard()


@pytest.fixture
def lifecycle(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, config: ControllerConfig, board: WitnessBoard
) -> NodeLifecycleController:
    return NodeLifecycleController(store=memory_store, leases=leases, now=clock.now, config=config, witnesses=board)


async def ready_of(store: Store, name: str) -> tuple[NodeState | None, str | None, str | None]:
    node = await store.get_node(name)
    ready = next(c for c in node.status.conditions or () if c.type == "Ready")
    return node.status.state, ready.reason, ready.message


async def fleet(store: Store, leases: LeaseTable, clock: FakeClock, *names: str) -> None:
    for name in names:
        await store.create_node(make_node(name))
        leases.renew(name, clock.now())


def witness(board: WitnessBoard, by: str, name: str, when: datetime, mode: NetworkMode = NetworkMode.DIRECT) -> None:
    board.record(by, [WitnessReport(name=name, at=when, mode=mode, latency_ms=1.25)], when)


async def test_silent_and_unwitnessed_is_heartbeat_timeout(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, lifecycle: NodeLifecycleController
) -> None:
    await fleet(memory_store, leases, clock, "edge1", "edge2", "edge3", "edge4")
    await lifecycle.sync_once()
    clock.step(41)
    for name in ("edge2", "edge3", "edge4"):
        leases.renew(name, clock.now())
    await lifecycle.sync_once()
    state, reason, message = await ready_of(memory_store, "edge1")
    assert (state, reason) == (NodeState.NOT_READY, "HeartbeatTimeout")
    assert message == "no heartbeat within the grace period of 40s"
    assert not lifecycle.isolation.isolated


async def test_a_fellow_agent_reaching_it_makes_it_control_link_down_naming_the_witness(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, lifecycle: NodeLifecycleController, board: WitnessBoard
) -> None:
    await fleet(memory_store, leases, clock, "edge1", "edge2", "edge3", "edge4")
    await lifecycle.sync_once()
    clock.step(21)  # edge1 silent past witness_after (grace - 2 intervals = 20 s): the leader wants a witness
    for name in ("edge2", "edge3", "edge4"):
        leases.renew(name, clock.now())
    await lifecycle.sync_once()
    assert board.wanted == ("edge1",)
    witness(board, "edge2", "edge1", clock.now())
    await lifecycle.sync_once()
    assert not board.wanted, "a fresh witness is in: nobody needs asking"
    clock.step(20)  # edge1 silent 41 s, the witness 20 s old
    for name in ("edge2", "edge3", "edge4"):
        leases.renew(name, clock.now())
    await lifecycle.sync_once()
    state, reason, message = await ready_of(memory_store, "edge1")
    assert (state, reason) == (NodeState.NOT_READY, "ControlLinkDown")
    assert message == (
        "no heartbeat within the grace period of 40s, but the agent of edge2 reached its agent over a Direct path"
        " (1.2 ms) at 2026-11-24T12:00:21Z"
    )
    clock.step(21)  # the witness is 41 s old and none came since: nobody vouches any more
    for name in ("edge2", "edge3", "edge4"):
        leases.renew(name, clock.now())
    await lifecycle.sync_once()
    assert (await ready_of(memory_store, "edge1"))[1] == "HeartbeatTimeout"
    leases.renew("edge1", clock.now())  # the link is back
    await lifecycle.sync_once()
    assert (await ready_of(memory_store, "edge1"))[:2] == (NodeState.READY, "AgentReady")


async def test_a_witness_from_another_replica_is_read_from_the_stored_facts(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, lifecycle: NodeLifecycleController
) -> None:
    await fleet(memory_store, leases, clock, "edge1", "edge2")
    await lifecycle.sync_once()
    clock.step(30)
    report = {"name": "edge1", "at": clock.now().isoformat(), "mode": "DERP", "latencyMs": 40.0}

    def beat(node: Node) -> Node:  # what another replica's heartbeat route stored for edge2
        wire = node.to_wire()
        wire["status"]["network"] = {"witnessed": [report]}
        return Node.model_validate(wire)

    await memory_store.update_node("edge2", beat)
    leases.renew("edge2", clock.now())
    clock.step(11)
    await lifecycle.sync_once()  # the resync period has passed: the pass re-lists and finds the witness
    state, reason, message = await ready_of(memory_store, "edge1")
    assert (state, reason) == (NodeState.NOT_READY, "ControlLinkDown")
    assert message is not None and "edge2" in message and "DERP" in message


async def test_most_nodes_silent_at_once_is_the_control_planes_own_isolation(
    memory_store: Store,
    leases: LeaseTable,
    clock: FakeClock,
    config: ControllerConfig,
    board: WitnessBoard,
    caplog: pytest.LogCaptureFixture,
) -> None:
    changes: list[bool] = []
    lifecycle = NodeLifecycleController(
        store=memory_store, leases=leases, now=clock.now, config=config, witnesses=board, on_isolation=changes.append
    )
    await fleet(memory_store, leases, clock, "edge1", "edge2", "edge3", "edge4")
    await lifecycle.sync_once()
    clock.step(100)  # past the restart rule's hold
    for name in ("edge1", "edge2", "edge3", "edge4"):
        leases.renew(name, clock.now())
    await lifecycle.sync_once()
    clock.step(2)
    leases.renew("edge4", clock.now())  # edge4 still reaches us; the other three went silent together
    clock.step(39)
    leases.renew("edge4", clock.now())
    with caplog.at_level(logging.WARNING, "controlplane.controllers"):
        await lifecycle.sync_once()
        clock.step(1)
        leases.renew("edge4", clock.now())
        await lifecycle.sync_once()
    for name in ("edge1", "edge2", "edge3"):
        state, reason, message = await ready_of(memory_store, name)
        assert (state, reason) == (NodeState.NOT_READY, "ControlPlaneIsolated")
        assert message is not None and "rescheduling and drain moves wait until beats return" in message
    assert (await ready_of(memory_store, "edge4"))[:2] == (NodeState.READY, "AgentReady")
    assert lifecycle.isolation.isolated and changes == [True]
    isolated_lines = [r.getMessage() for r in caplog.records if "isolated" in r.getMessage()]
    assert isolated_lines == [
        "control plane isolated: 3 of 4 Nodes went silent within one grace window (40s); rescheduling and drain"
        " moves are suspended until beats return"
    ], "one log line per change"
    assert board.wanted == (), "isolated Nodes are not asked about: no beats reach us anyway"
    clock.step(600)
    for name in ("edge1", "edge2", "edge3", "edge4"):
        leases.renew(name, clock.now())
    await lifecycle.sync_once()
    assert not lifecycle.isolation.isolated and changes == [True, False]
    assert lifecycle.isolation.ended_at == clock.now()
    for name in ("edge1", "edge2", "edge3"):
        assert (await ready_of(memory_store, name))[:2] == (NodeState.READY, "AgentReady")


async def test_no_isolation_with_two_nodes(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, lifecycle: NodeLifecycleController
) -> None:
    await fleet(memory_store, leases, clock, "edge1", "edge2")
    await lifecycle.sync_once()
    clock.step(100)
    await lifecycle.sync_once()
    assert not lifecycle.isolation.isolated
    assert (await ready_of(memory_store, "edge1"))[1] == "HeartbeatTimeout"


# --- what the rescheduler and draining do ---------------------------------------------------------------------


def not_ready(reason: str, since: datetime) -> dict[str, object]:
    condition = {"type": "Ready", "status": "False", "reason": reason, "lastTransitionTime": since.isoformat()}
    return {"state": "NotReady", "conditions": [condition]}


@pytest.mark.parametrize(
    ("reason", "minutes", "resumed", "due"),
    [
        pytest.param("HeartbeatTimeout", 3.1, None, True, id="timeout-past-the-wait"),
        pytest.param("HeartbeatTimeout", 2.9, None, False, id="timeout-within-the-wait"),
        pytest.param("ControlLinkDown", 59, None, False, id="witnessed-within-the-limit"),
        pytest.param("ControlLinkDown", 61, None, True, id="witnessed-past-the-limit"),
        pytest.param("ControlPlaneIsolated", 600, None, False, id="isolated-never"),
        pytest.param("HeartbeatTimeout", 10, 2, False, id="wait-counts-from-the-isolations-end"),
        pytest.param("HeartbeatTimeout", 10, 4, True, id="a-full-wait-after-the-isolation"),
    ],
)
def test_reschedule_due(reason: str, minutes: float, resumed: float | None, due: bool, clock: FakeClock) -> None:
    now = clock.now()
    since = now - timedelta(minutes=minutes)
    resumed_at = None if resumed is None else now - timedelta(minutes=resumed)
    assert (
        rs.reschedule_due(
            since,
            reason,
            now,
            after=timedelta(minutes=3),
            control_link_limit=timedelta(hours=1),
            resumed_at=resumed_at,
        )
        is due
    )


async def test_control_link_down_keeps_its_projects_until_the_limit(
    memory_store: Store, clock: FakeClock, config: ControllerConfig
) -> None:
    rescheduler = Rescheduler(store=memory_store, now=clock.now, config=config)
    await memory_store.create_node(make_node("edge1", status=not_ready("ControlLinkDown", clock.now())))
    await memory_store.create_project(make_project("web", phase="Running", nodeRef="edge1"))
    clock.step(30 * 60)
    assert await rescheduler.sync_once() == (0, 0, 0)
    assert (await memory_store.get_project("web")).status.phase == ProjectPhase.RUNNING
    clock.step(31 * 60)
    assert await rescheduler.sync_once() == (1, 0, 0)
    moved = await memory_store.get_project("web")
    assert moved.status.phase == ProjectPhase.PENDING
    scheduled = next(c for c in moved.status.conditions or () if c.type == "Scheduled")
    assert scheduled.message == "node edge1 has been NotReady for more than 1h0m0s"


async def test_isolation_suspends_rescheduling_and_drain_moves(
    memory_store: Store, clock: FakeClock, config: ControllerConfig
) -> None:
    isolation = Isolation(isolated=True, since=clock.now())
    rescheduler = Rescheduler(store=memory_store, now=clock.now, config=config, isolation=isolation)
    draining = DrainingController(store=memory_store, now=clock.now, config=config, isolation=isolation)
    await memory_store.create_node(make_node("edge1", status=not_ready("HeartbeatTimeout", clock.now())))
    await memory_store.create_node(make_node("edge2", status={"state": "Draining"}))
    await memory_store.create_project(make_project("a", phase="Running", nodeRef="edge1"))
    await memory_store.create_project(make_project("b", phase="Scheduled", nodeRef="edge2"))
    clock.step(3600)
    assert await rescheduler.sync_once() == (0, 0, 0)
    assert await draining.sync_once() == 0
    isolation.isolated, isolation.ended_at = False, clock.now()
    assert await draining.sync_once() == 1, "beats are back: the drain's moves go on"
    assert await rescheduler.sync_once() == (0, 0, 0), "a still-silent Node gets a full wait after the isolation"
    clock.step(181)
    assert await rescheduler.sync_once() == (1, 0, 0)


async def test_the_first_node_to_expire_in_a_fleet_wide_silence_is_isolated_at_once(
    memory_store: Store, leases: LeaseTable, clock: FakeClock, lifecycle: NodeLifecycleController
) -> None:
    await fleet(memory_store, leases, clock, "edge1", "edge2", "edge3")
    await lifecycle.sync_once()
    clock.step(100)
    leases.renew("edge1", clock.now())
    clock.step(5)
    leases.renew("edge2", clock.now())
    clock.step(5)
    leases.renew("edge3", clock.now())  # the cut: no beat from anyone after this
    clock.step(30.5)  # edge1 silent 40.5 s (past the grace), edge2 35.5 s and edge3 30.5 s (missed their beats)
    await lifecycle.sync_once()
    assert (await ready_of(memory_store, "edge1"))[:2] == (NodeState.NOT_READY, "ControlPlaneIsolated")
    assert (await ready_of(memory_store, "edge2"))[:2] == (NodeState.READY, "AgentReady"), "within its grace"
    assert lifecycle.isolation.isolated
