"""Node lifecycle: computes each Node's state and its controller-owned conditions from leases and facts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from controlplane.api import (
    Condition,
    ConditionStatus,
    NetworkMode,
    Node,
    NodeConditionType,
    NodeState,
    NodeStatus,
    find_condition,
    quantity_bytes,
    set_condition,
)
from controlplane.store.base import NotFound, Store
from controlplane.store.leases import Lease, LeaseTable

from ._loop import Gate, run_every
from ._writes import write_all
from .config import ControllerConfig, format_duration

#: Nodes judged between two yields to the event loop, so a pass over 20k Nodes never holds it for long.
JUDGE_CHUNK: Final = 1000

# Condition types this controller owns; any other type on a Node is the agent's and is kept as it is.
READY: Final = NodeConditionType.READY
MEMORY_PRESSURE: Final = NodeConditionType.MEMORY_PRESSURE
DISK_PRESSURE: Final = NodeConditionType.DISK_PRESSURE
PATH_RELAYED: Final = NodeConditionType.PATH_RELAYED
TAILNET_OFFLINE: Final = NodeConditionType.TAILNET_OFFLINE
OWNED_TYPES: Final = (READY, MEMORY_PRESSURE, DISK_PRESSURE, PATH_RELAYED, TAILNET_OFFLINE)

# Reasons.
AGENT_READY: Final = "AgentReady"
HEARTBEAT_TIMEOUT: Final = "HeartbeatTimeout"
AGENT_SHUTDOWN: Final = "AgentShutdown"
NODE_STATUS_NEVER_UPDATED: Final = "NodeStatusNeverUpdated"
BLOCKING_CONDITION: Final = "BlockingCondition"
REASON_MEMORY_PRESSURE: Final = "MemoryPressure"
SUFFICIENT_MEMORY: Final = "SufficientMemory"
REASON_DISK_PRESSURE: Final = "DiskPressure"
SUFFICIENT_DISK: Final = "SufficientDisk"
REASON_PATH_RELAYED: Final = "PathRelayed"
PATH_DIRECT: Final = "PathDirect"
REASON_TAILNET_OFFLINE: Final = "TailnetOffline"
TAILNET_ONLINE: Final = "TailnetOnline"
FACTS_UNKNOWN: Final = "FactsUnknown"


@dataclass(frozen=True, slots=True)
class PressureRule:
    """PressureRule: the condition is True while available[resource] < below × capacity[resource]."""

    resource: str
    below: float
    pressure_reason: str
    sufficient_reason: str


#: The pressure conditions and their thresholds (design §4).
PRESSURE_RULES: Final[Mapping[str, PressureRule]] = {
    MEMORY_PRESSURE: PressureRule("memory", 0.10, REASON_MEMORY_PRESSURE, SUFFICIENT_MEMORY),
    DISK_PRESSURE: PressureRule("disk", 0.15, REASON_DISK_PRESSURE, SUFFICIENT_DISK),
}

#: Conditions (agent-reported) that keep a live node out of Ready, with the status that blocks.
#: Pressure conditions are deliberately absent: they only keep the scheduler away (design §4).
BLOCKING_CONDITIONS: Final[Mapping[str, ConditionStatus]] = {"NetworkUnavailable": ConditionStatus.TRUE}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Verdict is what one condition should say: status, reason and a message that stays stable."""

    status: ConditionStatus
    reason: str
    message: str


def ready_verdict(
    *,
    lease: Lease | None,
    blocking: Sequence[str],
    observed_at: datetime,
    now: datetime,
    grace: timedelta,
    was_ready: bool,
) -> Verdict:
    """ready_verdict decides the Ready condition from the lease, on the control plane's own clock.

    Fresh is `Lease.is_fresh` (age ≤ grace: exactly at grace is still fresh). The restart rule: a node this
    controller instance first saw at observed_at keeps Ready until a full grace has passed since then, so a
    restart never turns the fleet NotReady; it only holds a node that already was Ready, never makes one
    Ready. A going-away beat (released) is NotReady at once and is never held.
    """
    if lease is not None and lease.released:
        return Verdict(ConditionStatus.FALSE, AGENT_SHUTDOWN, "agent announced it is shutting down")
    fresh = lease is not None and lease.is_fresh(now, grace)
    held = was_ready and now - observed_at <= grace
    if not fresh and not held:
        if lease is None:
            return Verdict(ConditionStatus.UNKNOWN, NODE_STATUS_NEVER_UPDATED, "agent has never sent a heartbeat")
        return Verdict(
            ConditionStatus.FALSE,
            HEARTBEAT_TIMEOUT,
            f"no heartbeat within the grace period of {format_duration(grace)}",
        )
    if blocking:
        return Verdict(ConditionStatus.FALSE, BLOCKING_CONDITION, ", ".join(f"{t} is True" for t in blocking))
    return Verdict(ConditionStatus.TRUE, AGENT_READY, "agent is posting heartbeats")


