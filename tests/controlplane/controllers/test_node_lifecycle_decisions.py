"""Table tests of the node lifecycle's pure decisions: Ready, pressure, path, tailnet, state and upsert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controlplane.api import Condition, ConditionStatus, NetworkMode, Node, NodeState, NodeStatus
from controlplane.controllers import node_lifecycle as nl
from controlplane.controllers.node_lifecycle import Verdict
from controlplane.store.leases import Lease
from tests.factories import node

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=40)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN

READY = Verdict(TRUE, "AgentReady", "agent is posting heartbeats")
TIMEOUT = Verdict(FALSE, "HeartbeatTimeout", "no heartbeat within the grace period of 40s")
SHUTDOWN = Verdict(FALSE, "AgentShutdown", "agent announced it is shutting down")
NEVER = Verdict(UNKNOWN, "NodeStatusNeverUpdated", "agent has never sent a heartbeat")


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("lease", "blocking", "observed", "now", "was_ready", "expected"),
    [
        (None, [], s(0), s(0), False, NEVER),
        (None, [], s(0), s(100), False, NEVER),
        (Lease(s(0)), [], s(0), s(0), False, READY),
        (Lease(s(0)), [], s(0), s(40), True, READY),
        (Lease(s(0)), [], s(0), s(40.001), True, TIMEOUT),
        (Lease(s(0)), [], s(0), s(41), False, TIMEOUT),
        (Lease(s(0), released=True), [], s(0), s(1), True, SHUTDOWN),
        (Lease(s(0), released=True), [], s(-100), s(0), True, SHUTDOWN),
        # Restart rule: first seen at 100, lease from 0 (stale), was Ready: held until 140.
        (Lease(s(0)), [], s(100), s(100), True, READY),
        (Lease(s(0)), [], s(100), s(140), True, READY),
        (Lease(s(0)), [], s(100), s(140.5), True, TIMEOUT),
        # ... but never made Ready: a stale node that was NotReady stays NotReady.
        (Lease(s(0)), [], s(100), s(100), False, TIMEOUT),
        (None, [], s(100), s(100), True, READY),
        (None, [], s(100), s(141), True, NEVER),
        (
            Lease(s(0)),
            ["NetworkUnavailable"],
            s(0),
            s(1),
            True,
            Verdict(FALSE, "BlockingCondition", "NetworkUnavailable is True"),
        ),
        (Lease(s(0)), ["NetworkUnavailable"], s(0), s(50), True, TIMEOUT),
    ],
    ids=[
        "never-beat",
        "never-beat-long-after",
        "just-beat",
        "exactly-at-grace-still-ready",
        "just-past-grace",
        "silent-past-grace",
        "going-away",
        "going-away-not-held-by-restart-rule",
        "restart-stale-lease-held",
        "restart-held-to-a-full-grace",
        "restart-hold-ends",
        "restart-never-makes-ready",
        "restart-no-lease-held",
        "restart-no-lease-hold-ends",
        "blocking-condition",
        "stale-wins-over-blocking",
    ],
)
def test_ready_verdict(
    lease: Lease | None,
    blocking: list[str],
    observed: datetime,
    now: datetime,
    was_ready: bool,
    expected: Verdict,
) -> None:
    got = nl.ready_verdict(
        lease=lease, blocking=blocking, observed_at=observed, now=now, grace=GRACE, was_ready=was_ready
    )
    assert got == expected


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (None, []),
        ([Condition(type="NetworkUnavailable", status=FALSE)], []),
        ([Condition(type="NetworkUnavailable", status=TRUE)], ["NetworkUnavailable"]),
        ([Condition(type="MemoryPressure", status=TRUE)], []),
    ],
    ids=["none", "network-available", "network-unavailable", "pressure-does-not-block"],
)
def test_blocking_conditions(conditions: list[Condition] | None, expected: list[str]) -> None:
    assert nl.blocking_conditions(conditions) == expected


MEMORY_OK = Verdict(FALSE, "SufficientMemory", "available memory is at least 10% of capacity")
MEMORY_LOW = Verdict(TRUE, "MemoryPressure", "available memory is below 10% of capacity")
MEMORY_UNKNOWN = Verdict(UNKNOWN, "FactsUnknown", "agent has not reported available and total memory")


@pytest.mark.parametrize(
    ("available", "capacity", "expected"),
    [
        ({"memory": "1Gi"}, {"memory": "8Gi"}, MEMORY_OK),
        ({"memory": "819Mi"}, {"memory": "8190Mi"}, MEMORY_OK),
        ({"memory": "818Mi"}, {"memory": "8190Mi"}, MEMORY_LOW),
        ({"memory": "0"}, {"memory": "8Gi"}, MEMORY_LOW),
        (None, {"memory": "8Gi"}, MEMORY_UNKNOWN),
        ({"memory": "1Gi"}, None, MEMORY_UNKNOWN),
        ({"memory": "lots"}, {"memory": "8Gi"}, MEMORY_UNKNOWN),
        (
            {"memory": "0"},
            {"memory": "0"},
            Verdict(UNKNOWN, "FactsUnknown", "agent reported a memory capacity of zero"),
        ),
    ],
    ids=["plenty", "exactly-10-percent", "just-below", "none-left", "no-available", "no-capacity", "garbage", "zero"],
)
def test_memory_pressure(available: dict[str, str] | None, capacity: dict[str, str] | None, expected: Verdict) -> None:
    got = nl.pressure_verdict(nl.PRESSURE_RULES["MemoryPressure"], available, capacity)
    assert got == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (NetworkMode.DERP, Verdict(TRUE, "PathRelayed", "path to the control plane is relayed through DERP")),
        (NetworkMode.DIRECT, Verdict(FALSE, "PathDirect", "path to the control plane is direct")),
        (None, Verdict(UNKNOWN, "FactsUnknown", "agent has not reported its path to the control plane")),
    ],
    ids=["derp", "direct", "unknown"],
)
def test_path_verdict(mode: NetworkMode | None, expected: Verdict) -> None:
    assert nl.path_verdict(mode) == expected


@pytest.mark.parametrize(
    ("online", "expected"),
    [
        (False, Verdict(TRUE, "TailnetOffline", "tailnet reports the node offline")),
        (True, Verdict(FALSE, "TailnetOnline", "tailnet reports the node online")),
        (None, Verdict(UNKNOWN, "FactsUnknown", "agent has not reported the tailnet's view")),
    ],
    ids=["offline", "online", "unknown"],
)
def test_tailnet_verdict(online: bool | None, expected: Verdict) -> None:
    assert nl.tailnet_verdict(online) == expected


@pytest.mark.parametrize(
    ("stored", "ready", "expected"),
    [
        (None, TRUE, NodeState.READY),
        (None, UNKNOWN, NodeState.NOT_READY),
        (NodeState.READY, FALSE, NodeState.NOT_READY),
        (NodeState.NOT_READY, TRUE, NodeState.READY),
        (NodeState.DRAINING, TRUE, NodeState.DRAINING),
        (NodeState.DRAINING, FALSE, NodeState.DRAINING),
    ],
    ids=["new-ready", "new-never-beat", "ready-to-notready", "notready-to-ready", "draining-live", "draining-dead"],
)
def test_compute_node_state(stored: NodeState | None, ready: ConditionStatus, expected: NodeState) -> None:
    assert nl.compute_node_state(stored, ready) == expected


def test_node_verdicts_cover_every_owned_type_in_order() -> None:
    status = NodeStatus.model_validate(
        {
            "capacity": {"memory": "8Gi", "disk": "100Gi"},
            "available": {"memory": "4Gi", "disk": "10Gi"},
            "network": {"mode": "DERP", "tailnet": {"online": True}},
        }
    )
    got = nl.node_verdicts(status, READY)
    assert list(got) == list(nl.OWNED_TYPES)
    assert got == {
        "Ready": READY,
        "MemoryPressure": MEMORY_OK,
        "DiskPressure": Verdict(TRUE, "DiskPressure", "available disk is below 15% of capacity"),
        "PathRelayed": Verdict(TRUE, "PathRelayed", "path to the control plane is relayed through DERP"),
        "TailnetOffline": Verdict(FALSE, "TailnetOnline", "tailnet reports the node online"),
    }


def test_node_conditions_keep_agent_conditions_and_move_transition_only_on_status_change() -> None:
    agent = Condition(type="NetworkUnavailable", status=FALSE, reason="RouteCreated")
    old_ready = Condition(
        type="Ready", status=TRUE, reason="AgentReady", last_transition_time=s(0), last_heartbeat_time=s(0)
    )
    got = nl.node_conditions([agent, old_ready], {"Ready": READY, "PathRelayed": nl.path_verdict(None)}, s(10))
    assert got == [
        agent,
        Condition(
            type="Ready",
            status=TRUE,
            reason="AgentReady",
            message="agent is posting heartbeats",
            last_transition_time=s(0),
            last_heartbeat_time=s(10),
        ),
        Condition(
            type="PathRelayed",
            status=UNKNOWN,
            reason="FactsUnknown",
            message="agent has not reported its path to the control plane",
            last_transition_time=s(10),
            last_heartbeat_time=s(10),
        ),
    ]


def _cond(type_: str, verdict: Verdict, at: datetime = T0) -> Condition:
    return Condition(
        type=type_,
        status=verdict.status,
        reason=verdict.reason,
        message=verdict.message,
        last_transition_time=at,
        last_heartbeat_time=at,
    )


@pytest.mark.parametrize(
    ("node", "state", "verdicts", "expected"),
    [
        (node(state=NodeState.READY, conditions=[_cond("Ready", READY)]), NodeState.READY, {"Ready": READY}, False),
        (
            node(state=NodeState.READY, conditions=[_cond("Ready", READY, s(-99))]),
            NodeState.READY,
            {"Ready": READY},
            False,
        ),
        (node(state=None, conditions=[_cond("Ready", READY)]), NodeState.READY, {"Ready": READY}, True),
        (node(state=NodeState.READY, conditions=[_cond("Ready", READY)]), NodeState.NOT_READY, {"Ready": READY}, True),
        (node(state=NodeState.READY, conditions=[]), NodeState.READY, {"Ready": READY}, True),
        (
            node(state=NodeState.NOT_READY, conditions=[_cond("Ready", NEVER)]),
            NodeState.NOT_READY,
            {"Ready": TIMEOUT},
            True,
        ),
        (
            node(state=NodeState.READY, conditions=[_cond("Ready", READY)]),
            NodeState.READY,
            {"Ready": Verdict(TRUE, "AgentReady", "other words")},
            True,
        ),
    ],
    ids=["same", "only-times-differ", "state-unset", "state-differs", "condition-missing", "reason", "message"],
)
def test_is_stale(node: Node, state: NodeState, verdicts: dict[str, Verdict], expected: bool) -> None:
    assert nl.is_stale(node, state, verdicts) is expected


def test_the_controller_owns_exactly_the_types_the_server_ignores_from_agents() -> None:
    from controlplane.api import CONTROL_PLANE_CONDITIONS
    from controlplane.controllers.node_lifecycle import OWNED_TYPES

    assert frozenset(OWNED_TYPES) == frozenset(CONTROL_PLANE_CONDITIONS)


def _settled(node: Node, now: datetime) -> Node:
    """_settled is node with every owned condition written as a Ready, live node's should be."""
    verdicts = nl.node_verdicts(
        node.status,
        nl.ready_verdict(
            lease=Lease(now), blocking=[], observed_at=now, now=now, grace=timedelta(seconds=40), was_ready=True
        ),
    )
    conditions = nl.node_conditions(node.status.conditions, verdicts, now)
    return node.model_copy(
        update={"status": node.status.model_copy(update={"state": NodeState.READY, "conditions": conditions})}
    )


def test_a_cached_node_is_steady_only_when_stored_ready_with_every_fact_settled() -> None:
    now = s(0)
    node = Node.model_validate({"metadata": {"name": "edge1"}, "spec": {}, "status": {"network": {"mode": "Direct"}}})
    settled = nl.CachedNode.of(_settled(node, now), now)
    assert settled.steady and not settled.facts_stale and settled.blocking == ()
    moved = _settled(node, now).model_copy(deep=True)
    assert moved.status.network is not None
    moved.status.network.mode = NetworkMode.DERP  # a fact changed after the conditions were written
    stale = nl.CachedNode.of(moved, now)
    assert stale.facts_stale and not stale.steady
    fresh = nl.CachedNode.of(node, now)  # never judged: no Ready condition stored yet
    assert fresh.ready is None and not fresh.steady
