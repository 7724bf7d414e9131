"""Events and transitions: what the control plane records when a Node or Project changes, and who made it change.

The store tells the recorder of every create and update (Store.add_observer) with the object before and after, in
the writer's task; the rules here turn the difference into Events (kubectl-like, bounded by count) and Transitions
(Ready / Direct, kept for availability). Nothing is written unless something changed, so a heartbeat that changes
nothing costs no write. The identity that acted is the caller of the request that wrote (`ACTOR`, set when a
request's caller is identified); a controller's own decision has none.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, Final

from controlplane.api import (
    CONTROL_PLANE_PEER,
    Condition,
    ConditionStatus,
    Event,
    EventSource,
    EventType,
    NetworkMode,
    Node,
    NodeConditionType,
    NodeNetworkStatus,
    NodeState,
    ObjectMeta,
    ObjectReference,
    PathChange,
    PeerPath,
    Project,
    ProjectPhase,
    Transition,
)
from controlplane.store.base import Store, StoreError

from .path_changes import path_changes

log = logging.getLogger("cara.server")

#: The tailnet identity (login name, tag or Node name) of the request being served; None outside requests.
ACTOR: ContextVar[str | None] = ContextVar("cara_actor", default=None)
#: The component named as every Event's source.
COMPONENT: Final = "cara-server"
#: How often transitions older than the retention are pruned (at the first write after this long).
PRUNE_EVERY: Final = timedelta(hours=1)

# Reasons of the Events recorded here (CamelCase, as Kubernetes names them).
REGISTERED: Final = "Registered"
NODE_READY: Final = "NodeReady"
NODE_NOT_READY: Final = "NodeNotReady"
CORDONED: Final = "Cordoned"
UNCORDONED: Final = "Uncordoned"
DRAINING: Final = "Draining"
PATH_CHANGED: Final = "PathChanged"
SCHEDULED: Final = "Scheduled"
FAILED_SCHEDULING: Final = "FailedScheduling"
RESCHEDULED: Final = "Rescheduled"
#: The isolation guard (kind ControlPlane): most Nodes went silent at once, so the fault is taken to be ours.
ISOLATED: Final = "ControlPlaneIsolated"
ISOLATED_MESSAGE: Final = (
    "most Nodes went silent at once: the control plane takes itself to be cut off and holds rescheduling and drain"
    " moves until heartbeats return"
)
RECONNECTED: Final = "ControlPlaneReconnected"
RECONNECTED_MESSAGE: Final = "heartbeats are back: rescheduling and drain moves resume"
#: The Project condition the scheduler sets (False with the reason while a Project fits nowhere).
SCHEDULED_CONDITION: Final = "Scheduled"
#: Project phases whose entry is a Warning.
_BAD_PHASES: Final = frozenset({ProjectPhase.FAILED})


def node_subject(name: str) -> str:
    """node_subject is the transition subject of a Node's Ready state."""
    return f"node/{name}"


def path_subject(node: str, peer: str) -> str:
    """path_subject is the transition subject of the path from node to peer (peer "cara-server": the control plane)."""
    return f"path/{node}/{peer}"


def _find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or () if c.type == type_), None)


def _said(condition: Condition | None) -> tuple[ConditionStatus, str] | None:
    return None if condition is None else (condition.status, condition.reason or "")


class _Draft:
    """_Draft collects one write's events and transitions."""

    def __init__(self, kind: str, name: str, now: datetime, actor: str | None) -> None:
        self.kind, self.name, self.now, self.actor = kind, name, now, actor
        self.events: list[Event] = []
        self.transitions: list[Transition] = []

    def event(self, type_: EventType, reason: str, message: str) -> None:
        suffix = secrets.token_hex(8)
        self.events.append(
            Event(
                metadata=ObjectMeta(name=f"{self.name[: 253 - 17]}.{suffix}", created_at=self.now),
                involved_object=ObjectReference(kind=self.kind, name=self.name),
                type=type_,
                reason=reason,
                message=message,
                source=EventSource(component=COMPONENT),
                actor=self.actor,
                first_timestamp=self.now,
                last_timestamp=self.now,
            )
        )

    def transition(self, subject: str, good: bool) -> None:
        self.transitions.append(Transition(subject=subject, time=self.now, good=good))


def _path_text(change: PathChange, after: Node) -> str:
    def mode(value: NetworkMode | None, region: str | None = None) -> str:
        if value is None:
            return "unknown"
        return f"DERP({region})" if value is NetworkMode.DERP and region else value.value

    text = f"{after.name} → {change.peer}: {mode(change.from_mode)} → {mode(change.to_mode, change.derp_region)}"
    network = after.status.network
    said: NodeNetworkStatus | PeerPath | None = network
    if network is not None and change.peer != CONTROL_PLANE_PEER:
        said = next((p for p in (network.peers or []) if p.name == change.peer), None)
    if change.to_mode is not NetworkMode.DIRECT and said is not None and said.relay_reason:
        text += f" ({said.relay_reason}: {said.relay_message or ''})".replace(": )", ")")
    return text