def blocking_conditions(conditions: Sequence[Condition] | None) -> list[str]:
    """blocking_conditions returns the types, in table order, of conditions that hold a node out of Ready."""
    return [
        type_
        for type_, blocking_status in BLOCKING_CONDITIONS.items()
        if (found := find_condition(conditions, type_)) is not None and found.status == blocking_status
    ]


def pressure_verdict(
    rule: PressureRule, available: Mapping[str, str] | None, capacity: Mapping[str, str] | None
) -> Verdict:
    """pressure_verdict applies rule to the reported facts; Unknown when they are missing or unreadable."""
    resource = rule.resource
    try:
        free = quantity_bytes((available or {})[resource])
        total = quantity_bytes((capacity or {})[resource])
    except (KeyError, ValueError):
        return Verdict(ConditionStatus.UNKNOWN, FACTS_UNKNOWN, f"agent has not reported available and total {resource}")
    percent = f"{rule.below:.0%}"
    if total <= 0:
        return Verdict(ConditionStatus.UNKNOWN, FACTS_UNKNOWN, f"agent reported a {resource} capacity of zero")
    if free < rule.below * total:
        return Verdict(
            ConditionStatus.TRUE, rule.pressure_reason, f"available {resource} is below {percent} of capacity"
        )
    return Verdict(
        ConditionStatus.FALSE, rule.sufficient_reason, f"available {resource} is at least {percent} of capacity"
    )


def path_verdict(mode: NetworkMode | None) -> Verdict:
    """path_verdict is True while the node reaches the control plane through a DERP relay."""
    if mode is None:
        return Verdict(ConditionStatus.UNKNOWN, FACTS_UNKNOWN, "agent has not reported its path to the control plane")
    if mode == NetworkMode.DERP:
        return Verdict(ConditionStatus.TRUE, REASON_PATH_RELAYED, "path to the control plane is relayed through DERP")
    return Verdict(ConditionStatus.FALSE, PATH_DIRECT, "path to the control plane is direct")


def tailnet_verdict(online: bool | None) -> Verdict:
    """tailnet_verdict is True when the coordination server says the node is offline (a hint only)."""
    if online is None:
        return Verdict(ConditionStatus.UNKNOWN, FACTS_UNKNOWN, "agent has not reported the tailnet's view")
    if online:
        return Verdict(ConditionStatus.FALSE, TAILNET_ONLINE, "tailnet reports the node online")
    return Verdict(ConditionStatus.TRUE, REASON_TAILNET_OFFLINE, "tailnet reports the node offline")


def node_verdicts(status: NodeStatus, ready: Verdict) -> dict[str, Verdict]:
    """node_verdicts returns the verdict of every controller-owned condition type, in OWNED_TYPES order."""
    network = status.network
    tailnet = network.tailnet if network is not None else None
    return {
        READY: ready,
        **{type_: pressure_verdict(rule, status.available, status.capacity) for type_, rule in PRESSURE_RULES.items()},
        PATH_RELAYED: path_verdict(network.mode if network is not None else None),
        TAILNET_OFFLINE: tailnet_verdict(tailnet.online if tailnet is not None else None),
    }


def lease_of(leases: LeaseTable, node: Node) -> Lease | None:
    """lease_of is the node's lease from the table (the truth); failing that, one made from the stored
    lastHeartbeat (which lags), so a node whose lease was never flushed before a restart is not taken for
    one that never beat."""
    lease = leases.get(node.name)
    if lease is None and node.status.last_heartbeat is not None:
        return Lease(node.status.last_heartbeat)
    return lease


def compute_node_state(stored: NodeState | None, ready: ConditionStatus) -> NodeState:
    """compute_node_state: Draining is the operator's and sticks; otherwise Ready iff Ready is True."""
    if stored == NodeState.DRAINING:
        return NodeState.DRAINING
    return NodeState.READY if ready == ConditionStatus.TRUE else NodeState.NOT_READY


def node_conditions(
    conditions: Sequence[Condition] | None, verdicts: Mapping[str, Verdict], now: datetime
) -> list[Condition]:
    """node_conditions upserts each verdict; lastTransitionTime moves only on a status change."""
    result = list(conditions or ())
    for type_, verdict in verdicts.items():
        result = set_condition(result, type_, verdict.status, verdict.reason, verdict.message, now)
    return result


def is_stale(node: Node, state: NodeState, verdicts: Mapping[str, Verdict]) -> bool:
    """is_stale reports whether the stored node differs from what it should say (state or a condition's
    status, reason or message); lastHeartbeatTime alone never causes a write, which keeps passes cheap."""
    if node.status.state != state:
        return True
    for type_, verdict in verdicts.items():
        found = find_condition(node.status.conditions, type_)
        if found is None or (found.status, found.reason, found.message) != (
            verdict.status,
            verdict.reason,
            verdict.message,
        ):
            return True
    return False


