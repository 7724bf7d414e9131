"""Node history: full heartbeats record throughput samples and path changes, bounded; GET .../history serves them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from controlplane.api import CONTROL_PLANE_PEER, NetworkMode, Node, NodeNetworkStatus, PeerPath
from controlplane.server.app import create_app
from controlplane.server.identity import Caller, Role, Unauthorized
from controlplane.server.path_changes import path_changes
from controlplane.server.settings import Settings
from controlplane.store.base import Store, StoreError
from tests.conftest import API_URL, FakeClock
from tests.factories import node

NODES = "/api/v1/nodes"
LIMIT = 3


@pytest.fixture
def settings() -> Settings:
    return Settings(dev=True, history_limit=LIMIT)


@pytest.fixture
async def edge1(api: httpx.AsyncClient) -> None:
    assert (await api.post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201


def network(
    mode: str | None = "Direct",
    peers: list[dict[str, Any]] | None = None,
    tested: str | None = None,
    down: str = "90.0Mbps",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"ip": "100.64.0.1", **extra}
    if mode is not None:
        body["mode"] = mode
    if peers is not None:
        body["peers"] = peers
    if tested is not None:
        body["throughput"] = {"download": down, "upload": "40.0Mbps", "lastTestTime": tested, "bytesUsed": 1000}
    return {"network": body}


async def beat(api: httpx.AsyncClient, body: dict[str, Any], name: str = "edge1") -> None:
    answer = await api.post(f"{NODES}/{name}/heartbeat", json=body)
    assert answer.status_code == 204, answer.text


async def history(api: httpx.AsyncClient, name: str = "edge1") -> dict[str, Any]:
    answer = await api.get(f"{NODES}/{name}/history")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.usefixtures("edge1")
async def test_a_throughput_sample_is_kept_each_time_last_test_time_advances(api: httpx.AsyncClient) -> None:
    await beat(api, network(tested="2026-11-24T11:00:00Z"))
    await beat(api, network(tested="2026-11-24T11:00:00Z", down="1.0Mbps"))  # same test again: not a sample
    await beat(api, network(tested="2026-11-24T11:30:00Z", down="80.5Mbps"))
    await beat(api, network())  # no throughput at all: nothing
    answer = await history(api)
    assert answer["apiVersion"] == "caravanserai/v1" and answer["kind"] == "NodeHistory" and answer["name"] == "edge1"
    assert answer["throughput"] == [
        {"time": "2026-11-24T11:00:00Z", "download": "90.0Mbps", "upload": "40.0Mbps", "bytesUsed": 1000},
        {"time": "2026-11-24T11:30:00Z", "download": "80.5Mbps", "upload": "40.0Mbps", "bytesUsed": 1000},
    ]


@pytest.mark.usefixtures("edge1")
async def test_path_changes_to_the_control_plane_and_to_peers(api: httpx.AsyncClient, clock: FakeClock) -> None:
    edge2 = {"name": "edge2", "ip": "100.64.0.2"}
    await beat(api, network("Direct", [{**edge2, "mode": "Direct", "latencyMs": 1.5}], latencyMs=2.0))
    clock.step(10)
    await beat(api, network("Direct", [{**edge2, "mode": "Direct", "latencyMs": 1.7}], latencyMs=2.5))  # no change
    clock.step(10)
    await beat(api, network("Direct", [{**edge2, "mode": "DERP", "derpRegion": "lab", "latencyMs": 40.0}]))
    clock.step(10)
    await beat(api, network("DERP", [edge2], derpRegion="lab", latencyMs=35.0))  # edge2 idle: unknown, no change
    answer = await history(api)
    assert (
        answer["paths"]
        == [
            {"time": "2026-11-24T12:00:00Z", "peer": "cara-server", "to": "Direct", "latencyMs": 2.0},
            {"time": "2026-11-24T12:00:00Z", "peer": "edge2", "to": "Direct", "latencyMs": 1.5},
            {
                "time": "2026-11-24T12:00:20Z",
                "peer": "edge2",
                "from": "Direct",
                "to": "DERP",
                "derpRegion": "lab",
                "latencyMs": 40.0,
            },
            {
                "time": "2026-11-24T12:00:30Z",
                "peer": "cara-server",
                "from": "Direct",
                "to": "DERP",
                "derpRegion": "lab",
                "latencyMs": 35.0,
            },
        ][-LIMIT:]
    )


@pytest.mark.usefixtures("edge1")
async def test_each_list_is_bounded_by_the_history_limit(api: httpx.AsyncClient, clock: FakeClock) -> None:
    for minute in range(LIMIT + 4):
        clock.step(5)
        mode = "DERP" if minute % 2 else "Direct"
        await beat(api, network(mode, tested=f"2026-11-24T11:{minute:02d}:00Z"))
    answer = await history(api)
    assert [s["time"] for s in answer["throughput"]] == [f"2026-11-24T11:{m:02d}:00Z" for m in range(4, LIMIT + 4)]
    assert len(answer["paths"]) == LIMIT
    assert [(p["time"], p.get("from"), p["to"]) for p in answer["paths"]] == [
        ("2026-11-24T12:00:25Z", "DERP", "Direct"),
        ("2026-11-24T12:00:30Z", "Direct", "DERP"),
        ("2026-11-24T12:00:35Z", "DERP", "Direct"),
    ]


@pytest.mark.usefixtures("edge1")
async def test_beats_without_network_news_record_nothing(
    api: httpx.AsyncClient, memory_store: Store, clock: FakeClock
) -> None:
    await beat(api, network("Direct", tested="2026-11-24T11:00:00Z"))
    before = await memory_store.get_history("edge1")
    for body in ({}, {"capacity": {"cpu": "2"}}, network("Direct", tested="2026-11-24T11:00:00Z")):
        clock.step(10)
        await beat(api, body)
    assert await memory_store.get_history("edge1") == before
    assert len(before.throughput) == 1 and len(before.paths) == 1


async def test_history_of_an_unknown_node_is_a_404_problem(api: httpx.AsyncClient) -> None:
    answer = await api.get(f"{NODES}/ghost/history")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == 'Node "ghost" not found'


@pytest.mark.usefixtures("edge1")
async def test_deleting_the_node_deletes_its_history(api: httpx.AsyncClient) -> None:
    await beat(api, network("Direct", tested="2026-11-24T11:00:00Z"))
    assert (await api.delete(f"{NODES}/edge1")).status_code == 204
    assert (await api.post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
    answer = await history(api)
    assert (answer["throughput"], answer["paths"]) == ([], [])


class _OneCaller:
    def __init__(self, caller: Caller | None) -> None:
        self.caller = caller

    async def identify(self, request: Request) -> Caller:
        if self.caller is None:
            raise Unauthorized("nobody")
        return self.caller


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        pytest.param(Caller("auditor@", Role.VIEWER, "n-a"), 200, id="viewer-reads"),
        pytest.param(Caller("edge9", Role.NODE, "n-9"), 200, id="node-reads"),
        pytest.param(None, 401, id="stranger-refused"),
    ],
)
async def test_history_is_for_viewers_or_better(
    memory_store: Store, clock: FakeClock, caller: Caller | None, status: int
) -> None:
    await memory_store.create_node(node())
    app: FastAPI = create_app(store=memory_store, now=clock.now, identity=_OneCaller(caller), settings=Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API_URL) as client:
        assert (await client.get(f"{NODES}/edge1/history")).status_code == status


def _network(mode: NetworkMode | None, peers: dict[str, NetworkMode | None]) -> dict[str, NodeNetworkStatus]:
    paths = [PeerPath(name=name, mode=peer_mode) for name, peer_mode in peers.items()]
    return {"network": NodeNetworkStatus(mode=mode, peers=paths)}


D, R = NetworkMode.DIRECT, NetworkMode.DERP


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(node(status=_network(None, {})), node(status=_network(None, {})), [], id="nothing-known"),
        pytest.param(node(status=_network(D, {"b": D})), node(status=_network(D, {"b": D})), [], id="unchanged"),
        pytest.param(
            node(status=_network(D, {"b": D})),
            node(status=_network(R, {"b": D})),
            [(CONTROL_PLANE_PEER, D, R)],
            id="control-plane",
        ),
        pytest.param(
            node(status=_network(D, {"b": D, "c": R})),
            node(status=_network(D, {"c": D, "b": R})),
            [("c", R, D), ("b", D, R)],
            id="peers",
        ),
        pytest.param(
            node(status=_network(D, {"b": D})),
            node(status=_network(D, {"b": None})),
            [],
            id="going-idle-is-not-a-change",
        ),
        pytest.param(
            node(status=_network(D, {"b": None})),
            node(status=_network(D, {"b": R})),
            [("b", None, R)],
            id="known-again",
        ),
        pytest.param(
            node(status=_network(D, {})), node(status=_network(D, {"new": D})), [("new", None, D)], id="new-peer"
        ),
        pytest.param(
            node(),
            node(status=_network(D, {})),
            [(CONTROL_PLANE_PEER, None, D)],
            id="first",
        ),
    ],
)
async def test_path_changes_decisions(
    before: Node, after: Node, expected: list[tuple[str, NetworkMode | None, NetworkMode]], clock: FakeClock
) -> None:
    changes = path_changes(before, after, clock.now())
    assert [(c.peer, c.from_mode, c.to_mode) for c in changes] == expected
    assert all(c.time == clock.now() for c in changes)


@pytest.mark.usefixtures("edge1")
async def test_a_failing_history_write_never_fails_the_heartbeat(
    api: httpx.AsyncClient, memory_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(name: str, **entries: Any) -> None:
        raise StoreError("sqlite: disk I/O error")

    monkeypatch.setattr(memory_store, "append_history", broken)
    await beat(api, network("DERP", tested="2026-11-24T11:00:00Z"))
    stored = (await memory_store.get_node("edge1")).status.network
    assert stored is not None and stored.mode is NetworkMode.DERP
    assert "recording the history of node edge1 failed" in caplog.text
