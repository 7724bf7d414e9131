"""Table tests of the scheduler's pure decisions: candidates, fit, least loaded, and the no-fit message."""

from __future__ import annotations

import copy
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from controlplane.api import Node, NodeState, Project
from controlplane.controllers import scheduler as sc
from controlplane.controllers.scheduler import Placement, Requests, Room
from tests.factories import node

GI = 2**30


READY = NodeState.READY
#: ROOM: the allocatable of every Node here that is not about room.
ROOM: dict[str, Any] = {"allocatable": {"cpu": "4000m", "memory": "8Gi"}}


def pressure(type_: str, status: str) -> dict[str, Any]:
    return ROOM | {"conditions": [{"type": type_, "status": status}]}


def project(name: str = "p1", *, resources: dict[str, str] | None = None, **status: Any) -> Project:
    spec: dict[str, Any] = {"services": [{"name": "web", "image": "nginx"}]}
    if resources is not None:
        spec["resources"] = resources
    return Project.model_validate({"metadata": {"name": name}, "spec": spec, "status": status})


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (None, Requests(0, 0)),
        ({}, Requests(0, 0)),
        ({"cpu": "500m"}, Requests(500, 0)),
        ({"cpu": "2", "memory": "512Mi"}, Requests(2000, 512 * 2**20)),
    ],
    ids=["no-resources", "empty", "cpu-only", "both"],
)
def test_requests_of(resources: dict[str, str] | None, expected: Requests) -> None:
    assert sc.requests_of(project(resources=resources)) == expected


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (node(state=READY, status=ROOM), None),
        (node(status=ROOM), "NotReady"),
        (node(state=NodeState.NOT_READY, status=ROOM), "NotReady"),
        (node(state=NodeState.DRAINING, unschedulable=True, status=ROOM), "Draining"),
        (node(state=READY, unschedulable=True, status=ROOM), "unschedulable"),
        (node(state=READY, status=pressure("MemoryPressure", "True")), "MemoryPressure"),
        (node(state=READY, status=pressure("DiskPressure", "True")), "DiskPressure"),
        (node(state=READY, status=pressure("MemoryPressure", "Unknown")), None),
        (node(state=READY, status=pressure("PathRelayed", "True")), None),
    ],
    ids=[
        "ready",
        "never-computed",
        "not-ready",
        "draining",
        "cordoned",
        "memory-pressure",
        "disk-pressure",
        "pressure-unknown-is-ok",
        "relayed-is-ok",
    ],
)
def test_unavailable_reason(candidate: Node, expected: str | None) -> None:
    assert sc.unavailable_reason(candidate) == expected


@pytest.mark.parametrize(
    ("allocatable", "expected"),
    [
        ({"cpu": "4", "memory": "8Gi"}, Room("n1", 4000, 8 * GI)),
        ({"cpu": "1500m"}, Room("n1", 1500, 0)),
        ({}, Room("n1", 0, 0)),
        ({"cpu": "many", "memory": "-1"}, Room("n1", 0, 0)),
    ],
    ids=["both", "no-memory", "none", "garbage"],
)
def test_room_of(allocatable: dict[str, str], expected: Room) -> None:
    assert sc.room_of(node("n1", state=READY, status={"allocatable": allocatable})) == expected


@pytest.mark.parametrize(
    ("request_", "room", "expected"),
    [
        (Requests(1000, GI), Room("n", 4000, 8 * GI), []),
        (Requests(4000, 8 * GI), Room("n", 4000, 8 * GI), []),
        (Requests(1000, GI), Room("n", 4000, 8 * GI, used_cpu=3500), ["insufficient cpu"]),
        (Requests(1000, GI), Room("n", 4000, 8 * GI, used_memory=7 * GI + 1), ["insufficient memory"]),
        (Requests(5000, 9 * GI), Room("n", 4000, 8 * GI), ["insufficient cpu", "insufficient memory"]),
        (Requests(0, 0), Room("n", 0, 0), []),
        (Requests(1, 0), Room("n", 0, 0), ["insufficient cpu"]),
    ],
    ids=["fits", "exactly-full", "cpu-short", "memory-short", "both-short", "zero-on-empty", "any-on-empty"],
)
def test_fits(request_: Requests, room: Room, expected: list[str]) -> None:
    assert sc.fits(request_, room) == expected


def rooms(*specs: tuple[str, int, int, int, int, int]) -> list[Room]:
    return [Room(n, cpu, mem, used_cpu=uc, used_memory=um, projects=p) for n, cpu, mem, uc, um, p in specs]


