"""Tests of controlplane.client: routes, status handling, problem-document mapping and an unreachable server."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

import controlplane.client as client_module
from controlplane.api import Heartbeat, Node, NodeList, NodeState, ObjectMeta, ProjectPhase, ProjectStatusPatch
from controlplane.client import (
    ApiError,
    Client,
    Conflict,
    Forbidden,
    InvalidResponse,
    NotFound,
    ServerError,
    ServerUnreachable,
    Unauthorized,
    ValidationProblem,
)
from controlplane.client._transport import tls_context
from tests.factories import node_wire

BASE = "http://cara-server.test"
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler) -> Client:
    return Client(BASE, transport=httpx.MockTransport(handler))


def problem(status: int, title: str, detail: str, errors: list[str] | None = None) -> httpx.Response:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


async def test_create_node_posts_wire_json_and_decodes_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=node_wire("edge-1", unschedulable=True))

    async with make_client(handler) as client:
        node = await client.create_node(Node(metadata=ObjectMeta(name="edge-1")))
    assert (seen[0].method, seen[0].url.path) == ("POST", "/api/v1/nodes")
    assert json.loads(seen[0].content)["metadata"] == {"name": "edge-1"}
    assert node.spec.unschedulable is True


@pytest.mark.parametrize(
    ("call", "method", "path", "status", "answer"),
    [
        (lambda c: c.get_node("edge-1"), "GET", "/api/v1/nodes/edge-1", 200, node_wire("edge-1")),
        (lambda c: c.list_nodes(), "GET", "/api/v1/nodes", 200, {"kind": "NodeList", "items": []}),
        (
            lambda c: c.replace_node(Node(metadata=ObjectMeta(name="edge-1"))),
            "PUT",
            "/api/v1/nodes/edge-1",
            200,
            node_wire("edge-1"),
        ),
        (lambda c: c.delete_node("edge-1"), "DELETE", "/api/v1/nodes/edge-1", 204, None),
        (lambda c: c.heartbeat("edge-1", Heartbeat()), "POST", "/api/v1/nodes/edge-1/heartbeat", 204, None),
        (lambda c: c.cordon("edge-1"), "POST", "/api/v1/nodes/edge-1/cordon", 200, node_wire("edge-1")),
        (lambda c: c.drain("edge-1"), "POST", "/api/v1/nodes/edge-1/drain", 200, node_wire("edge-1")),
        (lambda c: c.uncordon("edge-1"), "POST", "/api/v1/nodes/edge-1/uncordon", 200, node_wire("edge-1")),
        (
            lambda c: c.get_project("web"),
            "GET",
            "/api/v1/projects/web",
            200,
            {"metadata": {"name": "web"}, "spec": {"services": [{"name": "a", "image": "b"}]}},
        ),
        (lambda c: c.list_projects(), "GET", "/api/v1/projects", 200, {"kind": "ProjectList", "items": []}),
        (
            lambda c: c.patch_project_status("web", ProjectStatusPatch(phase=ProjectPhase.RUNNING)),
            "PATCH",
            "/api/v1/projects/web/status",
            204,
            None,
        ),
        (lambda c: c.healthz(), "GET", "/api/healthz", 200, None),
    ],
    ids=[
        "get_node",
        "list_nodes",
        "replace_node",
        "delete_node",
        "heartbeat",
        "cordon",
        "drain",
        "uncordon",
        "get_project",
        "list_projects",
        "patch_project_status",
        "healthz",
    ],
)
async def test_each_method_uses_its_route(call, method, path, status, answer) -> None:  # type: ignore[no-untyped-def]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if answer is None:
            return httpx.Response(status, text="OK" if status == 200 else "")
        return httpx.Response(status, json=answer)

    async with make_client(handler) as client:
        await call(client)
    assert [(r.method, r.url.path) for r in seen] == [(method, path)]


async def test_list_passes_filters_as_query_parameters() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    async with make_client(handler) as client:
        await client.list_projects(
            phases=[ProjectPhase.PENDING, ProjectPhase.FAILED], node_ref="edge-1", label_selector="app=web"
        )
        await client.list_nodes(label_selector="site=lab")
    assert seen[0].url.params.get_list("phase") == ["Pending", "Failed"]
    assert seen[0].url.params["nodeRef"] == "edge-1"
    assert seen[0].url.params["labelSelector"] == "app=web"
    assert seen[1].url.params["labelSelector"] == "site=lab"


@pytest.mark.parametrize(("status", "gone_now"), [(204, True), (202, False)], ids=["deleted", "terminating"])
async def test_delete_project_tells_deleted_from_terminating(status: int, gone_now: bool) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    async with make_client(handler) as client:
        assert await client.delete_project("web", force=True) is gone_now
    assert seen[0].url.params["force"] == "true"


@pytest.mark.parametrize(
    ("status", "title", "cls"),
    [
        (400, "Validation Problem", ValidationProblem),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "Not Found", NotFound),
        (409, "Conflict", Conflict),
        (500, "Internal Server Error", ServerError),
        (503, "Service Unavailable", ServerError),
        (413, "Payload Too Large", ApiError),
    ],
    ids=["400", "401", "403", "404", "409", "500", "503", "413"],
)
async def test_problem_documents_become_typed_errors(status: int, title: str, cls: type[ApiError]) -> None:
    async with make_client(lambda r: problem(status, title, "because", ["spec.x: must be a string"])) as client:
        with pytest.raises(cls) as info:
            await client.get_node("edge-1")
    assert type(info.value) is cls
    assert (info.value.status, info.value.title, info.value.detail) == (status, title, "because")
    assert info.value.errors == ["spec.x: must be a string"]
    assert str(info.value) == f"{title}: because"


async def test_validation_problem_carries_every_field_error() -> None:
    errors = ["spec.unschedulable: must be a boolean", "metadata.name: must be 1-253 characters"]
    async with make_client(lambda r: problem(400, "Validation Problem", "invalid Node", errors)) as client:
        with pytest.raises(ValidationProblem) as info:
            await client.create_node(Node(metadata=ObjectMeta(name="x")))
    assert info.value.errors == errors


async def test_a_non_json_error_body_still_gives_a_title_and_detail() -> None:
    async with make_client(lambda r: httpx.Response(502, text="upstream down\n")) as client:
        with pytest.raises(ServerError) as info:
            await client.list_nodes()
    assert (info.value.title, info.value.detail, info.value.errors) == ("Bad Gateway", "upstream down", [])


async def test_an_unexpected_success_status_is_an_api_error() -> None:
    async with make_client(lambda r: httpx.Response(200, json=node_wire("edge-1"))) as client:
        with pytest.raises(ApiError) as info:
            await client.create_node(Node(metadata=ObjectMeta(name="edge-1")))
    assert info.value.status == 200


async def test_an_answer_that_breaks_the_contract_is_an_invalid_response() -> None:
    async with make_client(lambda r: httpx.Response(200, json={"metadata": {"name": "Bad Name"}})) as client:
        with pytest.raises(InvalidResponse) as info:
            await client.get_node("edge-1")
    assert info.value.errors[0].startswith("metadata.name: ")


async def test_connect_failure_names_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request)

    async with make_client(handler) as client:
        with pytest.raises(ServerUnreachable) as info:
            await client.list_nodes()
    assert info.value.url == BASE
    assert str(info.value) == f"cannot reach the control plane at {BASE}: All connection attempts failed"


async def test_timeout_is_unreachable_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with make_client(handler) as client:
        with pytest.raises(ServerUnreachable, match="timed out"):
            await client.healthz()


async def test_a_real_closed_port_is_unreachable() -> None:
    # Port 9 on loopback (discard) is closed on this machine: a real connect failure, loopback only.
    async with Client("http://127.0.0.1:9", timeout=2.0) as client:
        with pytest.raises(ServerUnreachable, match=r"http://127\.0\.0\.1:9"):
            await client.list_nodes()


async def test_names_are_quoted_into_the_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return problem(404, "Not Found", "no such node")

    async with make_client(handler) as client:
        with pytest.raises(NotFound):
            await client.get_node("a/b")
    assert seen[0].url.raw_path == b"/api/v1/nodes/a%2Fb"


def test_node_state_round_trips_through_nodelist() -> None:
    listing = NodeList.model_validate({"items": [{**node_wire("edge-1"), "status": {"state": "Draining"}}]})
    assert listing.items[0].status.state is NodeState.DRAINING


async def test_wire_returns_the_servers_json_as_sent() -> None:
    seen: list[httpx.Request] = []
    listing = {"apiVersion": "caravanserai/v1", "kind": "NodeList", "items": [node_wire("edge-1") | {"future": [1, 2]}]}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=node_wire("edge-2") if request.url.path.endswith("edge-2") else listing)

    async with make_client(handler) as client:
        assert await client.get_raw("nodes", label_selector="site=lab") == listing
        assert await client.get_raw("nodes", "edge-2") == node_wire("edge-2")
    assert [(r.url.path, r.url.query) for r in seen] == [
        ("/api/v1/nodes", b"labelSelector=site%3Dlab"),
        ("/api/v1/nodes/edge-2", b""),
    ]


@pytest.mark.parametrize(
    ("resource", "name", "body", "error"),
    [
        ("nodes", None, [], "must be an object"),
        ("nodes", None, {"kind": "ProjectList", "items": []}, "kind: must be NodeList"),
        ("projects", None, {"kind": "ProjectList", "items": {}}, "items: must be a list"),
        ("projects", None, {"items": [{"metadata": {}}]}, "items[0]: must be an object with a metadata.name"),
        ("projects", "web", {"kind": "Project", "metadata": {"name": 7}}, "metadata.name: is required"),
    ],
    ids=["not-an-object", "wrong-kind", "items-not-a-list", "item-without-name", "object-without-name"],
)
async def test_wire_checks_the_shape(
    resource: client_module.Resource, name: str | None, body: object, error: str
) -> None:
    async with make_client(lambda request: httpx.Response(200, json=body)) as client:
        with pytest.raises(InvalidResponse) as caught:
            await client.get_raw(resource, name)
    assert caught.value.errors == [error]


async def test_wire_errors_stay_typed() -> None:
    async with make_client(lambda request: problem(404, "Not Found", 'Node "x" not found')) as client:
        with pytest.raises(NotFound):
            await client.get_raw("nodes", "x")
    async with make_client(lambda request: httpx.Response(200, text="<html>")) as client:
        with pytest.raises(InvalidResponse, match="invalid NodeList"):
            await client.get_raw("nodes")


@pytest.mark.parametrize(("url", "loads_cas"), [("http://cara:8080", False), ("https://cara:8443", True)])
def test_the_ca_bundle_is_loaded_only_for_https(url: str, loads_cas: bool) -> None:
    context = tls_context(url)
    assert (context.cert_store_stats()["x509_ca"] > 0) is loads_cas
    # Either way a TLS peer must prove itself: plain http's context trusts nothing rather than everything.
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


@pytest.mark.parametrize(
    ("header", "names"),
    [
        (None, []),
        ("", []),
        ("edge1", ["edge1"]),
        (" edge1, edge3 ,,edge1 ", ["edge1", "edge3"]),
        (",".join(f"n{i}" for i in range(40)), [f"n{i}" for i in range(16)]),
    ],
    ids=["absent", "empty", "one", "spaces-empties-duplicates", "bounded"],
)
async def test_heartbeat_returns_the_nodes_the_server_asks_to_witness(header: str | None, names: list[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204, headers={"Cara-Witness": header} if header is not None else {})

    async with make_client(handler) as client:
        assert await client.heartbeat("edge-2", Heartbeat()) == names


async def test_watch_events_decodes_each_event_and_names_a_bad_one() -> None:
    event = {
        "metadata": {"name": "edge1.00000000000000a1"},
        "involvedObject": {"kind": "Node", "name": "edge1"},
        "type": "Warning",
        "reason": "NodeNotReady",
        "message": "Node edge1 is NotReady",
    }
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        lines = [{"type": "ADDED", "object": event}, {"type": "BOOKMARK", "object": {}}]
        if request.url.params.get("name") == "bad":
            lines.append({"type": "ADDED", "object": {**event, "type": "Loud"}})
        body = "".join(json.dumps(line) + "\n" for line in lines)
        return httpx.Response(200, text=body, headers={"content-type": "application/x-ndjson"})

    async with make_client(handler) as c:
        got = [(t, e.reason if e else None) async for t, e in c.watch_events(kind="Node", name="edge1", timeout_s=5)]
        assert got == [("ADDED", "NodeNotReady"), ("BOOKMARK", None)]
        assert dict(asked[0].url.params) == {"watch": "true", "kind": "Node", "name": "edge1", "timeoutSeconds": "5"}
        with pytest.raises(InvalidResponse, match="invalid Event: type"):
            async for _ in c.watch_events(name="bad"):
                pass