class NodeLifecycleController:
    """NodeLifecycleController writes each Node's state and owned conditions when they change.

    It works from a cache of the Nodes (Kubernetes' lister pattern): every pass re-judges each cached
    Node against the leases, which is all that time changes, and every `lifecycle_resync` the cache reads
    from the store the Nodes created, written or deleted since (`list_nodes_changed`: only changed rows are
    decoded, so a quiet 20k-Node fleet costs a light projection, not 20k decodes). A write always
    recomputes from the row read inside the store's transaction, so a stale cache can delay a write but
    never write stale data.
    """

    def __init__(
        self,
        *,
        store: Store,
        leases: LeaseTable,
        now: Callable[[], datetime],
        config: ControllerConfig,
    ) -> None:
        self._store = store
        self._leases = leases
        self._now = now
        self._config = config
        # When this instance first saw each node: the anchor of the restart rule.
        self._observed_at: dict[str, datetime] = {}
        # The Nodes as last listed or written, and when they were listed (None: never).
        self._cache: dict[str, Node] = {}
        self._listed_at: datetime | None = None
        # The store revision of each cached Node as last read: what list_nodes_changed compares against.
        self._revisions: dict[str, int] = {}
        # Nodes read from the store whose every verdict has not yet been judged and settled.
        self._unjudged: set[str] = set()

    def ready(self, node: Node, now: datetime) -> Verdict:
        """ready returns the Ready verdict of node at now: the only one that time alone changes."""
        return ready_verdict(
            lease=lease_of(self._leases, node),
            blocking=blocking_conditions(node.status.conditions),
            observed_at=self._observed_at.get(node.name, now),
            now=now,
            grace=self._config.grace,
            was_ready=node.status.state == NodeState.READY,
        )

    def desired(self, node: Node, now: datetime) -> tuple[NodeState, dict[str, Verdict]]:
        """desired returns the state and verdicts node should have at now (observed_at must be recorded)."""
        ready = self.ready(node, now)
        return compute_node_state(node.status.state, ready.status), node_verdicts(node.status, ready)

    async def sync_once(self) -> int:
        """sync_once runs one pass over every Node; returns how many Nodes it wrote."""
        now = self._now()
        if self._listed_at is None or now - self._listed_at >= self._config.lifecycle_resync:
            self._unjudged |= await self._relist(now)
        # Nodes read from the store get every verdict judged; for the others the cached facts are those
        # already judged (or just written), so only the Ready verdict, which moves with time, can differ.
        unjudged = self._unjudged
        stale: list[str] = []
        for index, (name, node) in enumerate(list(self._cache.items())):
            if index and index % JUDGE_CHUNK == 0:
                await asyncio.sleep(0)  # ~80 ms for 20k Nodes: let heartbeats in between chunks
            if is_stale(node, *self.desired(node, now)) if name in unjudged else self._ready_is_stale(node, now):
                stale.append(name)
        results = await write_all(self._write(name, now) for name in stale)
        self._unjudged = set()  # not reached when a write raised: those Nodes are judged in full again
        return sum(results)

    def _ready_is_stale(self, node: Node, now: datetime) -> bool:
        ready = self.ready(node, now)
        return is_stale(node, compute_node_state(node.status.state, ready.status), {READY: ready})

    async def _relist(self, now: datetime) -> set[str]:
        """_relist brings the cache up to date with the store; returns the names of the Nodes it read."""
        changes = await self._store.list_nodes_changed(self._revisions)
        for name in changes.deleted:
            self._cache.pop(name, None)
        for node in changes.changed:
            self._cache[node.name] = node
        self._revisions = changes.revisions
        self._listed_at = now
        for name in [name for name in self._observed_at if name not in self._cache]:
            del self._observed_at[name]
        for name in self._cache:
            self._observed_at.setdefault(name, now)
        return {node.name for node in changes.changed}

    async def _write(self, name: str, now: datetime) -> bool:
        try:
            self._cache[name] = await self._store.update_node(name, lambda current: self._apply(current, now))
        except NotFound:
            self._cache.pop(name, None)  # deleted since the list; nothing to do
            return False
        return True

    def _apply(self, current: Node, now: datetime) -> Node:
        # Recomputed from the row read inside the transaction: a drain or a beat that landed after the
        # list is respected, never overwritten with what the list showed.
        state, verdicts = self.desired(current, now)
        status = current.status.model_copy(
            update={"state": state, "conditions": node_conditions(current.status.conditions, verdicts, now)}
        )
        metadata = current.metadata.model_copy(update={"updated_at": now})
        return current.model_copy(update={"status": status, "metadata": metadata})

    async def run(self, stop: asyncio.Event, *, gate: Gate | None = None) -> None:
        """run calls sync_once every lifecycle_period until stop is set."""
        await run_every("node-lifecycle", self.sync_once, self._config.lifecycle_period, stop, gate)
