"""Events: what the control plane records on each change (and who acted), GET /api/v1/events, and transitions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from controlplane.api import ConditionStatus, Node, Project, ProjectPhase, set_condition
from controlplane.server.settings import Settings
from controlplane.store import Store
from tests.conftest import FakeClock

NODES = "/api/v1/nodes"
EVENTS = "/api/v1/events"


async def events(api: httpx.AsyncClient, **params: Any) -> list[tuple[str, str, str, str, str | None]]:
    """events is GET /api/v1/events as (object, type, reason, message, actor) tuples, oldest first."""
    answer = await api.get(EVENTS, params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "EventList"
    return [
        (
            f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}",
            e["type"],
            e["reason"],
            e["message"],
            e.get("actor"),
        )
        for e in body["items"]
    ]


def judged(status: ConditionStatus, reason: str, message: str, clock: FakeClock) -> Any:
    def judge(node: Node) -> Node:
        conditions = set_condition(node.status.conditions, "Ready", status, reason, message, clock.now())
        return node.model_copy(update={"status": node.status.model_copy(update={"conditions": conditions})})

    return judge


async def test_node_life_is_recorded_with_who_acted(
    api: httpx.AsyncClient, memory_store: Store, clock: FakeClock
) -> None:
    for name in ("edge0", "edge1"):
        assert (await api.post(NODES, json={"metadata": {"name": name}})).status_code == 201
    # The lifecycle controller's judgements carry no actor: no request made them.
    await memory_store.update_node(
        "edge1", judged(ConditionStatus.TRUE, "AgentReady", "agent is posting heartbeats", clock)
    )
    clock.step(60)
    await memory_store.update_node("edge1", judged(ConditionStatus.FALSE, "HeartbeatTimeout", "silent for 40s", clock))
    await memory_store.update_node("edge1", judged(ConditionStatus.FALSE, "HeartbeatTimeout", "silent for 45s", clock))
    await memory_store.update_node("edge1", judged(ConditionStatus.FALSE, "ControlLinkDown", "edge2 reached it", clock))
    assert (await api.post(f"{NODES}/edge1/drain")).status_code == 200
    assert (await api.post(f"{NODES}/edge1/uncordon")).status_code == 200
    # A new Node's first verdict is no transition: not an event.
    await memory_store.update_node(
        "edge0", judged(ConditionStatus.FALSE, "NodeStatusNeverUpdated", "never beat", clock)
    )
    assert [e[2] for e in await events(api, name="edge0")] == ["Registered"]
    assert await events(api, kind="Node", name="edge1") == [
        ("Node/edge1", "Normal", "Registered", "Node edge1 registered", "dev"),
        ("Node/edge1", "Normal", "NodeReady", "Node edge1 is Ready: agent is posting heartbeats", None),
        ("Node/edge1", "Warning", "NodeNotReady", "Node edge1 is NotReady (HeartbeatTimeout): silent for 40s", None),
        ("Node/edge1", "Warning", "NodeNotReady", "Node edge1 is NotReady (ControlLinkDown): edge2 reached it", None),
        ("Node/edge1", "Normal", "Cordoned", "Node edge1 cordoned: no new Projects go to it", "dev"),
        ("Node/edge1", "Normal", "Draining", "Node edge1 is draining: its Projects go back to Pending", "dev"),
        ("Node/edge1", "Normal", "Uncordoned", "Node edge1 uncordoned: schedulable again", "dev"),
    ]
    # Ready → NotReady is one transition, the reason change within NotReady none.
    got = await memory_store.list_transitions("node/", clock.now() - timedelta(hours=1))
    assert [(t.subject, t.good) for t in got] == [("node/edge0", False), ("node/edge1", True), ("node/edge1", False)]


async def test_path_changes_say_why_and_are_transitions(
    api: httpx.AsyncClient, memory_store: Store, clock: FakeClock
) -> None:
    assert (await api.post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
    direct = {"mode": "Direct", "peers": [{"name": "edge2", "mode": "Direct", "latencyMs": 1.0}]}
    relayed = {
        "mode": "Direct",
        "peers": [
            {
                "name": "edge2",
                "mode": "DERP",
                "derpRegion": "lab",
                "relayReason": "UDPBlocked",
                "relayMessage": "disco pings to the peer's endpoints (10.99.12.2:41641) went unanswered",
            }
        ],
    }
    own_relayed = {  # the Node's own path to the control plane says why too
        **relayed,
        "mode": "DERP",
        "derpRegion": "lab",
        "relayReason": "NoDirectPaths",
        "relayMessage": "disco pings to the peer's endpoints (10.99.1.2:41641) went unanswered, and this node is"
        " direct with no peer: its UDP or NAT blocks direct paths.",
    }
    for network in (direct, direct, relayed, own_relayed):
        answer = await api.post(f"{NODES}/edge1/heartbeat", json={"network": network})
        assert answer.status_code == 204
        clock.step(10)
    paths = [e for e in await events(api, name="edge1") if e[2] == "PathChanged"]
    assert paths == [  # paths first found Direct are no news, but they are transitions (below)
        (
            "Node/edge1",
            "Warning",
            "PathChanged",
            "edge1 → edge2: Direct → DERP(lab) (UDPBlocked: disco pings to the peer's endpoints (10.99.12.2:41641)"
            " went unanswered)",
            "dev",
        ),
        (
            "Node/edge1",
            "Warning",
            "PathChanged",
            "edge1 → cara-server: Direct → DERP(lab) (NoDirectPaths: disco pings to the peer's endpoints"
            " (10.99.1.2:41641) went unanswered, and this node is direct with no peer: its UDP or NAT blocks direct"
            " paths.)",
            "dev",
        ),
    ]
    got = await memory_store.list_transitions("path/edge1/", clock.now() - timedelta(hours=1))
    assert [(t.subject, t.good) for t in got] == [
        ("path/edge1/cara-server", True),
        ("path/edge1/cara-server", False),
        ("path/edge1/edge2", True),
        ("path/edge1/edge2", False),
    ]


async def test_project_decisions(api: httpx.AsyncClient, memory_store: Store, clock: FakeClock) -> None:
    body = {"metadata": {"name": "web"}, "spec": {"services": [{"name": "app", "image": "nginx"}]}}
    assert (await api.post("/api/v1/projects", json=body)).status_code == 201

    def phase(to: ProjectPhase, node: str | None, reason: str = "", message: str = "") -> Any:
        def move(project: Project) -> Project:
            conditions = project.status.conditions
            if reason:
                status = ConditionStatus.FALSE if to is ProjectPhase.PENDING else ConditionStatus.TRUE
                conditions = set_condition(conditions, "Scheduled", status, reason, message, clock.now())
            update = {"phase": to, "node_ref": node, "conditions": conditions}
            return project.model_copy(update={"status": project.status.model_copy(update=update)})

        return move

    await memory_store.update_project("web", phase(ProjectPhase.PENDING, None, "Unschedulable", "0/2 nodes fit"))
    await memory_store.update_project("web", phase(ProjectPhase.PENDING, None, "Unschedulable", "0/2 nodes fit"))
    clock.step(1)
    await memory_store.update_project("web", phase(ProjectPhase.SCHEDULED, "edge1", "Scheduled", "to edge1"))
    await memory_store.update_project("web", phase(ProjectPhase.RUNNING, "edge1"))
    clock.step(1)
    await memory_store.update_project("web", phase(ProjectPhase.PENDING, None, "NodeNotReady", "edge1 is NotReady"))
    assert await events(api, kind="Project") == [
        ("Project/web", "Warning", "FailedScheduling", "0/2 nodes fit", None),
        ("Project/web", "Normal", "Scheduled", "Project web scheduled to Node edge1", None),
        ("Project/web", "Normal", "Running", "Project web is Running (Scheduled: to edge1)", None),
        (
            "Project/web",
            "Warning",
            "Rescheduled",
            "Project web back to Pending from Running on Node edge1 (NodeNotReady: edge1 is NotReady)",
            None,
        ),
        ("Project/web", "Warning", "FailedScheduling", "edge1 is NotReady", None),
    ]


async def test_the_list_is_bounded_and_checked(api: httpx.AsyncClient, memory_store: Store) -> None:
    for i in range(5):
        assert (await api.post(NODES, json={"metadata": {"name": f"edge{i}"}})).status_code == 201
    assert [e[0] for e in await events(api, limit=2)] == ["Node/edge3", "Node/edge4"]
    bad = await api.get(EVENTS, params={"kind": "Pod"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"] == ["kind: must be one of Node, Project, ControlPlane"]
    assert (await api.get(EVENTS, params={"limit": 0})).status_code == 400


@pytest.mark.parametrize("settings", [Settings(dev=True, event_limit=3)])
async def test_events_are_bounded_by_the_limit(api: httpx.AsyncClient) -> None:
    for i in range(5):
        assert (await api.post(NODES, json={"metadata": {"name": f"edge{i}"}})).status_code == 201
    assert [e[0] for e in await events(api)] == ["Node/edge2", "Node/edge3", "Node/edge4"]


async def test_other_conditions_are_news_only_when_they_turn_true_or_stop_being(
    api: httpx.AsyncClient, memory_store: Store, clock: FakeClock
) -> None:
    assert (await api.post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
    for status, reason in (
        (ConditionStatus.UNKNOWN, "FactsUnknown"),
        (ConditionStatus.FALSE, "SufficientMemory"),
        (ConditionStatus.TRUE, "MemoryPressure"),
        (ConditionStatus.TRUE, "MemoryPressure"),
        (ConditionStatus.FALSE, "SufficientMemory"),
    ):

        def pressure(node: Node, status: ConditionStatus = status, reason: str = reason) -> Node:
            conditions = set_condition(node.status.conditions, "MemoryPressure", status, reason, "5% free", clock.now())
            return node.model_copy(update={"status": node.status.model_copy(update={"conditions": conditions})})

        await memory_store.update_node("edge1", pressure)
    assert [e[1:4] for e in await events(api, name="edge1")][1:] == [
        ("Warning", "MemoryPressure", "MemoryPressure is True: 5% free"),
        ("Normal", "SufficientMemory", "MemoryPressure is False: 5% free"),
    ]


async def test_the_isolation_guard_is_recorded_when_it_turns(app: FastAPI, api: httpx.AsyncClient) -> None:
    recorder = app.state.context.events  # as the process root (main.py) reaches it
    for isolated in (False, True, True, False, False):
        recorder.isolation(isolated)
        await asyncio.sleep(0.05)  # the write runs as a task
    assert await events(api, kind="ControlPlane") == [
        (
            "ControlPlane/cara-server",
            "Warning",
            "ControlPlaneIsolated",
            "most Nodes went silent at once: the control plane takes itself to be cut off and holds rescheduling and"
            " drain moves until heartbeats return",
            None,
        ),
        (
            "ControlPlane/cara-server",
            "Normal",
            "ControlPlaneReconnected",
            "heartbeats are back: rescheduling and drain moves resume",
            None,
        ),
    ]
