"""Node history: what a full heartbeat adds to it (throughput samples, path changes) and GET .../{name}/history."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from controlplane.api import CONTROL_PLANE_PEER, NetworkMode, Node, NodeHistory, PathChange, ThroughputSample
from controlplane.store.base import NodeMutator, StoreError

from ..context import CallerDep, Ctx, ServerContext
from ..identity import require_reader
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


def _modes(node: Node) -> dict[str, NetworkMode | None]:
    network = node.status.network
    if network is None:
        return {}
    modes: dict[str, NetworkMode | None] = {peer.name: peer.mode for peer in network.peers or ()}
    modes[CONTROL_PLANE_PEER] = network.mode
    return modes


def path_changes(before: Node, after: Node, now: datetime) -> list[PathChange]:
    """path_changes lists the paths of after whose known mode differs from before's (unknown there counts too).

    The path to the control plane comes first, then the peers in the order after reports them. A path whose
    mode becomes unknown (idle) is not a change; when it is known again, it is a change from unknown.
    """
    network = after.status.network
    if network is None:
        return []
    old = _modes(before)
    current = [(CONTROL_PLANE_PEER, network.mode, network.derp_region, network.latency_ms)]
    current += [(peer.name, peer.mode, peer.derp_region, peer.latency_ms) for peer in network.peers or ()]
    return [
        PathChange(
            time=now,
            peer=peer,
            from_mode=old.get(peer),
            to_mode=mode,
            derp_region=region if mode is NetworkMode.DERP else None,
            latency_ms=latency,
        )
        for peer, mode, region, latency in current
        if mode is not None and old.get(peer) is not mode
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
