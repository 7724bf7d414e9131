"""System routes: health (open to any caller) and Prometheus metrics (admin, viewer or scraper)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from controlplane.api import NodeState

from ..context import CallerDep, Ctx
from ..identity import require_metrics_reader

router = APIRouter(tags=["system"])


@router.get("/api/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "OK"


@router.get("/metrics", response_class=Response)
async def metrics(context: Ctx, caller: CallerDep) -> Response:
    require_metrics_reader(caller)
    counts = dict.fromkeys(NodeState, 0)
    for node in await context.metrics.fleet.scrape(context.store, context.leases, context.now()):
        if node.state is not None:
            counts[node.state] += 1
    for state, count in counts.items():
        context.metrics.nodes.labels(state.value).set(count)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
