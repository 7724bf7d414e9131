"""NodeWrites: the one place for the rules of writing a Node (binding, beat merge, cordon, drain, uncordon, release).

Authorization of a node's writes is answered from the store: a full beat, a registration and a project status
report check the Node's binding inside (or right against) the store transaction that applies them. Only the
empty beat, which renews the in-memory lease and must not touch the store, is answered from a cache of
bindings, and that cache is brought up to date by Node revision at every lease flush (`refresh_bindings`), so
a binding released or taken on another replica is seen here within one flush interval. A cache entry that
does not say "this caller" is never trusted: the store is asked, so a newly bound machine is never refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from controlplane.api import (
    ASSIGNED_PHASES,
    CONTROL_PLANE_CONDITIONS,
    Heartbeat,
    Node,
    NodeBinding,
    NodeConditionType,
    NodeNetworkStatus,
    NodeState,
    NodeStatus,
    NodeThroughput,
    facts_stale,
    format_time,
    set_condition,
    silent_ready_reason,
    silent_reason,
)
from controlplane.store.base import AlreadyExists, Conflict, NotFound, Store
from controlplane.store.leases import LeaseTable, facts_confirmed_at
from controlplane.store.witnesses import WitnessBoard

from .identity import Caller, Forbidden, Role

log = logging.getLogger("controlplane.server")

#: The status fields a full beat replaces when it carries them non-empty (design §3.4); `network` merges.
REPLACED_FIELDS: Final = ("capacity", "allocatable", "available", "info")


def _bound_id(node: Node) -> str | None:
    binding = node.status.binding
    return binding.node_id if binding is not None else None


#: A Node's tailnet address as the Node cache keeps it: IP and agent port (None when it reported none).
Address = tuple[str, int | None]


def _address(node: Node) -> Address | None:
    network = node.status.network
    return (network.ip, network.agent_port or None) if network is not None and network.ip else None


def _cached(node: Node) -> tuple[str | None, Address | None]:
    """_cached is what the Node cache keeps of a Node: its bound tailnet node ID and its tailnet address."""
    return _bound_id(node), _address(node)


def require_node_writer(caller: Caller) -> None:
    """require_node_writer raises Forbidden unless the caller may write node status at all (node or admin)."""
    if caller.role not in (Role.NODE, Role.ADMIN):
        raise Forbidden(f"{caller.role} {caller.name!r} may not write node status; a node or admin role is needed")


def checked_binding(node: Node, caller: Caller, now: datetime) -> Node:
    """checked_binding is the binding rule, for use inside a store mutator: an admin writes any Node, a node only
    the Node bound to its tailnet machine; a Node bound to nobody (pre-registered by an operator) is bound to the
    first node that writes it. Returns the Node, bound when it was not; raises Forbidden."""
    if caller.role is Role.ADMIN:
        return node
    require_node_writer(caller)
    binding = node.status.binding
    if binding is not None and binding.node_id != caller.node_id:
        raise Forbidden(f'node "{node.name}" is bound to another tailnet machine; only that machine may write it')
    if binding is not None:
        return node
    bound = NodeBinding(node_id=caller.node_id or "", name=caller.name, bound_at=now)
    return node.model_copy(update={"status": node.status.model_copy(update={"binding": bound})})


def _empty_network_value(field: str, value: Any) -> bool:
    """_empty_network_value says whether a network field of a beat carries nothing (so the stored one stays):
    unset, "", the Go zero port, or a throughput with no measurement in it (the Go agent always sends one)."""
    if value is None or value == "":
        return True
    if field == "agent_port":
        return bool(value == 0)
    if isinstance(value, NodeThroughput):
        return value.download is None and value.upload is None and value.last_test_time is None
    return False


def merge_network(stored: NodeNetworkStatus | None, given: NodeNetworkStatus) -> NodeNetworkStatus:
    """merge_network merges a beat's network into the stored one field by field, as the Go server does (design
    §3.4): each field the beat carries non-empty replaces the stored one; the others (a Go agent's missing
    dnsName or mode) stay. An explicit empty `peers` list is a value: the node talks to no peer now. The relay
    reason belongs to the mode: a beat that carries the mode replaces the reason too, with none when it has none
    (a path back to Direct keeps no reason)."""
    update = {
        name: getattr(given, name)
        for name in given.model_fields_set
        if not _empty_network_value(name, getattr(given, name))
    }
    if "mode" in update:
        update |= {"relay_reason": given.relay_reason, "relay_message": given.relay_message}
    base = stored if stored is not None else NodeNetworkStatus()
    return base.model_copy(update=update)


def merge_beat(node: Node, beat: Heartbeat, now: datetime) -> Node:
    """merge_beat applies a full beat's facts to the Node: network field by field, capacity, allocatable,
    available and info replaced when non-empty, the agent's own conditions upserted (the control plane's are
    ignored), and lastHeartbeat set to now."""
    status = node.status
    update: dict[str, Any] = {"last_heartbeat": now}
    if beat.network is not None:
        update["network"] = merge_network(status.network, beat.network)
    for field in REPLACED_FIELDS:
        value = getattr(beat, field)
        if value:  # an empty field changes nothing (design §3.4)
            update[field] = value
    conditions = status.conditions
    for condition in beat.conditions or ():
        if condition.type not in CONTROL_PLANE_CONDITIONS:
            reason, message = condition.reason or "", condition.message or ""
            conditions = set_condition(conditions, condition.type, condition.status, reason, message, now)
    if conditions is not status.conditions:
        update["conditions"] = conditions
    # One copy of the status and one of the Node: a beat's merge runs on every full beat.
    return node.model_copy(update={"status": status.model_copy(update=update)})


@dataclass(frozen=True, slots=True)
class BeatOutcome:
    """BeatOutcome is what a beat changed: the stored Node before and after a full beat (None for an empty one),
    and the silent Nodes the leader asks this beat's agent to look at (the `Cara-Witness` answer header)."""

    before: Node | None = None
    after: Node | None = None
    # Full: the beat carried something besides a renewal (facts, or a state), as the heartbeat metric counts it.
    full: bool = False
    asked: tuple[str, ...] = ()


