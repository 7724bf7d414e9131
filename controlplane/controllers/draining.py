"""Draining: moves the Projects of every Draining Node back to Pending so the scheduler places them again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Final

from controlplane.api import EVICTABLE_PHASES, NodeState, Project
from controlplane.store.base import NodeView, Store

from ._loop import Gate, run_every
from ._projects import evict, return_to_pending
from ._writes import write_all
from .config import ControllerConfig
from .node_lifecycle import Isolation

# Reason of the Scheduled=False condition on a Project taken off a draining node.
NODE_DRAINING: Final = "NodeDraining"


def evict_from_draining(project: Project, now: datetime) -> Project:
    """evict_from_draining returns project back to Pending with reason NodeDraining."""
    node = project.status.node_ref
    return return_to_pending(project, now, reason=NODE_DRAINING, message=f"node {node} is draining")


class DrainingController:
    """DrainingController evicts Scheduled and Running Projects from Draining Nodes; it never changes a Node."""

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
        # Each Node's state, kept current without decoding the Nodes that did not change.
        self._states = NodeView(store, lambda node: node.status.state)

    async def sync_once(self) -> int:
        """sync_once runs one pass; returns how many Projects it moved back to Pending."""
        now = self._now()
        if self._isolation.isolated:
            return 0  # the control plane is cut off: a drain's moves wait until beats return
        bound = await self._store.list_projects(phases=list(EVICTABLE_PHASES))
        if not bound:
            return 0  # nothing to move: spare the list of every Node
        draining = {name for name, state in (await self._states.refresh()).items() if state == NodeState.DRAINING}
        moves = [(p.name, p.status.node_ref) for p in bound if p.status.node_ref in draining]
        results = await write_all(
            evict(self._store, name, node, now, evict_from_draining) for name, node in moves if node is not None
        )
        return sum(results)

    async def run(
        self, stop: asyncio.Event, *, gate: Gate | None = None, on_pass: Callable[[], None] | None = None
    ) -> None:
        """run calls sync_once every draining_period until stop is set."""
        await run_every("draining", self.sync_once, self._config.draining_period, stop, gate, on_pass)