@pytest.mark.parametrize(
    ("request_", "candidates", "expected"),
    [
        (Requests(1000, GI), [], None),
        (Requests(1000, GI), rooms(("a", 4000, 8 * GI, 0, 0, 0)), "a"),
        (Requests(1000, GI), rooms(("a", 4000, 8 * GI, 3000, 0, 1), ("b", 4000, 8 * GI, 1000, 0, 1)), "b"),
        # Load is the larger fraction: a is 50% memory-loaded, b 40% cpu-loaded after placement.
        (Requests(0, 0), rooms(("a", 4000, 8 * GI, 0, 4 * GI, 1), ("b", 10000, 8 * GI, 4000, 0, 1)), "b"),
        # Fraction after placement: a small node that is emptier before may be fuller after.
        (Requests(1000, 0), rooms(("a", 2000, GI, 0, 0, 0), ("b", 8000, GI, 1000, 0, 1)), "b"),
        (Requests(0, 0), rooms(("b", 4000, GI, 0, 0, 2), ("a", 4000, GI, 0, 0, 3)), "b"),
        (Requests(0, 0), rooms(("b", 4000, GI, 0, 0, 1), ("a", 4000, GI, 0, 0, 1)), "a"),
        (Requests(3000, 0), rooms(("a", 4000, GI, 2000, 0, 1), ("b", 2000, GI, 0, 0, 0)), None),
        (Requests(1, 0), rooms(("a", 0, 0, 0, 0, 0)), None),
    ],
    ids=[
        "no-candidates",
        "only-one",
        "least-loaded",
        "max-of-fractions",
        "after-placement",
        "tie-fewer-projects",
        "tie-name",
        "fits-nowhere",
        "no-allocatable",
    ],
)
def test_choose_node(request_: Requests, candidates: list[Room], expected: str | None) -> None:
    chosen = sc.choose_node(request_, candidates)
    assert (chosen.name if chosen else None) == expected


def test_build_placement_counts_unavailable_and_books_bound_projects() -> None:
    nodes = [
        node("a", state=READY, status=ROOM),
        node("b", state=NodeState.NOT_READY, status=ROOM),
        node("c", state=READY, unschedulable=True, status=ROOM),
        node("d", state=NodeState.DRAINING, status=ROOM),
    ]
    bound = [
        project("p1", resources={"cpu": "1", "memory": "1Gi"}, phase="Running", nodeRef="a"),
        project("p2", resources={"cpu": "500m"}, phase="Terminating", nodeRef="a"),
        project("p3", resources={"cpu": "1"}, phase="Scheduled", nodeRef="b"),
    ]
    placement = sc.build_placement(nodes, bound)
    assert placement.total == 4
    assert placement.unavailable == {"NotReady": 1, "unschedulable": 1, "Draining": 1}
    assert placement.rooms == [Room("a", 4000, 8 * GI, used_cpu=1500, used_memory=GI, projects=2)]


@pytest.mark.parametrize(
    ("placement", "request_", "expected"),
    [
        (Placement(total=0), Requests(), "0/0 nodes are available"),
        (
            Placement(
                rooms=rooms(("a", 1000, GI, 0, 0, 0)),
                unavailable=Counter({"NotReady": 1, "unschedulable": 1}),
                total=3,
            ),
            Requests(2000, 0),
            "0/3 nodes are available: 1 NotReady, 1 unschedulable, 1 insufficient cpu",
        ),
        (
            Placement(
                rooms=rooms(("a", 1000, GI, 0, 0, 0), ("b", 8000, GI, 0, 0, 0)),
                unavailable=Counter({"MemoryPressure": 2, "Draining": 1, "DiskPressure": 1}),
                total=6,
            ),
            Requests(2000, 2 * GI),
            "0/6 nodes are available: 1 Draining, 2 MemoryPressure, 1 DiskPressure, 1 insufficient cpu, "
            "2 insufficient memory",
        ),
    ],
    ids=["no-nodes", "kubectl-example", "every-kind-in-fixed-order"],
)
def test_unschedulable_message(placement: Placement, request_: Requests, expected: str) -> None:
    assert sc.unschedulable_message(placement, request_) == expected


def test_queue_order_is_first_come_first_served() -> None:
    older = project("zz").model_copy(deep=True)
    older.metadata.created_at = datetime(2026, 1, 1, tzinfo=UTC)
    newer = project("aa").model_copy(deep=True)
    newer.metadata.created_at = datetime(2026, 1, 2, tzinfo=UTC)
    unset = project("mm")
    assert [p.name for p in sorted([newer, older, unset], key=sc.queue_order)] == ["mm", "zz", "aa"]


@pytest.mark.parametrize("seed", range(8))
def test_shelves_choose_exactly_as_a_scan_of_every_room(seed: int) -> None:
    """Shelves show choose_node one room per group; the placements must be those of a scan of all the rooms."""
    rng = random.Random(seed)
    sizes = [(4000, 8 * GI), (2000, 4 * GI), (8000, 2 * GI)]

    scanned = [Room(f"n{i:02}", *sizes[i % len(sizes)], projects=rng.choice([0, 0, 1])) for i in range(30)]
    shelved = copy.deepcopy(scanned)
    requests = [Requests(rng.choice([0, 250, 500, 1000]), rng.choice([0, GI // 2, GI])) for _ in range(400)]
    shelves = sc.Shelves(shelved)
    by_scan, by_shelves = [], []
    for request_ in requests:
        room = sc.choose_node(request_, scanned)
        if room is not None:
            room.take(request_)
        by_scan.append(room.name if room else None)
        chosen = sc.choose_node(request_, shelves.firsts())
        if chosen is not None:
            shelves.take(chosen, request_)
        by_shelves.append(chosen.name if chosen else None)
    assert by_shelves == by_scan
    assert None in by_scan and len(set(by_scan)) > 10  # the fleet filled up, and placements spread
    assert sorted(scanned, key=lambda r: r.name) == sorted(shelved, key=lambda r: r.name)
