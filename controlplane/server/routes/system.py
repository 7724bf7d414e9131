"""System routes: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from controlplane.api import NodeState, ProjectPhase

from .. import availability
from ..context import Ctx, ServerContext

router = APIRouter(tags=["system"])


@router.get("/api/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "OK"


@router.get("/metrics", response_class=Response)
async def metrics(context: Ctx) -> Response:
    counts = dict.fromkeys(NodeState, 0)
    scraped = await context.metrics.fleet.scrape(context.store, context.leases, context.now())
    for node in scraped:
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
    await _availability(context, {node.name for node in scraped})
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def _availability(context: ServerContext, known: set[str]) -> None:
    """_availability sets the Ready and Direct ratio series of the known Nodes from the stored transitions (pairs up
    to the pair limit); a deleted Node's transitions outlive it (until pruned) but not its series."""
    now, metrics = context.now(), context.metrics
    metrics.ready_ratio.clear()
    metrics.direct_ratio.clear()
    since = now - availability.LONGEST
    for subject, found in availability.by_subject(await context.store.list_transitions("node/", since)).items():
        node = subject.removeprefix("node/")
        for window in availability.windows(found, now) if node in known else ():
            if window.ratio is not None:
                metrics.ready_ratio.labels(node, window.window).set(window.ratio)
    paths = availability.by_subject(await context.store.list_transitions("path/", since))
    kept = [(subject, found) for subject, found in paths.items() if subject.split("/")[1] in known]
    for subject, found in kept[: context.settings.metrics_pair_limit]:
        node, _, peer = subject.removeprefix("path/").partition("/")
        for window in availability.windows(found, now):
            if window.ratio is not None:
                metrics.direct_ratio.labels(node, peer, window.window).set(window.ratio)
