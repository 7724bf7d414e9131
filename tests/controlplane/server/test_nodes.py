"""Node routes: every status code of design §3.1, cordon/drain/uncordon, and what a PUT keeps."""

from __future__ import annotations

from typing import Any

import httpx

from controlplane.api import Condition, Node
from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock
from tests.factories import node_wire

NODES = "/api/v1/nodes"


ZONE_A = {"zone": "a"}


def project(name: str, node_ref: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"services": [{"name": "web", "image": "nginx"}]}}


async def test_create_get_list(api: httpx.AsyncClient) -> None:
    created = await api.post(NODES, json=node_wire(labels=ZONE_A))
    assert created.status_code == 201
    body = created.json()
    assert body["metadata"]["createdAt"] == "2026-11-24T12:00:00Z"
    assert body["status"]["state"] == "NotReady"
    got = await api.get(f"{NODES}/edge1")
    assert got.status_code == 200 and got.json()["spec"]["hostname"] == "edge1"
    listed = (await api.get(NODES)).json()
    assert listed["kind"] == "NodeList" and [n["metadata"]["name"] for n in listed["items"]] == ["edge1"]


async def test_empty_list_has_items(api: httpx.AsyncClient) -> None:
    assert (await api.get(NODES)).json() == {"apiVersion": "caravanserai/v1", "kind": "NodeList", "items": []}


async def test_label_selector(api: httpx.AsyncClient) -> None:
    await api.post(NODES, json=node_wire("a"))
    await api.post(NODES, json=node_wire("b", labels={"zone": "b"}))
    items = (await api.get(NODES, params={"labelSelector": "zone=b"})).json()["items"]
    assert [n["metadata"]["name"] for n in items] == ["b"]
    for selector, names in [
        ("zone", ["b"]),
        ("!zone", ["a"]),
        ("zone!=b", ["a"]),
        ("zone==b", ["b"]),
        ("zone in (a, b)", ["b"]),
        ("zone notin (b)", ["a"]),
        ("zone=b,!zone", []),
    ]:
        items = (await api.get(NODES, params={"labelSelector": selector})).json()["items"]
        assert [n["metadata"]["name"] for n in items] == names, selector
    for selector in ("app!x", "zone=a=b", "zone in a", "bad key=1", "a,"):
        bad = await api.get(NODES, params={"labelSelector": selector})
        assert bad.status_code == 400, selector
        assert bad.json()["errors"][0].startswith(f'labelSelector: invalid selector "{selector}"')
        assert selector in bad.json()["detail"]


async def test_duplicate_is_409(api: httpx.AsyncClient) -> None:
    await api.post(NODES, json=node_wire(labels=ZONE_A))
    again = await api.post(NODES, json=node_wire(labels=ZONE_A))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["title"] == "Conflict" and "edge1" in again.json()["detail"]


async def test_client_status_is_dropped(api: httpx.AsyncClient) -> None:
    doc = node_wire(labels=ZONE_A)
    doc["status"] = {"state": "Ready", "lastHeartbeat": "2026-01-01T00:00:00Z", "bogus": 1}
    body = (await api.post(NODES, json=doc)).json()
    assert body["status"] == {"state": "NotReady"}


