"""Roles and node bindings: an admin writes anything, a viewer only reads, a node writes only itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from controlplane.server.app import create_app
from controlplane.server.identity import Caller, Role
from controlplane.server.settings import Settings
from controlplane.store.base import Store
from tests.conftest import FakeClock
from tests.factories import node_wire
from tests.helpers import HeaderIdentity, caller_client

NODES = "/api/v1/nodes"
ADMIN = Caller("ops@", Role.ADMIN, "n-ops")
VIEWER = Caller("auditor@", Role.VIEWER, "n-aud")
EDGE1 = Caller("edge1.tailnet.test", Role.NODE, "n-1")
EDGE2 = Caller("edge2.tailnet.test", Role.NODE, "n-2")


CALLERS = {"admin": ADMIN, "viewer": VIEWER, "edge1": EDGE1, "edge2": EDGE2}


@pytest.fixture
def app(memory_store: Store, clock: FakeClock) -> FastAPI:
    return create_app(store=memory_store, now=clock.now, identity=HeaderIdentity(CALLERS), settings=Settings())


@pytest.fixture
async def as_() -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI, who: str) -> httpx.AsyncClient:
        client = caller_client(app, who)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_unknown_caller_is_401(app: FastAPI, as_: Any) -> None:
    answer = await as_(app, "stranger").get(NODES)
    assert answer.status_code == 401 and answer.json()["title"] == "Unauthorized"
    assert "not a machine of this tailnet" in answer.json()["detail"]


async def test_viewer_reads_but_never_writes(app: FastAPI, as_: Any) -> None:
    assert (await as_(app, "admin").post(NODES, json=node_wire("edge1", unschedulable=True))).status_code == 201
    viewer = as_(app, "viewer")
    assert (await viewer.get(NODES)).status_code == 200
    assert (await viewer.get(f"{NODES}/edge1")).status_code == 200
    for method, path, body in [
        ("POST", NODES, node_wire("x", unschedulable=True)),
        ("PUT", f"{NODES}/edge1", node_wire("edge1", unschedulable=True)),
        ("DELETE", f"{NODES}/edge1", None),
        ("POST", f"{NODES}/edge1/cordon", None),
        ("POST", f"{NODES}/edge1/drain", None),
        ("POST", f"{NODES}/edge1/heartbeat", None),
        ("POST", "/api/v1/projects", {"metadata": {"name": "p"}}),
    ]:
        answer = await viewer.request(method, path, json=body)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["title"] == "Forbidden" and "viewer" in answer.json()["detail"]


async def test_agent_registers_itself_bound_without_operator_fields(app: FastAPI, as_: Any) -> None:
    edge1 = as_(app, "edge1")
    created = await edge1.post(NODES, json=node_wire("edge1", unschedulable=True, labels={"tier": "gold"}))
    assert created.status_code == 201
    body = created.json()
    assert body["status"]["binding"]["nodeID"] == "n-1" and body["status"]["binding"]["name"] == "edge1.tailnet.test"
    assert "labels" not in body["metadata"] and body["spec"]["unschedulable"] is False
    assert (await edge1.post(NODES, json=node_wire("edge1", unschedulable=True))).status_code == 409, (
        "registering again is 409, as before"
    )
    assert (await edge1.post(f"{NODES}/edge1/heartbeat", json={"info": {"osImage": "x"}})).status_code == 204


async def test_a_node_cannot_write_another_node(app: FastAPI, as_: Any, memory_store: Store) -> None:
    await as_(app, "edge1").post(NODES, json=node_wire("edge1", unschedulable=True))
    before = await memory_store.get_node("edge1")
    edge2 = as_(app, "edge2")
    beat = await edge2.post(f"{NODES}/edge1/heartbeat", json={"network": {"ip": "100.64.0.99"}})
    assert beat.status_code == 403
    assert beat.json()["detail"] == 'node "edge1" is bound to another tailnet machine; only that machine may write it'
    assert (await edge2.post(f"{NODES}/edge1/heartbeat")).status_code == 403
    assert (await edge2.post(NODES, json=node_wire("edge1", unschedulable=True))).status_code == 403, (
        "a taken name cannot be registered"
    )
    for method, path, body in [
        ("PUT", f"{NODES}/edge2", node_wire("edge2", unschedulable=True)),
        ("DELETE", f"{NODES}/edge1", None),
        ("POST", f"{NODES}/edge1/cordon", None),
        ("POST", f"{NODES}/edge1/drain", None),
        ("POST", f"{NODES}/edge1/uncordon", None),
        ("POST", f"{NODES}/edge1/release", None),
    ]:
        assert (await edge2.request(method, path, json=body)).status_code == 403, (method, path)
    assert await memory_store.get_node("edge1") == before


async def test_pre_registered_node_is_bound_on_first_contact(app: FastAPI, as_: Any) -> None:
    assert (
        await as_(app, "admin").post(NODES, json=node_wire("edge1", unschedulable=True, labels={"zone": "a"}))
    ).status_code == 201
    edge1 = as_(app, "edge1")
    assert (await edge1.post(NODES, json=node_wire("edge1", unschedulable=True))).status_code == 409
    shown = (await edge1.get(f"{NODES}/edge1")).json()
    assert shown["status"]["binding"]["nodeID"] == "n-1" and shown["metadata"]["labels"] == {"zone": "a"}
    assert (await as_(app, "edge2").post(f"{NODES}/edge1/heartbeat")).status_code == 403


async def test_admin_releases_a_binding(app: FastAPI, as_: Any) -> None:
    await as_(app, "edge1").post(NODES, json=node_wire("edge1", unschedulable=True))
    released = await as_(app, "admin").post(f"{NODES}/edge1/release")
    assert released.status_code == 200 and "binding" not in released.json()["status"]
    assert (await as_(app, "edge2").post(f"{NODES}/edge1/heartbeat")).status_code == 204, "rebuilt machine binds"
    assert (await as_(app, "edge1").post(f"{NODES}/edge1/heartbeat")).status_code == 403


async def test_node_sets_status_only_of_its_own_projects(app: FastAPI, as_: Any, memory_store: Store) -> None:
    admin = as_(app, "admin")
    await as_(app, "edge1").post(NODES, json=node_wire("edge1", unschedulable=True))
    await admin.post(
        "/api/v1/projects", json={"metadata": {"name": "p"}, "spec": {"services": [{"name": "w", "image": "nginx"}]}}
    )

    def bind(p: Any) -> Any:
        return p.model_copy(update={"status": p.status.model_copy(update={"node_ref": "edge1"})})

    await memory_store.update_project("p", bind)
    running = {"phase": "Running"}
    assert (await as_(app, "edge2").patch("/api/v1/projects/p/status", json=running)).status_code == 403
    assert (await as_(app, "viewer").patch("/api/v1/projects/p/status", json=running)).status_code == 403
    assert (await as_(app, "edge1").patch("/api/v1/projects/p/status", json=running)).status_code == 204
    assert (await as_(app, "edge1").delete("/api/v1/projects/p")).status_code == 403
