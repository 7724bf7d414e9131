"""Node routes of design §3.1 and §3.5: CRUD, heartbeat, drain and uncordon."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from controlplane.api import (
    CONTROL_PLANE_CONDITIONS,
    Heartbeat,
    InvalidObject,
    Node,
    NodeBinding,
    NodeList,
    NodeState,
    NodeStatus,
    ProjectPhase,
    decode_valid,
    set_condition,
)
from controlplane.store.base import AlreadyExists, Conflict, NodeMutator

from ..context import CallerDep, Ctx, ServerContext, parse_json, read_body, read_json
from ..identity import Caller, Forbidden, Role, require_reader, require_writer
from ..problems import problem_responses
from ..watch import NodeSource, watch_response, watch_responses
from . import history
from ._common import (
    DryRun,
    TimeoutSeconds,
    WatchFlag,
    check_path_name,
    exists,
    is_dry_run,
    json_body,
    parse_selector,
    wire,
    without_status,
)

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


#: Phases in which a Project occupies its Node.
ASSIGNED_PHASES = (ProjectPhase.SCHEDULED, ProjectPhase.RUNNING, ProjectPhase.TERMINATING)


def _remember(context: ServerContext, node: Node) -> None:
    binding = node.status.binding
    context.bindings[node.name] = binding.node_id if binding else None


def _bind_to(caller: Caller, now: datetime) -> NodeMutator:
    """_bind_to returns a mutator binding an unbound Node to the caller's tailnet machine."""

    def bind(node: Node) -> Node:
        binding = node.status.binding
        if binding is not None and binding.node_id != caller.node_id:
            raise Forbidden(f'node "{node.name}" is bound to another tailnet machine; only that machine may write it')
        if binding is not None:
            return node
        bound = NodeBinding(node_id=caller.node_id or "", name=caller.name, bound_at=now)
        return node.model_copy(update={"status": node.status.model_copy(update={"binding": bound})})

    return bind


async def authorize_node_write(context: ServerContext, caller: Caller, name: str) -> None:
    """authorize_node_write lets an admin write any Node's status, and a node only the Node bound to it.

    A Node nobody is bound to yet (pre-registered by an operator) is bound to the first node-role caller.
    Raises NotFound for an unknown Node and Forbidden otherwise.
    """
    if caller.role is Role.ADMIN:
        if name not in context.bindings:
            _remember(context, await context.store.get_node(name))
        return
    if caller.role is not Role.NODE:
        raise Forbidden(f"{caller.role} {caller.name!r} may not write node status; a node or admin role is needed")
    if name not in context.bindings:
        _remember(context, await context.store.get_node(name))
    bound = context.bindings[name]
    if bound == caller.node_id:
        return
    if bound is not None:
        raise Forbidden(f'node "{name}" is bound to another tailnet machine; only that machine may write it')
    _remember(context, await context.store.update_node(name, _bind_to(caller, context.now())))


def _with_lease(node: Node, context: ServerContext) -> Node:
    """_with_lease shows the in-memory lease as status.lastHeartbeat (the stored one lags by a flush)."""
    lease = context.leases.get(node.name)
    if lease is None or (node.status.last_heartbeat and node.status.last_heartbeat >= lease.renewed_at):
        return node
    status = node.status.model_copy(update={"last_heartbeat": lease.renewed_at})
    return node.model_copy(update={"status": status})


@router.get("", responses={**watch_responses(NodeList), **problem_responses(400)})
async def list_nodes(
    request: Request,
    context: Ctx,
    caller: CallerDep,
    label_selector: Annotated[str | None, Query(alias="labelSelector")] = None,
    watch: WatchFlag = False,
    timeout_seconds: TimeoutSeconds = None,
) -> Response:
    """list answers a NodeList; with watch=true, a stream of events instead (controlplane.server.watch)."""
    require_reader(caller)
    selector = parse_selector(label_selector)
    if watch:
        source = NodeSource(context.store, lambda node: _with_lease(node, context).to_wire())
        return watch_response(source, selector, timeout_seconds, request, context.stopping)
    nodes = [
        node
        for node in await context.store.list_nodes(labels=selector.equalities() or None)
        if selector.matches(node.metadata.labels)
    ]
    for node in nodes:
        _remember(context, node)
    return wire(NodeList(items=[_with_lease(node, context) for node in nodes]))


