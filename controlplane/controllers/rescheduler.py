"""Rescheduler: frees Projects of long-NotReady Nodes, forces stuck terminations, deletes Terminated rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Final

from controlplane.api import (
    CONTROL_LINK_DOWN,
    CONTROL_PLANE_ISOLATED,
    EVICTABLE_PHASES,
    ConditionStatus,
    Node,
    Project,
    ProjectPhase,
    find_condition,
)
from controlplane.store.base import Conflict, NodeView, NotFound, Store

from ._loop import Gate, run_every
from ._projects import evict, require_phase, return_to_pending, with_condition
from ._writes import write_all
from .config import ControllerConfig, format_duration
from .node_lifecycle import READY, Isolation

# The Project condition the server sets (True) when a DELETE starts termination.
TERMINATING: Final = "Terminating"

# Reasons.
NODE_NOT_READY: Final = "NodeNotReady"
TERMINATION_TIMEOUT: Final = "TerminationTimeout"


def not_ready_since(node: Node) -> datetime | None:
    """not_ready_since is when node's Ready condition left True, or None while it is True (or unset).

    Ready is Unknown for a node that never beat and False after a timeout or a shutdown; both count.
    """
    ready = find_condition(node.status.conditions, READY)
    if ready is None or ready.status == ConditionStatus.TRUE:
        return None
    return ready.last_transition_time


def not_ready(node: Node) -> tuple[datetime | None, str | None]:
    """not_ready is (not_ready_since, the Ready condition's reason): what the rescheduler decides from."""
    ready = find_condition(node.status.conditions, READY)
    return not_ready_since(node), ready.reason if ready is not None else None


def reschedule_due(
    since: datetime | None,
    reason: str | None,
    now: datetime,
    *,
    after: timedelta,
    control_link_limit: timedelta,
    resumed_at: datetime | None,
) -> bool:
    """reschedule_due decides whether the Projects of a Node NotReady since `since` for `reason` go back to Pending.

    ControlPlaneIsolated never moves them (the fault is the control plane's own). ControlLinkDown (a fellow agent
    reached the Node within the grace) waits control_link_limit instead of `after`. The wait counts from the end of
    the last isolation when that is later (resumed_at), so a Node still silent when beats return gets a full wait.
    """
    if since is None or reason == CONTROL_PLANE_ISOLATED:
        return False
    start = max(since, resumed_at) if resumed_at is not None else since
    return overdue(start, now, control_link_limit if reason == CONTROL_LINK_DOWN else after)


def terminating_since(project: Project) -> datetime | None:
    """terminating_since is when termination started: the Terminating condition's lastTransitionTime,
    or updatedAt when the condition is missing (the phase change then was the last write)."""
    condition = find_condition(project.status.conditions, TERMINATING)
    if condition is not None and condition.last_transition_time is not None:
        return condition.last_transition_time
    return project.metadata.updated_at


def overdue(since: datetime | None, now: datetime, limit: timedelta) -> bool:
    """overdue reports whether more than limit has passed since since (strictly; never when since is unset)."""
    return since is not None and now - since > limit


def evict_from_not_ready(project: Project, now: datetime, *, after: timedelta) -> Project:
    """evict_from_not_ready returns project back to Pending with reason NodeNotReady."""
    node = project.status.node_ref
    return return_to_pending(
        project,
        now,
        reason=NODE_NOT_READY,
        message=f"node {node} has been NotReady for more than {format_duration(after)}",
    )


def force_terminated(project: Project, now: datetime, *, timeout: timedelta) -> Project:
    """force_terminated returns project in phase Terminated, its Terminating condition saying why."""
    return with_condition(
        project,
        now,
        type_=TERMINATING,
        status=ConditionStatus.FALSE,
        reason=TERMINATION_TIMEOUT,
        message=f"forced to Terminated: still Terminating after {format_duration(timeout)}",
        phase=ProjectPhase.TERMINATED,
    )


class Rescheduler:
    """Rescheduler runs the three slow clean-ups of Projects; each step is idempotent."""

    def __init__(
        self,
        *,
        store: Store,
        now: Callable[[], datetime],
        config: ControllerConfig,
        isolation: Isolation | None = None,
    ) -> None:
        self._store = store
        self._now = now
        self._config = config
        self._isolation = isolation if isolation is not None else Isolation()
        # When each Node's Ready left True and why, kept current without decoding the Nodes that did not change.
        self._not_ready = NodeView(store, not_ready)

    async def sync_once(self) -> tuple[int, int, int]:
        """sync_once runs one pass; returns (moved to Pending, forced Terminated, deleted).

        Deletion runs before forcing, so a project forced to Terminated stays visible until the next pass.
        """
        now = self._now()
        deleted = await self._delete_terminated()
        forced = await self._force_stuck(now)
        moved = await self._free_not_ready(now)
        return moved, forced, deleted

    async def _free_not_ready(self, now: datetime) -> int:
        config, isolation = self._config, self._isolation
        if isolation.isolated:
            return 0  # the control plane is the one cut off: nothing moves until beats return
        bound = await self._store.list_projects(phases=list(EVICTABLE_PHASES))
        if not bound:
            return 0  # nothing to free: spare the list of every Node
        states = await self._not_ready.refresh()
        limits = {
            name: config.control_link_limit if reason == CONTROL_LINK_DOWN else config.reschedule_after
            for name, (since, reason) in states.items()
            if reschedule_due(
                since,
                reason,
                now,
                after=config.reschedule_after,
                control_link_limit=config.control_link_limit,
                resumed_at=isolation.ended_at,
            )
        }
        moves = [(p.name, p.status.node_ref) for p in bound if p.status.node_ref in limits]
        results = await write_all(
            evict(self._store, name, node, now, partial(evict_from_not_ready, after=limits[node]))
            for name, node in moves
            if node is not None
        )
        return sum(results)

    async def _force_stuck(self, now: datetime) -> int:
        timeout = self._config.terminating_timeout
        stuck = [
            project.name
            for project in await self._store.list_projects(phases=[ProjectPhase.TERMINATING])
            if overdue(terminating_since(project), now, timeout)
        ]

        def force(current: Project) -> Project:
            require_phase(current, (ProjectPhase.TERMINATING,))
            return force_terminated(current, now, timeout=timeout)

        async def write(name: str) -> bool:
            try:
                await self._store.update_project(name, force)
            except (Conflict, NotFound):
                return False  # finished or deleted since the list
            return True

        return sum(await write_all(write(name) for name in stuck))

    async def _delete_terminated(self) -> int:
        async def delete(name: str) -> bool:
            try:
                await self._store.delete_project(name)
            except NotFound:
                return False
            return True

        done = await self._store.list_projects(phases=[ProjectPhase.TERMINATED])
        return sum(await write_all(delete(project.name) for project in done))

    async def run(
        self, stop: asyncio.Event, *, gate: Gate | None = None, on_pass: Callable[[], None] | None = None
    ) -> None:
        """run calls sync_once every rescheduler_period until stop is set."""
        await run_every("rescheduler", self.sync_once, self._config.rescheduler_period, stop, gate, on_pass)
