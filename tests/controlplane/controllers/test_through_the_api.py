"""The controllers behind the real in-process API: beats in, states and placements out, as clients see them."""

from __future__ import annotations

from typing import Any

import httpx

from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import build_controllers
from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock

NODES, PROJECTS = "/api/v1/nodes", "/api/v1/projects"
FACTS: dict[str, Any] = {
    "capacity": {"cpu": "4000m", "memory": "8Gi", "disk": "100Gi"},
    "allocatable": {"cpu": "4000m", "memory": "8Gi"},
    "available": {"memory": "6Gi", "disk": "80Gi"},
    "network": {"mode": "DERP", "tailnet": {"online": True}},
}


async def shown(api: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = await api.get(path)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"].get("conditions", [])}


async def test_register_beat_schedule_drain_and_go_away(
    api: httpx.AsyncClient, memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    controllers = build_controllers(store=memory_store, leases=leases, now=clock.now, config=ControllerConfig())
    assert (await api.post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
    await controllers.lifecycle.sync_once()
    node = await shown(api, f"{NODES}/edge1")
    assert node["status"]["state"] == "NotReady"
    assert conditions(node)["Ready"] == ("Unknown", "NodeStatusNeverUpdated")

    assert (await api.post(f"{NODES}/edge1/heartbeat", json=FACTS)).status_code == 204
    clock.step(5)  # the lifecycle controller reads new facts at its next relist
    assert (await api.post(f"{NODES}/edge1/heartbeat")).status_code == 204
    await controllers.lifecycle.sync_once()
    node = await shown(api, f"{NODES}/edge1")
    assert node["status"]["state"] == "Ready"
    assert conditions(node) == {
        "Ready": ("True", "AgentReady"),
        "MemoryPressure": ("False", "SufficientMemory"),
        "DiskPressure": ("False", "SufficientDisk"),
        "PathRelayed": ("True", "PathRelayed"),
        "TailnetOffline": ("False", "TailnetOnline"),
    }

    spec = {"services": [{"name": "web", "image": "nginx"}], "resources": {"cpu": "1", "memory": "1Gi"}}
    assert (await api.post(PROJECTS, json={"metadata": {"name": "shop"}, "spec": spec})).status_code == 201
    assert await controllers.scheduler.sync_once() == 1
    project = await shown(api, f"{PROJECTS}/shop")
    assert (project["status"]["phase"], project["status"]["nodeRef"]) == ("Scheduled", "edge1")

    assert (await api.post(f"{NODES}/edge1/drain")).status_code == 200
    assert await controllers.draining.sync_once() == 1
    project = await shown(api, f"{PROJECTS}/shop")
    assert (project["status"]["phase"], project["status"].get("nodeRef")) == ("Pending", None)
    assert conditions(project)["Scheduled"] == ("False", "NodeDraining")
    await controllers.scheduler.sync_once()
    project = await shown(api, f"{PROJECTS}/shop")
    assert project["status"]["conditions"][0]["message"] == "0/1 nodes are available: 1 Draining"

    for _ in range(3):
        clock.step(5)
        assert (await api.post(f"{NODES}/edge1/heartbeat", json=FACTS)).status_code == 204
        await controllers.lifecycle.sync_once()
        assert (await shown(api, f"{NODES}/edge1"))["status"]["state"] == "Draining"

    assert (await api.post(f"{NODES}/edge1/uncordon")).status_code == 200
    await controllers.lifecycle.sync_once()
    assert (await shown(api, f"{NODES}/edge1"))["status"]["state"] == "Ready"

    clock.step(1)
    assert (await api.post(f"{NODES}/edge1/heartbeat", json={"state": "NotReady"})).status_code == 204
    await controllers.lifecycle.sync_once()
    node = await shown(api, f"{NODES}/edge1")
    assert node["status"]["state"] == "NotReady"
    assert conditions(node)["Ready"] == ("False", "AgentShutdown")