@router.post(
    "",
    status_code=201,
    responses={201: {"model": Node}, **problem_responses(400, 409, 413)},
    openapi_extra=json_body(Node),
)
async def create_node(request: Request, context: Ctx, caller: CallerDep, dry_run: DryRun = None) -> JSONResponse:
    """create registers a Node. An agent (node role) registers only itself: the Node is bound to its machine,
    and labels, annotations and unschedulable stay the operator's (not taken from the agent)."""
    if caller.role is not Role.NODE:
        require_writer(caller)
    node = decode_valid(Node, without_status(await read_json(request)))
    now = context.now()
    node.metadata.created_at = node.metadata.updated_at = now
    node.status = NodeStatus(state=NodeState.NOT_READY)
    if caller.role is Role.NODE:
        node.metadata.labels = node.metadata.annotations = None
        node.spec.unschedulable = False
        node.status.binding = NodeBinding(node_id=caller.node_id or "", name=caller.name, bound_at=now)
    if is_dry_run(dry_run):
        if await exists(context.store.get_node, node.name):
            raise AlreadyExists("node", node.name)
        return wire(node, 201)
    try:
        created = await context.store.create_node(node)
    except AlreadyExists:
        if caller.role is Role.NODE:  # an agent registering again: bind a pre-registered Node, refuse a taken one
            await authorize_node_write(context, caller, node.name)
        raise
    _remember(context, created)
    return wire(created, 201)


@router.get("/{name}", responses={200: {"model": Node}, **problem_responses(404)})
async def get_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    require_reader(caller)
    node = await context.store.get_node(name)
    _remember(context, node)
    return wire(_with_lease(node, context))


@router.put(
    "/{name}", responses={200: {"model": Node}, **problem_responses(400, 404, 413)}, openapi_extra=json_body(Node)
)
async def replace_node(
    name: str, request: Request, context: Ctx, caller: CallerDep, dry_run: DryRun = None
) -> JSONResponse:
    require_writer(caller)
    body = without_status(await read_json(request))
    check_path_name(body, name)
    if isinstance(body, dict) and "metadata" not in body:
        body = {**body, "metadata": {"name": name}}
    given = decode_valid(Node, body)
    now = context.now()

    def replace(node: Node) -> Node:
        metadata = node.metadata.model_copy(
            update={"labels": given.metadata.labels, "annotations": given.metadata.annotations, "updated_at": now}
        )
        return node.model_copy(update={"metadata": metadata, "spec": given.spec})

    if is_dry_run(dry_run):
        return wire(_with_lease(replace(await context.store.get_node(name)), context))
    return wire(_with_lease(await context.store.update_node(name, replace), context))


@router.delete("/{name}", status_code=204, responses=problem_responses(404, 409))
async def delete_node(name: str, context: Ctx, caller: CallerDep) -> Response:
    require_writer(caller)
    await context.store.get_node(name)
    assigned = await context.store.list_projects(node_ref=name, phases=ASSIGNED_PHASES)
    if assigned:
        names = ", ".join(project.name for project in assigned[:5])
        raise Conflict(
            f'node "{name}" has {len(assigned)} project(s) assigned ({names}); drain it and wait for them to move'
        )
    await context.store.delete_node(name)
    context.leases.forget(name)
    context.bindings.pop(name, None)
    return Response(status_code=204)