def node_draft(before: Node | None, after: Node, now: datetime, actor: str | None) -> _Draft:
    """node_draft is what a Node write records: registration, Ready and other condition transitions, cordon and
    drain, and path changes (each a Transition of its subject too)."""
    draft = _Draft("Node", after.name, now, actor)
    if (
        before is not None
        and before.spec is after.spec
        and before.status.conditions is after.status.conditions
        and before.status.state is after.status.state
        and before.status.network == after.status.network
    ):
        return draft  # a beat that repeats its facts (the merge keeps the very objects it did not change): no news
    if before is None:
        draft.event(EventType.NORMAL, REGISTERED, f"Node {after.name} registered")
    old_status = before.status if before is not None else None
    old_ready = _find(old_status.conditions if old_status else None, NodeConditionType.READY)
    new_ready = _find(after.status.conditions, NodeConditionType.READY)
    if new_ready is not None and _said(new_ready) != _said(old_ready):
        good = new_ready.status is ConditionStatus.TRUE
        if old_ready is None and not good:
            pass  # a new Node's first verdict (never heard from yet) is not a transition; the Registered event says it
        elif good:
            draft.event(EventType.NORMAL, NODE_READY, f"Node {after.name} is Ready: {new_ready.message or ''}".strip())
        else:
            draft.event(
                EventType.WARNING,
                NODE_NOT_READY,
                f"Node {after.name} is NotReady ({new_ready.reason}): {new_ready.message or ''}".rstrip(": "),
            )
        if old_ready is None or (old_ready.status is ConditionStatus.TRUE) != good:
            draft.transition(node_subject(after.name), good)
    for condition in after.status.conditions or ():
        if condition.type == NodeConditionType.READY:
            continue
        old = _find(old_status.conditions if old_status else None, condition.type)
        was_bad = old is not None and old.status is ConditionStatus.TRUE
        bad = condition.status is ConditionStatus.TRUE
        if bad == was_bad:
            continue  # only becoming True (pressure, relayed, offline) or ceasing to be is news; Unknown ↔ False is not
        draft.event(
            EventType.WARNING if bad else EventType.NORMAL,
            condition.reason or condition.type,
            f"{condition.type} is {condition.status.value}: {condition.message or ''}".rstrip(": "),
        )
    was_cordoned = before.spec.unschedulable if before is not None else False
    if after.spec.unschedulable != was_cordoned:
        if after.spec.unschedulable:
            draft.event(EventType.NORMAL, CORDONED, f"Node {after.name} cordoned: no new Projects go to it")
        else:
            draft.event(EventType.NORMAL, UNCORDONED, f"Node {after.name} uncordoned: schedulable again")
    if after.status.state is NodeState.DRAINING and (old_status is None or old_status.state is not NodeState.DRAINING):
        draft.event(EventType.NORMAL, DRAINING, f"Node {after.name} is draining: its Projects go back to Pending")
    if before is not None and before.status.network != after.status.network:
        for change in path_changes(before, after, now):
            good = change.to_mode is NetworkMode.DIRECT
            if change.from_mode is not None or not good:  # a path first found Direct is no news
                draft.event(EventType.NORMAL if good else EventType.WARNING, PATH_CHANGED, _path_text(change, after))
            draft.transition(path_subject(after.name, change.peer), good)
    return draft


def _latest(conditions: Sequence[Condition] | None) -> Condition | None:
    """_latest is the condition that changed last (what a phase change's message quotes)."""
    dated = [(c.last_transition_time, i, c) for i, c in enumerate(conditions or ()) if c.last_transition_time]
    return max(dated, key=lambda entry: (entry[0], entry[1]))[2] if dated else None


def project_draft(before: Project | None, after: Project, now: datetime, actor: str | None) -> _Draft:
    """project_draft is what a Project write records: phase changes (scheduled to, rescheduled from, failed) and
    a scheduling failure's reason when it changes."""
    draft = _Draft("Project", after.name, now, actor)
    old_phase = before.status.phase if before is not None else None
    new_phase, node = after.status.phase, after.status.node_ref
    why = _latest(after.status.conditions)
    detail = f" ({why.reason}: {why.message})" if why is not None and why.reason and why.message else ""
    if new_phase != old_phase and new_phase is not None:
        old_node = before.status.node_ref if before is not None else None
        if new_phase is ProjectPhase.SCHEDULED:
            draft.event(EventType.NORMAL, SCHEDULED, f"Project {after.name} scheduled to Node {node}")
        elif new_phase is ProjectPhase.PENDING and old_phase is not None:
            draft.event(
                EventType.WARNING,
                RESCHEDULED,
                f"Project {after.name} back to Pending from {old_phase.value}"
                + (f" on Node {old_node}" if old_node else "")
                + detail,
            )
        elif old_phase is not None or new_phase is not ProjectPhase.PENDING:
            type_ = EventType.WARNING if new_phase in _BAD_PHASES else EventType.NORMAL
            draft.event(type_, new_phase.value, f"Project {after.name} is {new_phase.value}" + detail)
    if new_phase is ProjectPhase.PENDING:
        old_why = _find(before.status.conditions if before else None, SCHEDULED_CONDITION)
        new_why = _find(after.status.conditions, SCHEDULED_CONDITION)
        if new_why is not None and new_why.status is ConditionStatus.FALSE:
            said = (new_why.status, new_why.reason, new_why.message)
            if old_why is None or said != (old_why.status, old_why.reason, old_why.message):
                draft.event(EventType.WARNING, FAILED_SCHEDULING, new_why.message or new_why.reason or "")
    return draft


