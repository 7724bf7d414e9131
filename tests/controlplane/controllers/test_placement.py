"""spec.placement: which Nodes qualify (pure), and scheduling passes against the store with the kubectl message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.api import NetworkMode, ProjectPlacement
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.placement import NetworkFacts, facts_of, misses
from controlplane.controllers.scheduler import Scheduler
from controlplane.store.base import Store
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import make_project

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DIRECT = ProjectPlacement.model_validate({"pathToControlPlane": "Direct"})
FAST = ProjectPlacement.model_validate({"minThroughput": "50Mbps"})
BOTH = ProjectPlacement.model_validate({"pathToControlPlane": "Direct", "minThroughput": "50Mbps"})


@pytest.mark.parametrize(
    ("placement", "facts", "expected"),
    [
        (None, NetworkFacts(), []),
        (DIRECT, NetworkFacts(mode=NetworkMode.DIRECT), []),
        (DIRECT, NetworkFacts(mode=NetworkMode.DERP), ["relayed through DERP"]),
        (DIRECT, NetworkFacts(), ["without a known path to the control plane"]),
        (FAST, NetworkFacts(download=50e6), []),
        (FAST, NetworkFacts(download=49.9e6), ["below 50Mbps"]),
        (FAST, NetworkFacts(), ["without a fresh throughput measurement"]),
        (BOTH, NetworkFacts(mode=NetworkMode.DERP, download=1e6), ["relayed through DERP", "below 50Mbps"]),
    ],
    ids=["none", "direct", "derp", "path-unknown", "fast-enough", "too-slow", "never-measured", "both-missed"],
)
def test_misses(placement: ProjectPlacement | None, facts: NetworkFacts, expected: list[str]) -> None:
    assert misses(placement, facts) == expected


def network(mode: str | None, download: str | None, age: timedelta) -> dict[str, Any]:
    return {
        "mode": mode,
        "throughput": {"download": download, "lastTestTime": (NOW - age).isoformat().replace("+00:00", "Z")},
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"network": network("Direct", "94.1Mbps", timedelta(minutes=5))}, NetworkFacts(NetworkMode.DIRECT, 94.1e6)),
        ({"network": network("DERP", "94.1Mbps", timedelta(hours=2))}, NetworkFacts(NetworkMode.DERP, None)),
        ({}, NetworkFacts()),
    ],
    ids=["fresh", "stale-measurement", "no-network"],
)
def test_facts_of(status: dict[str, Any], expected: NetworkFacts) -> None:
    assert facts_of(make_node("n", status=status), NOW, timedelta(hours=1)) == expected


def ready(mode: str, download: str) -> dict[str, Any]:
    return {
        "state": "Ready",
        "allocatable": {"cpu": "4000m", "memory": "8Gi"},
        "network": network(mode, download, timedelta(minutes=1)),
    }


def placed_project(name: str, placement: dict[str, Any] | None) -> Any:
    project = make_project(name)
    spec = project.spec.model_copy(
        update={"placement": ProjectPlacement.model_validate(placement) if placement else None}
    )
    return project.model_copy(update={"spec": spec})


async def test_scheduler_honours_placement_and_explains_a_miss(memory_store: Store) -> None:
    clock = FakeClock(NOW)
    scheduler = Scheduler(store=memory_store, now=clock.now, config=ControllerConfig())
    # "a" is the emptiest but relayed; "b" is Direct and fast; "c" is Direct but slow.
    await memory_store.create_node(make_node("a", status=ready("DERP", "200Mbps")))
    await memory_store.create_node(make_node("b", status=ready("Direct", "90Mbps")))
    await memory_store.create_node(make_node("c", status=ready("Direct", "10Mbps")))
    await memory_store.create_project(make_project("busy-b", cpu="2", phase="Running", nodeRef="b"))
    await memory_store.create_project(make_project("busy-c", cpu="3", phase="Running", nodeRef="c"))
    await memory_store.create_project(placed_project("plain", None))
    await memory_store.create_project(
        placed_project("picky", {"pathToControlPlane": "Direct", "minThroughput": "50Mbps"})
    )
    await memory_store.create_project(
        placed_project("greedy", {"pathToControlPlane": "Direct", "minThroughput": "1Gbps"})
    )
    assert await scheduler.sync_once() == 2
    got = {p.name: (p.status.phase.value, p.status.node_ref) for p in await memory_store.list_projects()}
    assert got["plain"] == ("Scheduled", "a")  # no placement: least loaded, as before
    assert got["picky"] == ("Scheduled", "b")
    assert got["greedy"] == ("Pending", None)
    greedy = await memory_store.get_project("greedy")
    condition = next(c for c in greedy.status.conditions or () if c.type == "Scheduled")
    assert condition.reason == "Unschedulable"
    # "a" misses both ways and is counted under each, as Kubernetes counts a node under every failed filter.
    assert condition.message == "0/3 nodes are available: 1 relayed through DERP, 3 below 1Gbps"


def test_placement_is_optional_and_validated() -> None:
    assert make_project("p").spec.placement is None
    with pytest.raises(ValueError, match="minThroughput"):
        ProjectPlacement.model_validate({"minThroughput": "fast"})
    with pytest.raises(ValueError, match="pathToControlPlane"):
        ProjectPlacement.model_validate({"pathToControlPlane": "DERP"})
