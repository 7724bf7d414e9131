"""Helpers for lab tests that run Projects: the lab's container runtime, Project manifests, phases and placement."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
from lablib.harness import ControlPlane, wait_until

from tests.lab.conftest import Lab


def runtime_up(lab: Lab) -> dict[str, Any]:
    """runtime_up starts the lab's container runtime (podman per edge, a registry, the lab's busybox image loaded)
    and returns `lab runtime status`: `sockets` (host → Docker API socket), `image`, `pullImage`."""
    lab.cli("runtime", "up", timeout=300)
    doc: dict[str, Any] = json.loads(lab.cli("runtime", "status").stdout)
    return doc


def runtime_env(runtime: dict[str, Any], host: str) -> dict[str, str]:
    """runtime_env is the agent environment that makes host's agent run Projects on host's container runtime."""
    return {"CONTAINER_RUNTIME_SOCKET": runtime["sockets"][host]}


def engine(runtime: dict[str, Any], host: str, path: str) -> Any:
    """engine asks host's podman (Docker API) directly, from the test's own namespace."""
    with httpx.Client(transport=httpx.HTTPTransport(uds=runtime["sockets"][host]), base_url="http://d/v1.41") as c:
        return c.get(path).json()


def manifest(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "caravanserai/v1",
        "kind": "Project",
        "metadata": {"name": name},
        "spec": {"services": [{"name": "web", "image": image}], **spec},
    }


def get(plane: ControlPlane, name: str) -> dict[str, Any] | None:
    code, doc = plane.call("operator", "GET", f"/api/v1/projects/{name}", timeout=5)
    return doc if code == 200 and isinstance(doc, dict) else None


def phase_is(plane: ControlPlane, name: str, *phases: str) -> dict[str, Any] | None:
    doc = get(plane, name)
    return doc if doc is not None and doc["status"]["phase"] in phases else None


def apply(plane: ControlPlane, doc: dict[str, Any]) -> None:
    code, body = plane.call("operator", "POST", "/api/v1/projects", doc)
    assert code == 201, body


def wait_phase(plane: ControlPlane, name: str, *phases: str, timeout: float = 30) -> tuple[dict[str, Any], float]:
    return wait_until(f"{name} {'/'.join(phases)}", lambda: phase_is(plane, name, *phases), timeout, interval=0.2)


def cordon(plane: ControlPlane, node: str) -> None:
    """cordon marks node unschedulable as `caractrl cordon` does: GET it, PUT it back with spec.unschedulable."""
    code, doc = plane.call("operator", "GET", f"/api/v1/nodes/{node}", timeout=5)
    assert code == 200, doc
    doc["spec"]["unschedulable"] = True
    code, body = plane.call("operator", "PUT", f"/api/v1/nodes/{node}", doc, timeout=5)
    assert code == 200, body


def uncordon(plane: ControlPlane, node: str) -> None:
    code, body = plane.call("operator", "POST", f"/api/v1/nodes/{node}/uncordon", timeout=5)
    assert code == 200, body


def run_on(
    plane: ControlPlane, node: str, nodes: Iterable[str], doc: dict[str, Any], *, timeout: float = 30
) -> dict[str, Any]:
    """run_on applies doc with every other Node of `nodes` cordoned, so the scheduler can only pick `node`, waits
    until the agent reports it Running there, then uncordons the others; returns the Running Project."""
    others = [n for n in nodes if n != node]
    for other in others:
        cordon(plane, other)
    try:
        apply(plane, doc)
        running, _ = wait_phase(plane, doc["metadata"]["name"], "Running", timeout=timeout)
    finally:
        for other in others:
            uncordon(plane, other)
    assert running["status"]["nodeRef"] == node, running["status"]
    return running
