"""Project routes: create/replace/delete phase rules, list filters and the status PATCH."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlplane.api import Project, ProjectPhase
from controlplane.store.base import Store

PROJECTS = "/api/v1/projects"


def project(name: str = "shop", image: str = "nginx") -> dict[str, Any]:
    return {
        "apiVersion": "caravanserai/v1",
        "kind": "Project",
        "metadata": {"name": name},
        "spec": {"services": [{"name": "web", "image": image}], "resources": {"cpu": "250m"}},
    }


async def set_phase(store: Store, name: str, phase: ProjectPhase, node: str | None = "edge1") -> None:
    def mutate(p: Project) -> Project:
        return p.model_copy(update={"status": p.status.model_copy(update={"phase": phase, "node_ref": node})})

    await store.update_project(name, mutate)


async def test_create_starts_pending(api: httpx.AsyncClient) -> None:
    doc = project()
    doc["status"] = {"phase": "Running", "nodeRef": "edge9"}
    created = await api.post(PROJECTS, json=doc)
    assert created.status_code == 201
    assert created.json()["status"] == {"phase": "Pending"}
    assert created.json()["spec"]["resources"] == {"cpu": "250m"}
    assert (await api.post(PROJECTS, json=project())).status_code == 409


@pytest.mark.parametrize(
    ("phase", "code"), [("Pending", 200), ("Failed", 200), ("Scheduled", 409), ("Running", 409), ("Terminating", 409)]
)
async def test_put_only_while_pending_or_failed(
    api: httpx.AsyncClient, memory_store: Store, phase: str, code: int
) -> None:
    await api.post(PROJECTS, json=project())
    await set_phase(memory_store, "shop", ProjectPhase(phase))
    answer = await api.put(f"{PROJECTS}/shop", json=project(image="nginx:2"))
    assert answer.status_code == code
    stored = await memory_store.get_project("shop")
    if code == 200:
        assert stored.spec.services[0].image == "nginx:2" and stored.status.phase is ProjectPhase.PENDING
    else:
        assert stored.spec.services[0].image == "nginx" and phase in answer.json()["detail"]


async def test_list_filters(api: httpx.AsyncClient, memory_store: Store) -> None:
    for name in ("a", "b", "c"):
        await api.post(PROJECTS, json=project(name))
    await set_phase(memory_store, "a", ProjectPhase.RUNNING, "edge1")
    await set_phase(memory_store, "b", ProjectPhase.SCHEDULED, "edge2")

    async def names(params: Any) -> list[str]:
        answer = await api.get(PROJECTS, params=params)
        assert answer.status_code == 200 and answer.json()["kind"] == "ProjectList"
        return [p["metadata"]["name"] for p in answer.json()["items"]]

    assert await names({}) == ["a", "b", "c"]
    assert await names([("phase", "Running"), ("phase", "Pending")]) == ["a", "c"]
    assert await names({"nodeRef": "edge2"}) == ["b"]
    assert await names({"phase": "Failed"}) == []
    bad = await api.get(PROJECTS, params={"phase": "Done"})
    assert bad.status_code == 400 and bad.json()["errors"][0].startswith("phase: 'Done' is not one of")


@pytest.mark.parametrize(
    ("phase", "force", "code", "left"),
    [
        ("Pending", False, 204, None),
        ("Failed", False, 204, None),
        ("Terminated", False, 204, None),
        ("Running", False, 202, "Terminating"),
        ("Scheduled", False, 202, "Terminating"),
        ("Terminating", False, 202, "Terminating"),
        ("Running", True, 204, None),
    ],
)
async def test_delete(
    api: httpx.AsyncClient, memory_store: Store, phase: str, force: bool, code: int, left: str | None
) -> None:
    await api.post(PROJECTS, json=project())
    await set_phase(memory_store, "shop", ProjectPhase(phase))
    answer = await api.delete(f"{PROJECTS}/shop", params={"force": "true"} if force else {})
    assert answer.status_code == code
    got = await api.get(f"{PROJECTS}/shop")
    if left is None:
        assert got.status_code == 404
    else:
        assert got.json()["status"]["phase"] == left
        if phase != "Terminating":  # a repeated DELETE changes nothing
            assert any(c["type"] == "Terminating" and c["status"] == "True" for c in got.json()["status"]["conditions"])


async def test_delete_missing_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.delete(f"{PROJECTS}/ghost")).status_code == 404


async def test_patch_status(api: httpx.AsyncClient) -> None:
    await api.post(PROJECTS, json=project())
    answer = await api.patch(
        f"{PROJECTS}/shop/status", json={"phase": "Failed", "reason": "ImagePullBackOff", "message": "no such image"}
    )
    assert answer.status_code == 204
    status = (await api.get(f"{PROJECTS}/shop")).json()["status"]
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "ImagePullBackOff"
    bad = await api.patch(f"{PROJECTS}/shop/status", json={"phase": "Exploded"})
    assert bad.status_code == 400 and bad.json()["errors"][0].startswith(
        'phase: Unsupported value: "Exploded": supported values: "Pending"'
    )
    assert (await api.patch(f"{PROJECTS}/ghost/status", json={"phase": "Running"})).status_code == 404
