"""The collaborators every route needs, held on the app, and the request dependencies that hand them out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from controlplane.api import InvalidObject, NotStrictJSON, strict_json_loads
from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable

from .discovery import PeerDirectory
from .events import ACTOR, EventRecorder
from .identity import Caller, Identity
from .metrics import Metrics
from .nodewrites import NodeWrites
from .problems import BodyTooLarge, Problem
from .settings import Settings


@dataclass(slots=True)
class ServerContext:
    """ServerContext is built once by create_app and shared by all requests."""

    store: Store
    leases: LeaseTable
    now: Callable[[], datetime]
    identity: Identity
    settings: Settings
    metrics: Metrics
    # Events: records Events and Transitions of every stored change (an observer of store).
    events: EventRecorder
    # Writes: every write to a Node goes through it (binding check, heartbeat merge, drain, uncordon, release).
    writes: NodeWrites
    # Peers: which fellows each agent probes (peer discovery).
    peers: PeerDirectory
    # Health: loop name → why it is dead or stalled, from the process root's supervisor; empty when healthy.
    health: Callable[[], Mapping[str, str]]
    # Stopping: set as soon as the server begins to stop, so that open watches end instead of holding the stop.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


async def get_context(request: Request) -> ServerContext:
    """get_context returns the app's ServerContext (a FastAPI dependency; async, so FastAPI does not hand it to
    a worker thread on every request)."""
    context: ServerContext = request.app.state.context
    return context


async def get_caller(request: Request) -> Caller:
    """get_caller identifies the caller of this request (a FastAPI dependency); raises Unauthorized."""
    context: ServerContext = request.app.state.context
    return await identify(context, request)


async def identify(context: ServerContext, request: Request) -> Caller:
    """identify tells who sent request (raises Unauthorized) and names it as the actor of this request's Events."""
    caller = await context.identity.identify(request)
    ACTOR.set(caller.name)  # the identity that acted, for the Events this request's writes record
    return caller


async def read_body(request: Request, limit: int) -> bytes:
    """read_body returns the raw body; raises BodyTooLarge past limit without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-body, or cut off by the body timeout (limits.py): nobody hears an answer
        raise Problem(408, "the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """parse_json decodes a JSON body; raises InvalidObject saying where the syntax is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidObject([f"body: not UTF-8 text (byte {exc.start})"]) from None
    try:
        return strict_json_loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidObject([f"body: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from None
    except NotStrictJSON as exc:
        raise InvalidObject([f"body: invalid JSON: {exc}"]) from None
    except RecursionError:
        raise InvalidObject(["body: JSON nested too deeply"]) from None


async def read_json(request: Request) -> Any:
    """read_json reads and decodes the JSON body within the configured size limit."""
    context: ServerContext = request.app.state.context
    raw = await read_body(request, context.settings.max_body_bytes)
    if not raw.strip():
        raise InvalidObject(["body: is required (a JSON object)"])
    return parse_json(raw)


#: The route parameters every handler takes: the app's collaborators and the identified caller.
Ctx = Annotated[ServerContext, Depends(get_context)]
CallerDep = Annotated[Caller, Depends(get_caller)]
