"""System routes: health (open to any caller), version and Prometheus metrics (admin, viewer or scraper)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from controlplane.api import API_VERSION

from .. import scrape
from ..context import CallerDep, Ctx
from ..identity import require_metrics_reader
from ..problems import problem_response, problem_responses

router = APIRouter(tags=["system"])


@router.get("/api/healthz", response_class=PlainTextResponse, responses=problem_responses(503))
@router.get("/healthz", response_class=PlainTextResponse, responses=problem_responses(503), include_in_schema=False)
async def healthz(context: Ctx) -> Response:
    """healthz answers 200 `OK` (design §3.1) while every loop of the process runs and makes progress, else 503
    with a problem document whose `errors` name each dead or stalled loop and why (one list for both paths)."""
    problems = context.health()
    if not problems:
        return PlainTextResponse("OK")
    errors = [f"{loop}: {why}" for loop, why in sorted(problems.items())]
    return problem_response(503, f"unhealthy: {', '.join(sorted(problems))}", errors)


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
async def metrics(context: Ctx, caller: CallerDep) -> Response:
    require_metrics_reader(caller)
    await scrape.refresh(context)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
