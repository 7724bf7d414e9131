"""System routes: health, version and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from controlplane.api import API_VERSION, NodeState

from ..context import Ctx

router = APIRouter(tags=["system"])


@router.get("/api/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "OK"


#: The distribution whose version the server reports.
DISTRIBUTION = "caravanserai-mesh"


@router.get("/api/version")
async def version() -> dict[str, str]:
    """version is the server's own version and API version (Kubernetes' /version, for `caractrl version`)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        found = package_version(DISTRIBUTION)
    except PackageNotFoundError:
        found = "unknown"
    return {"version": found, "apiVersion": API_VERSION}


@router.get("/metrics", response_class=Response)
async def metrics(context: Ctx) -> Response:
    counts = dict.fromkeys(NodeState, 0)
    for node in await context.metrics.fleet.scrape(context.store, context.leases, context.now()):
        if node.state is not None:
            counts[node.state] += 1
    for state, count in counts.items():
        context.metrics.nodes.labels(state.value).set(count)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
