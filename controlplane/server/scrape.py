"""What a /metrics scrape reads from the store before rendering: the fleet's series, Nodes by state, Projects by
phase and the availability ratios (every gauge is set from what is stored now, not counted along the way)."""

from __future__ import annotations

from controlplane.api import NodeState, ProjectPhase

from . import availability
from .context import ServerContext


async def refresh(context: ServerContext) -> None:
    """refresh brings every store-derived series of context.metrics up to date."""
    metrics = context.metrics
    scraped = await metrics.fleet.scrape(context.store, context.leases, context.now())
    counts = dict.fromkeys(NodeState, 0)
    for node in scraped:
        if node.state is not None:
            counts[node.state] += 1
    for state, count in counts.items():
        metrics.nodes.labels(state.value).set(count)
    counted = await context.store.count_projects()
    for phase in ProjectPhase:
        metrics.projects.labels(phase.value).set(counted.get(phase.value, 0))
    await _availability(context, {node.name for node in scraped})


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