async def test_put_replaces_spec_labels_and_keeps_status(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await api.post(NODES, json=node_wire(labels=ZONE_A))
    await api.post(f"{NODES}/edge1/heartbeat", json={"info": {"kernelVersion": "6.1"}})
    clock.step(5)
    doc = node_wire(labels=ZONE_A, unschedulable=True)
    doc["metadata"]["labels"] = {"zone": "b"}
    doc["status"] = {"state": "Draining"}
    put = await api.put(f"{NODES}/edge1", json=doc)
    assert put.status_code == 200
    body = put.json()
    assert body["spec"]["unschedulable"] is True and body["metadata"]["labels"] == {"zone": "b"}
    assert body["status"]["info"] == {"kernelVersion": "6.1"} and body["status"]["state"] == "NotReady"
    assert body["metadata"]["createdAt"] == "2026-11-24T12:00:00Z"
    assert body["metadata"]["updatedAt"] == "2026-11-24T12:00:05Z"


async def test_put_name_mismatch_and_missing(api: httpx.AsyncClient) -> None:
    await api.post(NODES, json=node_wire(labels=ZONE_A))
    mismatch = await api.put(f"{NODES}/edge1", json=node_wire("edge2", labels=ZONE_A))
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"] == ["metadata.name: must match the name in the path ('edge1'), got 'edge2'"]
    assert (await api.put(f"{NODES}/ghost", json=node_wire("ghost", labels=ZONE_A))).status_code == 404


async def test_get_and_delete_missing_are_404(api: httpx.AsyncClient) -> None:
    missing = await api.get(f"{NODES}/ghost")
    assert missing.status_code == 404
    assert missing.json() == {
        "type": "urn:caravanserai:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": 'Node "ghost" not found',
    }
    assert (await api.delete(f"{NODES}/ghost")).status_code == 404


async def test_delete_is_409_while_projects_are_assigned(api: httpx.AsyncClient, memory_store: Store) -> None:
    await api.post(NODES, json=node_wire(labels=ZONE_A))
    await api.post("/api/v1/projects", json=project("p1"))
    await api.patch("/api/v1/projects/p1/status", json={"phase": "Running"})
    # bind it the way the scheduler would: through the store the app was built with

    def bind(p: Any) -> Any:
        return p.model_copy(update={"status": p.status.model_copy(update={"node_ref": "edge1"})})

    await memory_store.update_project("p1", bind)
    blocked = await api.delete(f"{NODES}/edge1")
    assert blocked.status_code == 409 and "p1" in blocked.json()["detail"]
    assert (await api.get(f"{NODES}/edge1")).status_code == 200
    await api.delete("/api/v1/projects/p1", params={"force": "true"})
    assert (await api.delete(f"{NODES}/edge1")).status_code == 204
    assert (await api.get(f"{NODES}/edge1")).status_code == 404


async def test_cordon_is_one_write_that_keeps_everything_else(api: httpx.AsyncClient) -> None:
    await api.post(NODES, json=node_wire(labels=ZONE_A))
    await api.post(f"{NODES}/edge1/heartbeat")
    stored = (await api.get(f"{NODES}/edge1")).json()
    # A label edit that lands between a client's read and its write is kept: cordon changes only unschedulable.
    edited = {**stored, "metadata": {**stored["metadata"], "labels": {"zone": "b"}}}
    assert (await api.put(f"{NODES}/edge1", json=edited)).status_code == 200
    cordoned = await api.post(f"{NODES}/edge1/cordon")
    assert cordoned.status_code == 200
    body = cordoned.json()
    assert body["spec"]["unschedulable"] is True and body["metadata"]["labels"] == {"zone": "b"}
    assert body["status"]["state"] == stored["status"]["state"], "cordon is not drain: the state stays"
    assert (await api.get(f"{NODES}/edge1")).json()["spec"]["unschedulable"] is True
    assert (await api.post(f"{NODES}/edge1/cordon")).status_code == 200, "cordoning a cordoned Node is a no-op"
    assert (await api.post(f"{NODES}/ghost/cordon")).status_code == 404


async def test_drain_and_uncordon(api: httpx.AsyncClient, leases: LeaseTable) -> None:
    await api.post(NODES, json=node_wire(labels=ZONE_A))
    await api.post(f"{NODES}/edge1/heartbeat")
    drained = await api.post(f"{NODES}/edge1/drain")
    assert drained.status_code == 200
    assert drained.json()["status"]["state"] == "Draining" and drained.json()["spec"]["unschedulable"] is True
    # heartbeats never overwrite Draining
    await api.post(f"{NODES}/edge1/heartbeat", json={"info": {"osImage": "Debian"}})
    assert (await api.get(f"{NODES}/edge1")).json()["status"]["state"] == "Draining"
    uncordoned = (await api.post(f"{NODES}/edge1/uncordon")).json()
    assert uncordoned["status"]["state"] == "Ready" and uncordoned["spec"]["unschedulable"] is False
    assert (await api.post(f"{NODES}/ghost/drain")).status_code == 404


async def test_the_list_serves_each_node_as_get_does(
    api: httpx.AsyncClient, memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    """The list serves the stored documents with the lease fields set without decoding them into models
    (`with_lease_wire`); every Node in it must read as GET answers it: never beaten, beaten in full, beaten since
    the stored lastHeartbeat, rejected after a full beat, judged silent by the controller, and stale by age."""
    for name in ("fresh", "never", "rejected", "silent", "stale"):
        await api.post(NODES, json=node_wire(name, labels=ZONE_A))
    for name in ("fresh", "rejected", "silent", "stale"):
        assert (await api.post(f"{NODES}/{name}/heartbeat", json={"info": {"kernelVersion": "6.1"}})).status_code == 204
    clock.step(30)
    await api.post(f"{NODES}/fresh/heartbeat")  # the lease is newer than the stored lastHeartbeat
    await api.post(f"{NODES}/silent/heartbeat")  # fresh by age: stale only by what the controller wrote
    leases.reject("rejected", clock.now())

    def silenced(n: Node) -> Node:
        condition = Condition(type="Ready", status="False", reason="HeartbeatTimeout", message="silent")
        n.status.conditions = [condition]
        return n

    await memory_store.update_node("silent", silenced)
    clock.step(20)  # "stale" is now past the grace (40 s) without a beat
    listed = (await api.get(NODES)).json()["items"]
    assert [item["metadata"]["name"] for item in listed] == ["fresh", "never", "rejected", "silent", "stale"]
    for item in listed:
        assert item == (await api.get(f"{NODES}/{item['metadata']['name']}")).json()
    served = {item["metadata"]["name"]: item["status"] for item in listed}
    assert [name for name, status in served.items() if status["factsStale"]] == ["never", "rejected", "silent", "stale"]
    assert served["fresh"]["lastHeartbeat"] == "2026-11-24T12:00:30Z"
    assert "lastHeartbeat" not in served["never"] and "factsConfirmedAt" not in served["never"]
