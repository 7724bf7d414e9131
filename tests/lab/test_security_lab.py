"""Issue 4 against the real tailnet: tailnet-only binding, WhoIs identity, roles and node bindings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lablib.harness import ControlPlane, running_control_plane

from controlplane.server.app import create_app
from controlplane.server.identity import TailnetIdentity
from controlplane.server.roles import RolesConfig
from controlplane.server.settings import Settings
from controlplane.store import open_store
from mesh import LocalClient
from tests.conftest import FakeClock
from tests.factories import node_wire
from tests.lab.conftest import Lab

pytestmark = pytest.mark.lab

NODES = "/api/v1/nodes"


@pytest.fixture(scope="module")
def plane(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running_control_plane(lab, tmp_path_factory.mktemp("security")) as running:
        yield running


def test_operator_admin_can_do_everything(plane: ControlPlane) -> None:
    assert plane.call("operator", "POST", NODES, node_wire("admin-made"))[0] == 201
    assert plane.call("operator", "POST", f"{NODES}/admin-made/drain")[0] == 200
    assert plane.call("operator", "POST", f"{NODES}/admin-made/uncordon")[0] == 200
    code, listed = plane.call("operator", "GET", NODES)
    assert code == 200 and "admin-made" in [n["metadata"]["name"] for n in listed["items"]]
    assert plane.call("operator", "DELETE", f"{NODES}/admin-made")[0] == 204


def test_edge_writes_only_itself(plane: ControlPlane, lab: Lab) -> None:
    for edge in ("edge1", "edge2"):
        code, body = plane.call(edge, "POST", NODES, node_wire(edge))
        assert code in (201, 409), body
    code, shown = plane.call("operator", "GET", f"{NODES}/edge1")
    whois = lab.status("edge1")["Self"]
    assert shown["status"]["binding"]["nodeID"] in (str(whois["ID"]), whois["ID"])
    assert plane.call("edge1", "POST", f"{NODES}/edge1/heartbeat", {"info": {"osImage": "lab"}})[0] == 204
    before = plane.call("operator", "GET", f"{NODES}/edge1")[1]["status"]
    code, problem = plane.call("edge2", "POST", f"{NODES}/edge1/heartbeat", {"info": {"osImage": "forged"}})
    assert code == 403 and problem["title"] == "Forbidden" and "edge2" not in problem["detail"]
    after = plane.call("operator", "GET", f"{NODES}/edge1")[1]["status"]
    assert after["info"] == before["info"] == {"osImage": "lab"}
    for method, path, body in [
        ("POST", NODES, node_wire("edge-new")),
        ("PUT", f"{NODES}/edge2", node_wire("edge2")),
        ("POST", f"{NODES}/edge2/drain", None),
        ("DELETE", f"{NODES}/edge1", None),
        ("POST", "/api/v1/projects", {"metadata": {"name": "p"}, "spec": {"services": [{"name": "w", "image": "x"}]}}),
    ]:
        code, _ = plane.call("edge2", method, path, body)
        assert code in (403, 201) if path == NODES else code == 403, (method, path, code)


def test_viewer_reads_but_cannot_write(plane: ControlPlane) -> None:
    assert plane.call("control", "GET", NODES)[0] == 200
    code, problem = plane.call("control", "POST", NODES, node_wire("viewer-made"))
    assert code == 403 and "viewer" in problem["detail"]
    assert plane.call("control", "POST", f"{NODES}/edge1/drain")[0] == 403


def test_underlay_address_is_refused(plane: ControlPlane, lab: Lab) -> None:
    underlay = lab.hosts["control"]["underlay"].split("/")[0]
    result = lab.run("edge1", "curl", "-sS", "-m", "5", f"http://{underlay}:8080/api/healthz", check=False)
    assert result.returncode == 7, result.stderr  # curl 7: connection refused
    loopback = lab.run("control", "curl", "-sS", "-m", "5", "http://127.0.0.1:8080/api/healthz", check=False)
    assert loopback.returncode == 7, loopback.stderr


async def test_caller_unknown_to_the_tailnet_is_401(lab: Lab, tmp_path: Path) -> None:
    """A request arriving from an address the tailnet does not know (here loopback) gets 401 from real WhoIs."""
    store = await open_store("sqlite:///:memory:")
    local = LocalClient(lab.hosts["control"]["socket"])
    identity = TailnetIdentity(local=local, roles=RolesConfig())
    app = create_app(store=store, now=FakeClock().now, identity=identity, settings=Settings())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cara-server.test") as client:
            answer = await client.get(NODES)
        assert answer.status_code == 401 and answer.json()["title"] == "Unauthorized"
        assert "127.0.0.1" in answer.json()["detail"]
    finally:
        await local.aclose()
        await store.close()


def test_server_refuses_a_non_tailnet_listen_address(lab: Lab) -> None:
    result = lab.run(
        "control",
        str(Path(__import__("sys").executable).parent / "cara-server"),
        "--listen",
        f"{lab.hosts['control']['underlay'].split('/')[0]}:8080",
        check=False,
    )
    assert result.returncode == 1 and "not a tailnet address of this machine" in result.stderr


def test_caractrl_finds_the_server_by_magicdns(plane: ControlPlane, lab: Lab, tmp_path: Path) -> None:
    caractrl = str(Path(__import__("sys").executable).parent / "caractrl")
    result = lab.run(
        "operator", "env", "-u", "CARA_SERVER", f"HOME={tmp_path}", caractrl, "-v", "get", "nodes", check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"Using server {plane.url} (from MagicDNS name 'cara-server' via tailscaled)" in result.stderr
    assert result.stdout.startswith("NAME") or "No resources found" in result.stderr