def _merge_beat(beat: Heartbeat, context: ServerContext) -> NodeMutator:
    now = context.now()

    def merge(node: Node) -> Node:
        status = node.status.model_copy()
        for field in ("network", "capacity", "allocatable", "available", "info"):
            value = getattr(beat, field)
            if value:  # an empty field changes nothing (design §3.4)
                setattr(status, field, value)
        conditions = status.conditions
        for condition in beat.conditions or ():
            if condition.type not in CONTROL_PLANE_CONDITIONS:
                conditions = set_condition(
                    conditions,
                    condition.type,
                    condition.status,
                    condition.reason or "",
                    condition.message or "",
                    now,
                )
        status.conditions = conditions
        status.last_heartbeat = now
        return node.model_copy(update={"status": status})

    return merge


@router.post(
    "/{name}/heartbeat",
    status_code=204,
    responses=problem_responses(400, 404, 413),
    openapi_extra=json_body(Heartbeat, required=False),
)
async def heartbeat(name: str, request: Request, context: Ctx, caller: CallerDep) -> Response:
    raw = await read_body(request, context.settings.max_body_bytes)
    try:
        beat = Heartbeat() if not raw.strip() else decode_valid(Heartbeat, parse_json(raw))
    except InvalidObject:
        # None of the facts are stored, but the agent is alive: a bug in one collector must not take a Node NotReady.
        await authorize_node_write(context, caller, name)
        context.leases.renew(name, context.now())
        raise
    await authorize_node_write(context, caller, name)  # 404 tells the agent to register again
    now = context.now()
    if beat.is_empty():
        context.metrics.heartbeats.labels("empty").inc()
        context.leases.renew(name, now)
        return Response(status_code=204)
    context.metrics.heartbeats.labels("full").inc()
    if not beat.model_copy(update={"state": None}).is_empty():  # facts to store, not only a goodbye
        merge = history.Recorder(_merge_beat(beat, context))
        after = await context.store.update_node(name, merge)
        await history.record(context, merge.before, after)
    if beat.state is NodeState.NOT_READY:  # the agent is going away: NotReady now, not after the grace
        context.leases.release(name, now)
    else:
        context.leases.renew(name, now)
    return Response(status_code=204)


@router.post("/{name}/drain", responses={200: {"model": Node}, **problem_responses(404)})
async def drain_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """drain cordons the node and marks it Draining; the draining controller moves its projects to Pending."""
    require_writer(caller)
    now = context.now()

    def drain(node: Node) -> Node:
        spec = node.spec.model_copy(update={"unschedulable": True})
        status = node.status.model_copy(update={"state": NodeState.DRAINING})
        metadata = node.metadata.model_copy(update={"updated_at": now})
        return node.model_copy(update={"spec": spec, "status": status, "metadata": metadata})

    return wire(_with_lease(await context.store.update_node(name, drain), context))


@router.post("/{name}/release", responses={200: {"model": Node}, **problem_responses(404)})
async def release_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """release forgets the Node's tailnet binding (e.g. the machine was rebuilt); the next agent to register binds."""
    require_writer(caller)

    def release(node: Node) -> Node:
        return node.model_copy(update={"status": node.status.model_copy(update={"binding": None})})

    node = await context.store.update_node(name, release)
    _remember(context, node)
    return wire(_with_lease(node, context))


@router.post("/{name}/uncordon", responses={200: {"model": Node}, **problem_responses(404)})
async def uncordon_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """uncordon makes the node schedulable again and ends a drain."""
    require_writer(caller)
    now = context.now()
    lease = context.leases.get(name)
    live = lease is not None and lease.is_fresh(now, context.settings.grace)

    def uncordon(node: Node) -> Node:
        spec = node.spec.model_copy(update={"unschedulable": False})
        status = node.status
        if status.state is NodeState.DRAINING:
            status = status.model_copy(update={"state": NodeState.READY if live else NodeState.NOT_READY})
        metadata = node.metadata.model_copy(update={"updated_at": now})
        return node.model_copy(update={"spec": spec, "status": status, "metadata": metadata})

    return wire(_with_lease(await context.store.update_node(name, uncordon), context))