class NodeWrites:
    """NodeWrites applies every write to a Node with its rules; routes parse, check the caller's role, call it."""

    def __init__(
        self,
        *,
        store: Store,
        leases: LeaseTable,
        now: Callable[[], datetime],
        grace: timedelta,
        heartbeat_interval: timedelta = timedelta(seconds=10),
    ) -> None:
        self._store, self._leases, self._now, self._grace = store, leases, now, grace
        self._interval = heartbeat_interval
        # Witnesses: which fellow agent last reached each Node (from the beats' `network.witnessed`), and the
        # silent Nodes the leader's lifecycle controller wants looked at; in memory, like the leases.
        self.witnesses = WitnessBoard()
        # Asked of: node name → the silent Nodes its agent was last asked (by a beat's answer) to witness.
        self._asked_of: dict[str, tuple[str, ...]] = {}
        # Bound: node name → bound tailnet node ID (None while unbound) of every Node seen to exist; only the
        # empty beat reads it, and only to accept the machine it names. Revisions: the store's snapshot of
        # Node revisions at the last refresh. Touched: names written here since a refresh began, which that
        # refresh (reading older rows) must not overwrite.
        self._bound: dict[str, str | None] = {}
        # Addresses: node name → tailnet IP and agent port of every Node seen with an IP (peer discovery reads
        # it), and a version that changes whenever an address comes, goes or moves, so readers rebuild only then.
        self._addresses: dict[str, Address] = {}
        self.addresses_version = 0
        self._revisions: dict[str, int] = {}
        self._touched: set[str] = set()

    # ---- the binding cache

    def remember(self, node: Node) -> Node:
        """remember records the binding and address of a Node just read from or written to the store; returns it."""
        self._bound[node.name] = _bound_id(node)
        self._set_address(node.name, _address(node))
        self._touched.add(node.name)
        return node

    def forget(self, name: str) -> None:
        """forget drops a deleted Node's binding, address and lease."""
        self._bound.pop(name, None)
        self._set_address(name, None)
        self._touched.add(name)
        self._leases.forget(name)
        self.witnesses.forget(name)

    def _set_address(self, name: str, address: Address | None) -> None:
        if self._addresses.get(name) == address:
            return
        if address is None:
            del self._addresses[name]
        else:
            self._addresses[name] = address
        self.addresses_version += 1

    def known(self, name: str) -> bool:
        """known says whether Node name is in the cache (seen to exist, and not seen deleted since)."""
        return name in self._bound

    def addresses(self) -> Mapping[str, Address]:
        """addresses is node name → tailnet IP and agent port of every cached Node with an IP (read-only)."""
        return self._addresses

    async def refresh_bindings(self) -> None:
        """refresh_bindings brings the binding cache up to date with the store: the light name/revision read of
        every Node, and a decode of only the Nodes written since the last refresh (on any replica). Called by
        the lease flusher before every flush, so a released machine is refused within one flush interval."""
        touched: set[str] = set()
        self._touched = touched
        changes = await self._store.project_nodes_changed(self._revisions, _cached)
        # Gone: every cached name the store no longer holds (also one created and deleted between two refreshes).
        for name in [name for name in self._bound if name not in changes.revisions and name not in touched]:
            del self._bound[name]
            self._set_address(name, None)
            self._leases.forget(name)
            self.witnesses.forget(name)
        for name, (bound, address) in changes.changed.items():
            if name not in touched:
                self._bound[name] = bound
                self._set_address(name, address)
        self._revisions = changes.revisions

    def _cached_allows(self, caller: Caller, name: str) -> bool:
        if name not in self._bound:
            return False
        if caller.role is Role.ADMIN:
            return True
        bound = self._bound[name]
        return caller.role is Role.NODE and bound is not None and bound == caller.node_id

    async def authorize(self, caller: Caller, name: str) -> None:
        """authorize checks against the store that caller may write Node name, binding an unbound Node to it.

        For writes that do not go through a Node mutator (a project's status reported by its node). Raises
        NotFound for an unknown Node and Forbidden otherwise.
        """
        require_node_writer(caller)
        node = self.remember(await self._store.get_node(name))
        if checked_binding(node, caller, self._now()) is not node:  # unbound: bind it in a transaction
            now = self._now()
            self.remember(await self._store.update_node(name, lambda n: checked_binding(n, caller, now)))

    # ---- registration and beats

    async def register(self, caller: Caller, node: Node, *, dry_run: bool = False) -> Node:
        """register stores a new Node; an agent (node role) registers only itself: the Node is bound to its
        machine, and labels, annotations and unschedulable stay the operator's. An agent registering an existing
        Node binds it when unbound (then AlreadyExists: 409 means registered) and is refused when it is taken.
        dry_run returns the Node as it would be stored, storing nothing (AlreadyExists for a taken name)."""
        now = self._now()
        node.metadata.created_at = node.metadata.updated_at = now
        node.status = NodeStatus(state=NodeState.NOT_READY)
        if caller.role is Role.NODE:
            node.metadata.labels = node.metadata.annotations = None
            node.spec.unschedulable = False
            node.status.binding = NodeBinding(node_id=caller.node_id or "", name=caller.name, bound_at=now)
        if dry_run:
            try:
                await self._store.get_node(node.name)
            except NotFound:
                return node
            raise AlreadyExists("node", node.name)
        try:
            return self.remember(await self._store.create_node(node))
        except AlreadyExists:
            if caller.role is Role.NODE:
                self.remember(await self._store.update_node(node.name, lambda n: checked_binding(n, caller, now)))
            raise

    async def renew(self, caller: Caller, name: str) -> None:
        """renew renews the lease of a Node whose agent sent a beat that could not be used (invalid facts): none
        of it is stored, but the agent is alive, and a bug in one collector must not take the Node NotReady.
        The facts are not reconfirmed: they go stale after the grace until an accepted full beat (`LeaseTable.reject`).
        Raises NotFound and Forbidden as heartbeat does."""
        require_node_writer(caller)
        if not self._cached_allows(caller, name):
            await self.authorize(caller, name)
        self._leases.reject(name, self._now())

    async def heartbeat(self, caller: Caller, name: str, beat: Heartbeat) -> BeatOutcome:
        """heartbeat applies one beat. An empty one renews the lease in memory (authorized from the binding cache
        when it names this caller, else from the store); a full one is checked and merged in one store
        transaction. A going-away beat (state NotReady) releases the lease: NotReady now, not after the grace.
        Raises NotFound (the agent registers again) and Forbidden."""
        require_node_writer(caller)
        now = self._now()
        before: Node | None = None
        after: Node | None = None
        facts = beat.has_facts()
        if not facts:  # a renewal (or a goodbye): nothing to store
            if not self._cached_allows(caller, name):
                await self.authorize(caller, name)
        else:
            seen: list[Node] = []

            def apply(node: Node) -> Node:
                seen.append(node)
                return merge_beat(checked_binding(node, caller, now), beat, now)

            after = self.remember(await self._store.update_node(name, apply))
            before = seen[-1]
        if beat.state is NodeState.NOT_READY:
            self._leases.release(name, now)
            log.debug("goodbye of node %s: lease released at monotonic %.3f", name, time.monotonic())
        else:
            self._leases.renew(name, now, facts=facts)
        asked = tuple(self._witness_exchange(name, beat, now))
        return BeatOutcome(before=before, after=after, full=facts or not beat.is_empty(), asked=asked)

    def _witness_exchange(self, name: str, beat: Heartbeat, now: datetime) -> list[str]:
        """_witness_exchange records the witnesses a (full) beat of Node name carries and returns the silent Nodes
        its agent should look at now; only the leader wants any, so elsewhere this is a lookup of an empty list."""
        network = beat.network
        if network is not None and network.witnessed:
            self.witnesses.record(name, network.witnessed, now)
        asked = self.witnesses.ask(name, now, self._interval)
        if asked:
            self._asked_of[name] = tuple(asked)
        else:
            self._asked_of.pop(name, None)
        return asked

    def witness_asked(self, name: str) -> tuple[str, ...]:
        """witness_asked is what Node name's agent was last asked to witness, of what still wants a witness
        (peer discovery names them beside the fellows to probe)."""
        wanted = set(self.witnesses.wanted)
        return tuple(asked for asked in self._asked_of.get(name, ()) if asked in wanted)

    # ---- operator writes

    async def replace(self, name: str, given: Node, *, dry_run: bool = False) -> Node:
        """replace sets the Node's spec, labels and annotations from given; status is kept (design §3.1).
        dry_run returns the Node as it would be stored, storing nothing."""
        now = self._now()

        def apply(node: Node) -> Node:
            metadata = node.metadata.model_copy(
                update={"labels": given.metadata.labels, "annotations": given.metadata.annotations, "updated_at": now}
            )
            return node.model_copy(update={"metadata": metadata, "spec": given.spec})

        if dry_run:
            return apply(await self._store.get_node(name))
        return self.remember(await self._store.update_node(name, apply))

    async def delete(self, name: str) -> None:
        """delete removes a Node that no Project is assigned to; raises NotFound, and Conflict naming them."""
        await self._store.get_node(name)
        assigned = await self._store.list_projects(node_ref=name, phases=ASSIGNED_PHASES)
        if assigned:
            names = ", ".join(project.name for project in assigned[:5])
            raise Conflict(
                f'node "{name}" has {len(assigned)} project(s) assigned ({names}); drain it and wait for them to move'
            )
        await self._store.delete_node(name)
        self.forget(name)

    async def cordon(self, name: str) -> Node:
        """cordon marks the Node unschedulable, in one store update (so no concurrent edit of it is lost)."""
        now = self._now()

        def apply(node: Node) -> Node:
            spec = node.spec.model_copy(update={"unschedulable": True})
            metadata = node.metadata.model_copy(update={"updated_at": now})
            return node.model_copy(update={"spec": spec, "metadata": metadata})

        return self.remember(await self._store.update_node(name, apply))

    async def drain(self, name: str) -> Node:
        """drain cordons the Node and marks it Draining; the draining controller moves its Projects to Pending."""
        now = self._now()

        def apply(node: Node) -> Node:
            spec = node.spec.model_copy(update={"unschedulable": True})
            status = node.status.model_copy(update={"state": NodeState.DRAINING})
            metadata = node.metadata.model_copy(update={"updated_at": now})
            return node.model_copy(update={"spec": spec, "status": status, "metadata": metadata})

        return self.remember(await self._store.update_node(name, apply))

    async def uncordon(self, name: str) -> Node:
        """uncordon makes the Node schedulable again and ends a drain: Ready when its lease is fresh, else
        NotReady (the lifecycle controller judges it from there)."""
        now = self._now()
        lease = self._leases.get(name)
        live = lease is not None and lease.is_fresh(now, self._grace)

        def apply(node: Node) -> Node:
            spec = node.spec.model_copy(update={"unschedulable": False})
            status = node.status
            if status.state is NodeState.DRAINING:
                status = status.model_copy(update={"state": NodeState.READY if live else NodeState.NOT_READY})
            metadata = node.metadata.model_copy(update={"updated_at": now})
            return node.model_copy(update={"spec": spec, "status": status, "metadata": metadata})

        return self.remember(await self._store.update_node(name, apply))

    async def release(self, name: str) -> Node:
        """release forgets the Node's tailnet binding (the machine was rebuilt); the next agent to write binds.

        Other replicas see it at their next lease flush; from then the old machine is refused there too.
        """

        def apply(node: Node) -> Node:
            return node.model_copy(update={"status": node.status.model_copy(update={"binding": None})})

        return self.remember(await self._store.update_node(name, apply))

    # ---- reading

    def with_lease(self, node: Node) -> Node:
        """with_lease is the Node as served: status.lastHeartbeat from the in-memory lease (the stored one lags by a
        flush), status.factsConfirmedAt from the last beat that reconfirmed the facts (`facts_confirmed_at`: a
        rejected beat renews the lease but confirms nothing), and status.factsStale from the freshness rule
        (`controlplane.api.facts_stale`, this server's grace)."""
        status = node.status
        last, confirmed, stale = self._served_times(node.name, status.last_heartbeat, silent_reason(status))
        update: dict[str, Any] = {"facts_confirmed_at": confirmed, "facts_stale": stale}
        if last is not status.last_heartbeat:
            update["last_heartbeat"] = last
        return node.model_copy(update={"status": status.model_copy(update=update)})

    def with_lease_wire(self, doc: dict[str, Any]) -> dict[str, Any]:
        """with_lease_wire is with_lease on a stored Node's wire document, decoded as plain JSON (no model: a list
        of 1,000 Nodes is answered in a fraction of the time); it sets the same three status fields in doc."""
        status = doc.setdefault("status", {})
        stored = status.get("lastHeartbeat")
        stored_at = datetime.fromisoformat(stored) if isinstance(stored, str) else None
        ready = next((c for c in status.get("conditions") or () if c.get("type") == NodeConditionType.READY), None)
        silent = silent_ready_reason(ready.get("status"), ready.get("reason")) if ready is not None else None
        last, confirmed, stale = self._served_times(doc["metadata"]["name"], stored_at, silent)
        if last is not stored_at and last is not None:
            status["lastHeartbeat"] = format_time(last)
        if confirmed is not None:
            status["factsConfirmedAt"] = format_time(confirmed)
        status["factsStale"] = stale
        return doc

    def _served_times(
        self, name: str, stored: datetime | None, silent: str | None
    ) -> tuple[datetime | None, datetime | None, bool]:
        """_served_times is THE rule of with_lease: a Node's served lastHeartbeat, factsConfirmedAt and factsStale
        from its lease, its stored lastHeartbeat and its silent reason (`silent_reason`)."""
        lease = self._leases.get(name)
        last = lease.renewed_at if lease is not None and (stored is None or stored < lease.renewed_at) else stored
        confirmed = facts_confirmed_at(lease, stored)
        return last, confirmed, facts_stale(confirmed, silent, self._now(), self._grace)
