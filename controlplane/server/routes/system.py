"""System routes: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from controlplane.api import NodeState, ProjectPhase

from ..context import Ctx

router = APIRouter(tags=["system"])


@router.get("/api/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "OK"


@router.get("/metrics", response_class=Response)
async def metrics(context: Ctx) -> Response:
    counts = dict.fromkeys(NodeState, 0)
    for node in await context.metrics.fleet.scrape(context.store, context.leases, context.now()):
        if node.state is not None:
            counts[node.state] += 1
    for state, count in counts.items():
        context.metrics.nodes.labels(state.value).set(count)
    phases = dict.fromkeys(ProjectPhase, 0)
    for project in await context.store.list_projects():
        if project.status.phase is not None:
            phases[project.status.phase] += 1
    for phase, count in phases.items():
        context.metrics.projects.labels(phase.value).set(count)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
