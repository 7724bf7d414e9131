"""Node lifecycle: computes each Node's state and its controller-owned conditions from leases and facts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from controlplane.api import (
    AGENT_MAX_BACKOFF,
    AGENT_READY,
    AGENT_SHUTDOWN,
    CONTROL_LINK_DOWN,
    CONTROL_PLANE_CONDITIONS,
    CONTROL_PLANE_ISOLATED,
    HEARTBEAT_TIMEOUT,
    NODE_STATUS_NEVER_UPDATED,
    Condition,
    ConditionStatus,
    NetworkMode,
    Node,
    NodeConditionType,
    NodeState,
    NodeStatus,
    find_condition,
    format_time,
    quantity_bytes,
    set_condition,
)
from controlplane.store.base import NotFound, Store
from controlplane.store.leases import Lease, LeaseTable
from controlplane.store.witnesses import Witness, WitnessBoard

from ._loop import Gate, run_every
from ._writes import write_all
from .config import ControllerConfig, format_duration

#: Nodes judged between two yields to the event loop, so a pass over 20k Nodes never holds it for long.
JUDGE_CHUNK: Final = 1000
#: A stall of the loop itself (the process frozen, the event loop blocked) longer than this many graces, or one
#: heartbeat interval if that is longer, is treated as a restart: see `NodeLifecycleController.resume`.
STALL_GRACES: Final = 0.25

log = logging.getLogger("controlplane.controllers")

# Condition types this controller owns; any other type on a Node is the agent's and is kept as it is.
READY: Final = NodeConditionType.READY
MEMORY_PRESSURE: Final = NodeConditionType.MEMORY_PRESSURE
DISK_PRESSURE: Final = NodeConditionType.DISK_PRESSURE
PATH_RELAYED: Final = NodeConditionType.PATH_RELAYED
TAILNET_OFFLINE: Final = NodeConditionType.TAILNET_OFFLINE
OWNED_TYPES: Final = CONTROL_PLANE_CONDITIONS

#: Most silent Nodes the leader asks witnesses for at once (the most recently silent first).
WANTED_LIMIT: Final = 64

# Reasons (the Ready ones of design §4 live in controlplane.api).
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


#: The Ready verdict of a live node, and what its stored condition says once written.
_LIVE: Final = Verdict(ConditionStatus.TRUE, AGENT_READY, "agent is posting heartbeats")
_READY_SAID: Final = (_LIVE.status, _LIVE.reason, _LIVE.message)


def isolated_verdict(grace: timedelta) -> Verdict:
    """isolated_verdict is the Ready verdict of a Node that went silent together with most of the fleet. Its message
    carries no counts, so the Nodes coming back one by one do not rewrite all the others."""
    return Verdict(
        ConditionStatus.FALSE,
        CONTROL_PLANE_ISOLATED,
        f"most Nodes went silent within one grace window of {format_duration(grace)}: the control plane assumes it"
        " lost the tailnet itself; rescheduling and drain moves wait until beats return",
    )


def witnessed_verdict(witness: Witness, grace: timedelta) -> Verdict:
    """witnessed_verdict is the Ready verdict of a Node silent to us that a fellow agent reached: it names the
    witness, the path and when (the time, not an age, so the message changes only with a new witness)."""
    path = f"a {witness.mode.value} path" if witness.mode is not None else "the tailnet"
    latency = f" ({witness.latency_ms:.1f} ms)" if witness.latency_ms is not None else ""
    return Verdict(
        ConditionStatus.FALSE,
        CONTROL_LINK_DOWN,
        f"no heartbeat within the grace period of {format_duration(grace)}, but the agent of {witness.by} reached"
        f" its agent over {path}{latency} at {format_time(witness.at)}",
    )


def ready_verdict(
    *,
    lease: Lease | None,
    blocking: Sequence[str],
    observed_at: datetime,
    now: datetime,
    grace: timedelta,
    was_ready: bool,
    witness: Witness | None = None,
    isolated: bool = False,
) -> Verdict:
    """ready_verdict decides the Ready condition from the lease, on the control plane's own clock.

    Fresh is `Lease.is_fresh` (age ≤ grace: exactly at grace is still fresh). The restart rule: a node this
    controller instance first saw at observed_at keeps Ready until a full grace has passed since then, so a
    restart never turns the fleet NotReady; it only holds a node that already was Ready, never makes one
    Ready. A going-away beat (released) is NotReady at once and is never held. A silent Node is
    ControlPlaneIsolated when it went silent with most of the fleet (`isolated`), else ControlLinkDown when a
    fellow agent reached it since its last beat and within the grace (`witness`, see `valid_witness`), else
    HeartbeatTimeout.
    """
    if lease is not None and lease.released:
        return Verdict(ConditionStatus.FALSE, AGENT_SHUTDOWN, "agent announced it is shutting down")
    fresh = lease is not None and lease.is_fresh(now, grace)
    held = was_ready and now - observed_at <= grace
    if not fresh and not held:
        if lease is None:
            return Verdict(ConditionStatus.UNKNOWN, NODE_STATUS_NEVER_UPDATED, "agent has never sent a heartbeat")
        if isolated:
            return isolated_verdict(grace)
        if witness is not None:
            return witnessed_verdict(witness, grace)
        return Verdict(
            ConditionStatus.FALSE,
            HEARTBEAT_TIMEOUT,
            f"no heartbeat within the grace period of {format_duration(grace)}",
        )
    if blocking:
        return Verdict(ConditionStatus.FALSE, BLOCKING_CONDITION, ", ".join(f"{t} is True" for t in blocking))
    return _LIVE


def valid_witness(witness: Witness | None, lease: Lease | None, now: datetime, grace: timedelta) -> Witness | None:
    """valid_witness is witness when it counts for a silent Node: it reached the Node after its last beat (so it
    vouches for the silence, not for the time before) and no longer than grace ago."""
    if witness is None or lease is None or witness.at <= lease.renewed_at or now - witness.at > grace:
        return None
    return witness


def isolation_window(
    silences: Sequence[tuple[datetime, str]], total: int, *, grace: timedelta, fraction: float, min_nodes: int
) -> list[str]:
    """isolation_window returns the Nodes that went silent within one grace window of each other (their last beats
    at most grace apart), when they are more than fraction of total Nodes and total is at least min_nodes: the
    control plane then assumes it is the one cut off. Otherwise it returns []. silences: (last beat, name)."""
    if total < min_nodes or not silences:
        return []
    ordered = sorted(silences)
    best, best_start, start = 0, 0, 0
    for end in range(len(ordered)):
        while ordered[end][0] - ordered[start][0] > grace:
            start += 1
        if end - start + 1 > best:
            best, best_start = end - start + 1, start
    if best <= fraction * total:
        return []
    return [name for _, name in ordered[best_start : best_start + best]]


@dataclass(slots=True)
class Isolation:
    """Isolation is the leader's judgement that the control plane itself is cut off, read by the rescheduler and
    the draining controller (they hold their moves while it lasts)."""

    isolated: bool = False
    # When the last isolation began and ended (None: never).
    since: datetime | None = None
    ended_at: datetime | None = None


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


def fact_verdicts(status: NodeStatus) -> dict[str, Verdict]:
    """fact_verdicts returns the verdict of every owned condition but Ready: they follow the facts, not time."""
    network = status.network
    tailnet = network.tailnet if network is not None else None
    return {
        **{type_: pressure_verdict(rule, status.available, status.capacity) for type_, rule in PRESSURE_RULES.items()},
        PATH_RELAYED: path_verdict(network.mode if network is not None else None),
        TAILNET_OFFLINE: tailnet_verdict(tailnet.online if tailnet is not None else None),
    }


def node_verdicts(status: NodeStatus, ready: Verdict) -> dict[str, Verdict]:
    """node_verdicts returns the verdict of every controller-owned condition type, in OWNED_TYPES order."""
    return {READY: ready, **fact_verdicts(status)}


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


def condition_words(
    conditions: Sequence[Condition] | None, type_: str
) -> tuple[ConditionStatus, str | None, str | None] | None:
    """condition_words is what the condition of type_ says (status, reason, message), or None when it is missing."""
    found = find_condition(conditions, type_)
    return None if found is None else (found.status, found.reason, found.message)


def is_stale(node: Node, state: NodeState, verdicts: Mapping[str, Verdict]) -> bool:
    """is_stale reports whether the stored node differs from what it should say (state or a condition's
    status, reason or message); lastHeartbeatTime alone never causes a write, which keeps passes cheap."""
    if node.status.state != state:
        return True
    conditions = node.status.conditions
    return any(condition_words(conditions, type_) != (v.status, v.reason, v.message) for type_, v in verdicts.items())


@dataclass(slots=True)
class CachedNode:
    """CachedNode is what the lifecycle controller keeps of one Node between reads: only what judging needs.

    A full pydantic Node costs about 6 KiB and 50 objects; this is one small object. The verdicts that follow
    the facts are judged once, when the Node is read, into facts_stale; only Ready moves with time.
    """

    state: NodeState | None
    last_heartbeat: datetime | None
    blocking: tuple[str, ...]
    # What the stored Ready condition says (status, reason, message), None when it is missing.
    ready: tuple[ConditionStatus, str | None, str | None] | None
    # Some owned condition other than Ready differs from its verdict: the Node needs a write whatever the time.
    facts_stale: bool
    # When this controller instance first saw the Node: the anchor of the restart rule.
    observed_at: datetime
    # Stored Ready, saying so, nothing blocking and no stale fact: a fresh lease alone proves it up to date.
    steady: bool = False

    @classmethod
    def of(cls, node: Node, observed_at: datetime) -> CachedNode:
        """of reduces node, first seen at observed_at, to its cache entry."""
        status = node.status
        facts_stale = any(
            condition_words(status.conditions, type_) != (v.status, v.reason, v.message)
            for type_, v in fact_verdicts(status).items()
        )
        blocking = tuple(blocking_conditions(status.conditions))
        ready = condition_words(status.conditions, READY)
        steady = status.state == NodeState.READY and ready == _READY_SAID and not facts_stale and not blocking
        return cls(status.state, status.last_heartbeat, blocking, ready, facts_stale, observed_at, steady)


class NodeLifecycleController:
    """NodeLifecycleController writes each Node's state and owned conditions when they change.

    It works from a cache of the Nodes (Kubernetes' lister pattern), one slim `CachedNode` each: every pass
    re-judges each cached Node against the leases, which is all that time changes, and every
    `lifecycle_resync` the cache reads from the store the Nodes created, written or deleted since
    (`project_nodes_changed`: only changed rows are decoded, so a quiet 20k-Node fleet costs a light projection,
    not 20k decodes). A write always recomputes from the row read inside the store's transaction, so a stale
    cache can delay a write but never write stale data.
    """

    def __init__(
        self,
        *,
        store: Store,
        leases: LeaseTable,
        now: Callable[[], datetime],
        config: ControllerConfig,
        witnesses: WitnessBoard | None = None,
        isolation: Isolation | None = None,
        on_isolation: Callable[[bool], None] | None = None,
    ) -> None:
        self._store = store
        self._leases = leases
        self._now = now
        self._config = config
        self._witnesses = witnesses if witnesses is not None else WitnessBoard()
        self.isolation = isolation if isolation is not None else Isolation()
        self._on_isolation = on_isolation
        # The Nodes judged ControlPlaneIsolated in the current pass.
        self._isolated: frozenset[str] = frozenset()
        # The Nodes as last read or written, and when the store was last listed (None: never).
        self._cache: dict[str, CachedNode] = {}
        self._listed_at: datetime | None = None
        # The store revision of each cached Node as last read: what list_nodes_changed compares against.
        self._revisions: dict[str, int] = {}
        # When the run loop last passed (None: not yet), to notice that the controller itself was stalled.
        self._passed_at: datetime | None = None

    def ready(self, node: Node, now: datetime) -> Verdict:
        """ready returns the Ready verdict of node at now: the only one that time alone changes."""
        cached = self._cache.get(node.name)
        lease = lease_of(self._leases, node)
        return ready_verdict(
            lease=lease,
            blocking=blocking_conditions(node.status.conditions),
            observed_at=cached.observed_at if cached is not None else now,
            now=now,
            grace=self._config.grace,
            was_ready=node.status.state == NodeState.READY,
            witness=valid_witness(self._witnesses.newest(node.name), lease, now, self._config.grace),
            isolated=node.name in self._isolated,
        )

    def desired(self, node: Node, now: datetime) -> tuple[NodeState, dict[str, Verdict]]:
        """desired returns the state and verdicts node should have at now."""
        ready = self.ready(node, now)
        return compute_node_state(node.status.state, ready.status), node_verdicts(node.status, ready)

    def is_stale(self, name: str, cached: CachedNode, now: datetime) -> bool:
        """is_stale reports whether the cached Node needs a write at now (what `is_stale` says of a full Node)."""
        lease = self._leases.get(name)
        if lease is None and cached.last_heartbeat is not None:
            lease = Lease(cached.last_heartbeat)
        ready = ready_verdict(
            lease=lease,
            blocking=cached.blocking,
            observed_at=cached.observed_at,
            now=now,
            grace=self._config.grace,
            was_ready=cached.state == NodeState.READY,
            witness=valid_witness(self._witnesses.newest(name), lease, now, self._config.grace),
            isolated=name in self._isolated,
        )
        return (
            cached.facts_stale
            or cached.state != compute_node_state(cached.state, ready.status)
            or cached.ready != (ready.status, ready.reason, ready.message)
        )

    async def sync_once(self) -> int:
        """sync_once runs one pass over every Node; returns how many Nodes it wrote."""
        now = self._now()
        if self._listed_at is None or now - self._listed_at >= self._config.lifecycle_resync:
            await self._relist(now)
        leases, grace, suspect_after = self._leases, self._config.grace, self._config.witness_after
        candidates: list[tuple[str, CachedNode]] = []
        # Nodes silent past witness_after (last beat, name): all of them, and those counted for isolation; whether one
        # is past the grace; and how many Nodes ever beat.
        silences: list[tuple[datetime, str]] = []
        past_grace = False
        suspects: list[tuple[datetime, str]] = []
        beating = 0
        for index, (name, cached) in enumerate(list(self._cache.items())):
            if index and index % JUDGE_CHUNK == 0:
                await asyncio.sleep(0)  # let heartbeats in between chunks
            lease = leases.get(name)
            if lease is None and cached.last_heartbeat is not None:
                lease = Lease(cached.last_heartbeat)
            if lease is None:
                candidates.append((name, cached))
                continue
            beating += 1
            silent_for = now - lease.renewed_at
            if silent_for > suspect_after and not lease.released:
                suspects.append((lease.renewed_at, name))
                # A Node still under the restart rule's hold is not counted silent: a restart is not an isolation.
                if now - cached.observed_at > grace:
                    silences.append((lease.renewed_at, name))
                    past_grace = past_grace or silent_for > grace
            if cached.steady and lease.is_fresh(now, grace):  # the common case: stored Ready, the lease fresh
                continue
            candidates.append((name, cached))
        self._judge_isolation(silences if past_grace else [], beating, now)
        self._want_witnesses(suspects, now)
        stale = [name for name, cached in candidates if self.is_stale(name, cached, now)]
        return sum(await write_all(self._write(name, now) for name in stale))

    def _judge_isolation(self, silences: list[tuple[datetime, str]], total: int, now: datetime) -> None:
        """_judge_isolation decides this pass's ControlPlaneIsolated Nodes; a change is logged once and reported.

        silences are the Nodes silent past witness_after, given only once one of them is past the grace: a fleet cut
        off at once stops beating within one interval, so when the first Node's lease expires the others are silent
        past witness_after too, and the first is judged ControlPlaneIsolated at once, not HeartbeatTimeout first."""
        config = self._config
        isolated = isolation_window(
            silences,
            total,
            grace=config.grace,
            fraction=config.isolation_fraction,
            min_nodes=config.isolation_min_nodes,
        )
        self._isolated = frozenset(isolated)
        state = self.isolation
        if bool(isolated) == state.isolated:
            return
        state.isolated = bool(isolated)
        if isolated:
            state.since = now
            log.warning(
                "control plane isolated: %d of %d Nodes went silent within one grace window (%s); rescheduling and"
                " drain moves are suspended until beats return",
                len(isolated),
                total,
                format_duration(config.grace),
            )
        else:
            state.ended_at = now
            log.warning("control plane no longer isolated: beats are back; rescheduling and drain moves resume")
        if self._on_isolation is not None:
            self._on_isolation(state.isolated)

    def _want_witnesses(self, suspects: list[tuple[datetime, str]], now: datetime) -> None:
        """_want_witnesses asks for a witness of each Node silent past witness_after that has none newer than one
        heartbeat interval (the most recently silent first; at most WANTED_LIMIT), up to the ControlLinkDown limit."""
        config = self._config
        horizon = config.control_link_limit + config.grace
        wanted = []
        for last_beat, name in sorted(suspects, reverse=True):
            if now - last_beat > horizon or name in self._isolated:
                continue
            witness = self._witnesses.newest(name)
            if witness is None or witness.at <= last_beat or now - witness.at > config.heartbeat_interval:
                wanted.append(name)
                if len(wanted) >= WANTED_LIMIT:
                    break
        self._witnesses.want(wanted)

    async def _relist(self, now: datetime) -> None:
        """_relist brings the cache up to date with the store, reducing each changed Node as it is decoded."""
        cache = self._cache

        witnesses = self._witnesses

        def entry(node: Node) -> CachedNode:
            known = cache.get(node.name)
            network = node.status.network
            if network is not None and network.witnessed:  # witnesses another replica received
                witnesses.record(node.name, network.witnessed, now)
            return CachedNode.of(node, known.observed_at if known is not None else now)

        changes = await self._store.project_nodes_changed(self._revisions, entry)
        for name in changes.deleted:
            cache.pop(name, None)
        cache.update(changes.changed)
        # A cached Node that the snapshot does not name is gone (e.g. one written, then deleted, between lists).
        for name in [name for name in cache if name not in changes.revisions]:
            del cache[name]
        self._revisions = changes.revisions
        self._listed_at = now

    def _remember(self, node: Node, now: datetime) -> None:
        """_remember caches node, keeping when it was first seen (the restart rule's anchor)."""
        known = self._cache.get(node.name)
        self._cache[node.name] = CachedNode.of(node, known.observed_at if known is not None else now)

    async def _write(self, name: str, now: datetime) -> bool:
        try:
            written = await self._store.update_node(name, lambda current: self._apply(current, now))
            self._remember(written, now)
            log.debug("node %s written %s at monotonic %.3f", name, written.status.state, time.monotonic())
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

    def resume(self, now: datetime) -> bool:
        """resume records a pass of the run loop at now. When the previous one is longer ago than the stall bound
        (a quarter grace, at least one heartbeat interval), the controller was not running meanwhile (the process
        was frozen, the event loop blocked) and neither were the heartbeat routes, so the silence of that window is
        not the Nodes' fault: the restart rule applies as after a restart, anchored the stall's length (at most an
        agent's longest backoff) after now, since the agents backed off while it lasted.
        Returns whether it did. Tests of `sync_once` step the clock freely; only the loop calls this."""
        stalled = self._passed_at is not None and now - self._passed_at > max(
            self._config.heartbeat_interval, self._config.grace * STALL_GRACES
        )
        if stalled and self._passed_at is not None:
            # The agents backed off meanwhile (their retries double), so their first beat can come up to the stall's
            # length after it (at most their longest backoff): the grace counts from then.
            extra = min(now - self._passed_at, AGENT_MAX_BACKOFF)
            log.warning("node lifecycle stalled for %s: no NotReady before %s from now", now - self._passed_at,
                        extra + self._config.grace)  # fmt: skip
            for cached in self._cache.values():
                cached.observed_at = now + extra
        self._passed_at = now
        return stalled

    async def _pass(self) -> int:
        self.resume(self._now())
        return await self.sync_once()

    async def run(
        self, stop: asyncio.Event, *, gate: Gate | None = None, on_pass: Callable[[], None] | None = None
    ) -> None:
        """run passes every lifecycle_period until stop is set, applying `resume`'s stall rule before each; a
        going-away beat (`LeaseTable.release`) starts a pass at once, so AgentShutdown does not wait for the period."""
        await run_every(
            "node-lifecycle", self._pass, self._config.lifecycle_period, stop, gate, on_pass, wake=self._leases.goodbye
        )
