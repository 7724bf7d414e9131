"""Node history: what a full heartbeat adds to it (throughput samples, path changes), GET .../{name}/history and
GET .../{name}/availability."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from controlplane.api import Node, NodeAvailability, NodeHistory, ThroughputSample
from controlplane.store.base import NodeMutator, StoreError

from ..availability import node_availability
from ..context import CallerDep, Ctx, ServerContext
from ..identity import require_reader
from ..path_changes import path_changes
from ..problems import problem_responses
from ._common import wire

log = logging.getLogger("cara.server")

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


class Recorder:
    """Recorder wraps a heartbeat's mutator and keeps the Node it was given, to compare with what it stored."""

    def __init__(self, mutate: NodeMutator) -> None:
        self.mutate = mutate
        self.before: Node | None = None

    def __call__(self, node: Node) -> Node:
        self.before = node
        return self.mutate(node)


def new_samples(before: Node, after: Node) -> list[ThroughputSample]:
    """new_samples is the throughput measurement of after when its lastTestTime is newer than before's."""
    throughput = after.status.network.throughput if after.status.network else None
    if throughput is None or throughput.last_test_time is None:
        return []
    old = before.status.network.throughput if before.status.network else None
    if old is not None and old.last_test_time is not None and old.last_test_time >= throughput.last_test_time:
        return []
    return [
        ThroughputSample(
            time=throughput.last_test_time,
            download=throughput.download,
            upload=throughput.upload,
            bytes_used=throughput.bytes_used,
        )
    ]


async def record(context: ServerContext, before: Node | None, after: Node) -> None:
    """record appends what changed between before and after to the Node's history and counts path changes."""
    if before is None or before.status.network == after.status.network:
        return
    samples, changes = new_samples(before, after), path_changes(before, after, context.now())
    if not samples and not changes:
        return
    try:
        await context.store.append_history(
            after.name, throughput=samples, paths=changes, limit=context.settings.history_limit
        )
    except StoreError:  # the beat itself is stored; losing a history entry must not fail it (the agent would retry)
        log.exception("recording the history of node %s failed", after.name)
        return
    for change in changes:
        context.metrics.fleet.path_changed(after.name, change.peer)


@router.get("/{name}/history", responses={200: {"model": NodeHistory}, **problem_responses(404)})
async def get_history(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """history returns the Node's last throughput samples and path changes, oldest first (viewer or better)."""
    require_reader(caller)
    return wire(await context.store.get_history(name))


@router.get("/{name}/availability", responses={200: {"model": NodeAvailability}, **problem_responses(404)})
async def get_availability(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """availability answers the share of the last 24 h and 7 d the Node was Ready and each path Direct (viewer)."""
    require_reader(caller)
    await context.store.get_node(name)  # NotFound → 404
    return wire(await node_availability(context.store, name, context.now()))
