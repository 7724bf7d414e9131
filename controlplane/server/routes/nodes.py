"""Node routes of design §3.1 and §3.5: CRUD, heartbeat, cordon, drain, uncordon and release.

Each handler parses, checks the caller's role and calls the NodeWrites service, which owns the rules.
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from controlplane.api import (
    API_VERSION,
    WITNESS_HEADER,
    Heartbeat,
    InvalidObject,
    Node,
    NodeList,
    PeerAssignment,
    decode_valid,
)

from ..context import CallerDep, Ctx, ServerContext, parse_json, read_body, read_json
from ..identity import Caller, Role, require_reader, require_writer
from ..nodewrites import BeatOutcome
from ..problems import problem_responses
from ..watch import NodeSource, watch_response, watch_responses
from . import history
from ._common import (
    DryRun,
    TimeoutSeconds,
    WatchFlag,
    check_path_name,
    is_dry_run,
    json_body,
    parse_selector,
    wire,
    without_status,
)

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


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
    writes = context.writes
    selector = parse_selector(label_selector)
    if watch:
        source = NodeSource(context.store, lambda node: writes.with_lease(writes.remember(node)).to_wire())
        return watch_response(source, selector, timeout_seconds, request, context.stopping)
    # The stored documents are served as plain JSON with the lease fields set (`with_lease_wire`): decoding 1,000
    # Nodes into models and encoding them again was most of a list's time.
    items: list[dict[str, Any]] = []
    for doc in await context.store.list_node_docs(labels=selector.equalities() or None):
        node = pydantic_core.from_json(doc)
        if selector.matches(node["metadata"].get("labels")):
            items.append(writes.with_lease_wire(node))
    body = {"apiVersion": API_VERSION, "kind": "NodeList", "items": items}
    return Response(pydantic_core.to_json(body), media_type="application/json")


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
    return wire(await context.writes.register(caller, node, dry_run=is_dry_run(dry_run)), 201)


@router.get("/{name}", responses={200: {"model": Node}, **problem_responses(404)})
async def get_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    require_reader(caller)
    writes = context.writes
    return wire(writes.with_lease(writes.remember(await context.store.get_node(name))))


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
    return wire(context.writes.with_lease(await context.writes.replace(name, given, dry_run=is_dry_run(dry_run))))


@router.delete("/{name}", status_code=204, responses=problem_responses(404, 409))
async def delete_node(name: str, context: Ctx, caller: CallerDep) -> Response:
    require_writer(caller)
    await context.writes.delete(name)
    return Response(status_code=204)


@router.post(
    "/{name}/heartbeat",
    status_code=204,
    responses=problem_responses(400, 403, 404, 413),
    openapi_extra=json_body(Heartbeat, required=False),
)
async def heartbeat(name: str, request: Request, context: Ctx, caller: CallerDep) -> Response:
    """heartbeat renews the Node's lease (empty body) or stores its facts too; 404 tells the agent to register.

    The answer may carry `Cara-Witness: edge1,edge3`: silent Nodes the leader asks this agent to look at. The
    fast path (controlplane/server/fastbeat.py) answers the same beats ahead of FastAPI, through the same steps
    below; this route answers whatever it hands back (every refusal, so problems render in one place)."""
    raw = await read_body(request, context.settings.max_body_bytes)
    try:
        outcome = await apply_beat(context, caller, name, raw)
    except InvalidObject:
        await context.writes.renew(caller, name)  # none of the facts is stored, but the agent is alive
        raise
    return Response(status_code=204, headers=await after_beat(context, outcome))


async def apply_beat(context: ServerContext, caller: Caller, name: str, raw: bytes) -> BeatOutcome:
    """apply_beat decodes a beat's body and applies it; every refusal (400, 403, 404) is raised before any write."""
    beat = Heartbeat() if not raw.strip() else decode_valid(Heartbeat, parse_json(raw))
    return await context.writes.heartbeat(caller, name, beat)


async def after_beat(context: ServerContext, outcome: BeatOutcome) -> dict[str, str] | None:
    """after_beat counts an applied beat, records what it changed in the Node's history, and returns the headers
    of the answer: the silent Nodes the leader wants this agent to look at (agents that do not know the header
    ignore it)."""
    context.metrics.count_heartbeat(outcome.full)
    if outcome.after is not None:
        await history.record(context, outcome.before, outcome.after)
    return {WITNESS_HEADER: ",".join(outcome.asked)} if outcome.asked else None


@router.get(
    "/{name}/peers",
    responses={200: {"model": PeerAssignment}, 304: {"description": "Not Modified"}, **problem_responses(404)},
)
async def peers(name: str, request: Request, context: Ctx, caller: CallerDep) -> Response:
    """peers is the bounded set of fellow agents Node name's agent probes, and the Nodes it is asked to witness
    (names and tailnet addresses); If-None-Match with the last ETag answers 304 while it is unchanged."""
    require_reader(caller)
    if not context.writes.known(name):
        context.writes.remember(await context.store.get_node(name))  # raises NotFound
    answer = context.peers.answer(name)
    headers = {"etag": answer.etag, "cache-control": "no-cache"}
    if request.headers.get("if-none-match") == answer.etag:
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


@router.post("/{name}/cordon", responses={200: {"model": Node}, **problem_responses(404)})
async def cordon_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """cordon marks the node unschedulable: the scheduler places no new project on it; its projects stay."""
    require_writer(caller)
    return wire(context.writes.with_lease(await context.writes.cordon(name)))


@router.post("/{name}/drain", responses={200: {"model": Node}, **problem_responses(404)})
async def drain_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """drain cordons the node and marks it Draining; the draining controller moves its projects to Pending."""
    require_writer(caller)
    return wire(context.writes.with_lease(await context.writes.drain(name)))


@router.post("/{name}/release", responses={200: {"model": Node}, **problem_responses(404)})
async def release_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """release forgets the Node's tailnet binding (e.g. the machine was rebuilt); the next agent to register binds."""
    require_writer(caller)
    return wire(context.writes.with_lease(await context.writes.release(name)))


@router.post("/{name}/uncordon", responses={200: {"model": Node}, **problem_responses(404)})
async def uncordon_node(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    """uncordon makes the node schedulable again and ends a drain."""
    require_writer(caller)
    return wire(context.writes.with_lease(await context.writes.uncordon(name)))
