"""Write rules (issue 15): checked on write only, every error at once, dryRun=All, label edits of placed Projects."""

from __future__ import annotations

import httpx

from controlplane.api import Node, ObjectMeta, Project, ProjectPhase, ProjectSpec, ServiceDef
from controlplane.store.base import Store

NODES, PROJECTS = "/api/v1/nodes", "/api/v1/projects"


async def test_an_object_stored_under_looser_rules_still_reads_deletes_and_is_replaced(
    api: httpx.AsyncClient, memory_store: Store
) -> None:
    old = Node.model_validate({"metadata": {"name": "edge..x", "labels": {"bad key": "a,b=c"}}})
    await memory_store.create_node(old)
    assert (await api.get(f"{NODES}/edge..x")).json()["metadata"]["labels"] == {"bad key": "a,b=c"}
    assert [n["metadata"]["name"] for n in (await api.get(NODES)).json()["items"]] == ["edge..x"]
    other = Node.model_validate({"metadata": {"name": "edge2", "labels": {"bad key": "x"}}})
    await memory_store.create_node(other)
    fixed = await api.put(f"{NODES}/edge2", json={"metadata": {"name": "edge2", "labels": {"site": "lab"}}})
    assert fixed.status_code == 200 and fixed.json()["metadata"]["labels"] == {"site": "lab"}
    assert (await api.delete(f"{NODES}/edge..x")).status_code == 204


async def test_a_document_with_three_errors_reports_all_of_them(api: httpx.AsyncClient) -> None:
    body = {"metadata": {"name": "Shop!"}, "spec": {"services": [{"name": "Web Server!", "image": " "}]}}
    answer = await api.post(PROJECTS, json=body)
    assert answer.status_code == 400
    paths = [line.split(":")[0] for line in answer.json()["errors"]]
    assert paths == ["metadata.name", "spec.services[0].name", "spec.services[0].image"]
    detail = answer.json()["detail"]
    assert detail.startswith('metadata.name: Invalid value: "Shop!"') and "spec.services[0].image" in detail
    assert (await api.get(PROJECTS)).json()["items"] == []


async def test_detail_is_shortened_when_there_are_many_errors(api: httpx.AsyncClient) -> None:
    labels = {f"bad key {i}": "v" for i in range(6)}
    answer = await api.post(NODES, json={"metadata": {"name": "edge1", "labels": labels}})
    assert len(answer.json()["errors"]) == 6
    assert answer.json()["detail"].endswith("(and 3 more; see errors)")


async def test_dry_run_validates_and_stores_nothing(api: httpx.AsyncClient) -> None:
    body = {"metadata": {"name": "edge1"}}
    answer = await api.post(NODES, json=body, params={"dryRun": "All"})
    assert answer.status_code == 201 and answer.json()["metadata"]["name"] == "edge1"
    assert (await api.get(NODES)).json()["items"] == []
    bad = await api.post(NODES, json={"metadata": {"name": "edge..x"}}, params={"dryRun": "All"})
    assert bad.status_code == 400
    await api.post(NODES, json=body)
    assert (await api.post(NODES, json=body, params={"dryRun": "All"})).status_code == 409
    changed = await api.put(f"{NODES}/edge1", json={**body, "spec": {"unschedulable": True}}, params={"dryRun": "All"})
    assert changed.status_code == 200 and changed.json()["spec"]["unschedulable"] is True
    assert (await api.get(f"{NODES}/edge1")).json()["spec"]["unschedulable"] is False
    assert (await api.post(NODES, json=body, params={"dryRun": "Some"})).status_code == 400


async def test_a_placed_project_takes_label_changes_but_not_spec_changes(
    api: httpx.AsyncClient, memory_store: Store
) -> None:
    project = Project(
        metadata=ObjectMeta(name="shop"), spec=ProjectSpec(services=[ServiceDef(name="web", image="nginx")])
    )
    project.status.phase, project.status.node_ref = ProjectPhase.RUNNING, "edge1"
    await memory_store.create_project(project)
    wire = project.to_wire()
    relabelled = {**wire, "metadata": {"name": "shop", "labels": {"tier": "front"}}}
    answer = await api.put(f"{PROJECTS}/shop", json=relabelled)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"]["labels"] == {"tier": "front"} and answer.json()["status"]["phase"] == "Running"
    respecced = {**relabelled, "spec": {"services": [{"name": "web", "image": "nginx:2"}]}}
    assert (await api.put(f"{PROJECTS}/shop", json=respecced)).status_code == 409
