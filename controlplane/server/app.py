"""create_app: the one composition root of the control plane's HTTP application."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable

from . import problems
from .context import ServerContext
from .discovery import PeerDirectory
from .events import ACTOR, EventRecorder
from .fastbeat import FastBeat
from .identity import Identity
from .metrics import Metrics
from .nodewrites import NodeWrites
from .routes import events, history, nodes, projects, system, throughput, web
from .settings import Settings

log = logging.getLogger("cara.server")


class RequestMetrics:
    """RequestMetrics counts and times every HTTP request (a pure ASGI middleware: cheap on the beat path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            self.metrics.count_request(scope["method"], status, time.perf_counter() - started)


class ActorScope:
    """ActorScope gives each request its own ACTOR (the identity its writes' Events name), unset outside it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = ACTOR.set(None)
        try:
            await self.app(scope, receive, send)
        finally:
            ACTOR.reset(token)


class ControlPlaneApp(FastAPI):
    """ControlPlaneApp is the FastAPI app with the heartbeat fast path in front of its whole middleware stack: an
    accepted beat is answered by FastBeat (fastbeat.py), which counts it and scopes its actor as RequestMetrics and
    ActorScope do, without passing through Starlette's error and exception middleware (the beat path's largest
    per-request cost after uvicorn's own); everything else, refused beats included, goes through the full stack."""

    fast: ASGIApp | None = None

    async def full_stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """full_stack is the FastAPI app as it is without the fast path."""
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.fast or self.full_stack)(scope, receive, send)


#: Net allocations of tracked objects between two youngest-generation collections (CPython's default: 700). A full
#: beat allocates a few hundred objects, nearly all freed at once by reference counting, so at 700 the collector
#: ran every few beats to find nothing: 7 % of a full beat's CPU, measured in-process at 1k Nodes. Cyclic garbage
#: waits at most this many allocations longer.
GEN0_THRESHOLD: Final = 10_000


def freeze_startup_heap() -> None:
    """freeze_startup_heap moves every object alive at start (modules, classes, the app and its schemas) out of
    the garbage collector's reach, so a full collection scans only what the server made since: measured at
    1k Nodes, full collections otherwise took 50-180 ms about once a second, and were the p99 of beats. It also
    sets the youngest generation's threshold to GEN0_THRESHOLD (the older generations keep theirs)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)


def create_app(
    *,
    store: Store,
    now: Callable[[], datetime],
    identity: Identity,
    settings: Settings,
    leases: LeaseTable | None = None,
    health: Callable[[], Mapping[str, str]] | None = None,
) -> FastAPI:
    """create_app builds the API over its collaborators. It runs no background work: the process root
    (main.py) runs the lease flusher and the controllers beside uvicorn, and hands in `health`, which names the
    loops that are dead or stalled (none: healthy)."""
    leases = leases if leases is not None else LeaseTable()
    recorder = EventRecorder(store=store, now=now, limit=settings.event_limit, retention=settings.transition_retention)
    store.add_observer(recorder.observe)
    writes = NodeWrites(
        store=store, leases=leases, now=now, grace=settings.grace, heartbeat_interval=settings.heartbeat_interval
    )
    context = ServerContext(
        store=store,
        leases=leases,
        now=now,
        identity=identity,
        settings=settings,
        metrics=Metrics(pair_limit=settings.metrics_pair_limit, grace=settings.grace),
        events=recorder,
        writes=writes,
        peers=PeerDirectory(
            addresses=lambda: (writes.addresses_version, writes.addresses()), now=now, witness=writes.witness_asked
        ),
        health=health if health is not None else dict,
    )

    app = ControlPlaneApp(
        title="Caravanserai control plane",
        version="v1",
        description="The caravanserai/v1 API: Nodes, Projects, heartbeats. Errors are RFC 9457 problem documents.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    app.fast = FastBeat(app.full_stack, context)
    problems.install(app)

    app.add_middleware(ActorScope)
    app.add_middleware(RequestMetrics, metrics=context.metrics)
    app.include_router(system.router)
    app.include_router(nodes.router)
    app.include_router(history.router)
    app.include_router(events.router)
    app.include_router(projects.router)
    app.include_router(throughput.router)
    app.include_router(web.router)
    return app