class EventFeed:
    """EventFeed is the watch Source of Events (controlplane.server.watch): first the newest `first` kept Events
    about kind/name, then each one stored after, read through Store.events_after. An Event is never changed, so
    the feed is append-only: each Event is ADDED once, never MODIFIED or DELETED (trimming is not a deletion)."""

    append_only = True

    def __init__(self, store: Store, *, kind: str | None, name: str | None, first: int) -> None:
        self._store, self._kind, self._name, self._first = store, kind, name, first
        self._cursor: int | None = None
        # Names of the first answer: an Event stored between taking the cursor and listing is in both.
        self._listed: set[str] = set()

    async def changes(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        if self._cursor is None:
            _, self._cursor = await self._store.events_after(None)
            found = await self._store.list_events(kind=self._kind, name=self._name, limit=self._first)
            self._listed = {event.metadata.name for event in found}
            return {event.metadata.name: event.to_wire() for event in found}, []
        found, self._cursor = await self._store.events_after(self._cursor, kind=self._kind, name=self._name)
        fresh = {event.metadata.name: event.to_wire() for event in found if event.metadata.name not in self._listed}
        self._listed.clear()
        return fresh, []


class EventRecorder:
    """EventRecorder is the store observer that records Events and Transitions; `record` takes any others."""

    def __init__(
        self, *, store: Store, now: Callable[[], datetime], limit: int, retention: timedelta = timedelta(days=8)
    ) -> None:
        self._store, self._now, self.limit, self.retention = store, now, limit, retention
        self._pruned: datetime | None = None
        # The isolation guard as last recorded; None before the first judgement (which, if clear, is no news).
        self._isolated: bool | None = None
        # Event writes under way that no caller awaits (isolation's), kept so they are not collected mid-write.
        self._writing: set[asyncio.Task[None]] = set()

    async def observe(self, before: Node | Project | None, after: Node | Project) -> None:
        """observe records what one stored write changed (Store.add_observer)."""
        now, actor = self._now(), ACTOR.get()
        if isinstance(after, Node):
            draft = node_draft(before if isinstance(before, Node) else None, after, now, actor)
        else:
            draft = project_draft(before if isinstance(before, Project) else None, after, now, actor)
        await self.record(draft.events, draft.transitions)

    async def record(self, events: Sequence[Event], transitions: Sequence[Transition] = ()) -> None:
        """record stores events and transitions; a failure is logged, never raised (the write itself is done)."""
        if not events and not transitions:
            return
        try:
            if events:
                await self._store.append_events(events, limit=self.limit)
            if transitions:
                await self._store.append_transitions(transitions)
                now = self._now()
                if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
                    self._pruned = now
                    await self._store.prune_transitions(now - self.retention)
        except StoreError:
            log.exception("recording %d events and %d transitions failed", len(events), len(transitions))

    def control_plane_event(self, type_: EventType, reason: str, message: str) -> Event:
        """control_plane_event is an Event about the control plane itself (kind ControlPlane, name cara-server)."""
        draft = _Draft("ControlPlane", CONTROL_PLANE_PEER, self._now(), ACTOR.get())
        draft.event(type_, reason, message)
        return draft.events[0]

    def isolation(self, isolated: bool) -> None:
        """isolation is told the isolation guard's state after each lifecycle pass (the controller's judgement that
        most Nodes went silent at once) and records an Event when it turns; repeating the current state, or a first
        judgement that all is well, records nothing. Called from the controllers' loop: the write runs as a task."""
        if isolated == self._isolated or (self._isolated is None and not isolated):
            self._isolated = isolated
            return
        self._isolated = isolated
        if isolated:
            event = self.control_plane_event(EventType.WARNING, ISOLATED, ISOLATED_MESSAGE)
        else:
            event = self.control_plane_event(EventType.NORMAL, RECONNECTED, RECONNECTED_MESSAGE)
        task = asyncio.get_running_loop().create_task(self.record([event]))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
