"""Heartbeats (design §3.4): empty beats renew the lease only; full beats replace non-empty fields."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock

NODES = "/api/v1/nodes"


@pytest.fixture
async def registered(api: httpx.AsyncClient) -> None:
    created = await api.post(NODES, json={"metadata": {"name": "edge1"}, "spec": {"hostname": "edge1"}})
    assert created.status_code == 201


FULL = {
    "network": {"ip": "100.64.0.3", "dnsName": "edge1.tailnet.test", "mode": "Direct", "agentPort": 9090},
    "capacity": {"cpu": "2000m", "memory": "1024Mi", "disk": "10Gi"},
    "info": {"kernelVersion": "6.1.0", "agentVersion": "0.1.0"},
    "conditions": [
        {"type": "NetworkUnavailable", "status": "False", "reason": "TailnetRunning"},
        {"type": "Ready", "status": "True", "reason": "AgentSaysSo"},
    ],
}


@pytest.mark.usefixtures("registered")
async def test_empty_beat_renews_the_lease_without_a_store_write(
    api: httpx.AsyncClient, memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    before = await memory_store.get_node("edge1")
    clock.step(3)
    for body in (None, b"", b"{}", b"  "):
        answer = await api.post(f"{NODES}/edge1/heartbeat", content=body)
        assert answer.status_code == 204, body
    lease = leases.get("edge1")
    assert lease is not None and lease.renewed_at == clock.now()
    assert await memory_store.get_node("edge1") == before
    shown = (await api.get(f"{NODES}/edge1")).json()
    assert shown["status"]["lastHeartbeat"] == "2026-11-24T12:00:03Z"


@pytest.mark.usefixtures("registered")
async def test_full_beat_replaces_given_fields_only(api: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=FULL)).status_code == 204
    clock.step(10)
    second: dict[str, Any] = {"network": {"ip": "100.64.0.9"}, "capacity": {}, "info": None}
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=second)).status_code == 204
    status = (await api.get(f"{NODES}/edge1")).json()["status"]
    assert status["network"] == {"ip": "100.64.0.9"}
    assert status["capacity"] == FULL["capacity"] and status["info"] == FULL["info"]
    assert status["lastHeartbeat"] == "2026-11-24T12:00:10Z"
    types = {c["type"]: c for c in status["conditions"]}
    assert set(types) == {"NetworkUnavailable"}, "the controller owns Ready; an agent's Ready is ignored"
    assert types["NetworkUnavailable"]["lastTransitionTime"] == "2026-11-24T12:00:00Z"


async def test_beat_for_unknown_node_is_404(api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{NODES}/ghost/heartbeat")
    assert answer.status_code == 404 and answer.json()["title"] == "Not Found"


@pytest.mark.usefixtures("registered")
async def test_going_away_beat_releases_the_lease(api: httpx.AsyncClient, leases: LeaseTable) -> None:
    await api.post(f"{NODES}/edge1/heartbeat")
    assert (await api.post(f"{NODES}/edge1/heartbeat", json={"state": "NotReady"})).status_code == 204
    lease = leases.get("edge1")
    assert lease is not None and lease.released


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"network": ', "body: invalid JSON: Expecting value (line 1, column 13)"),
        (b'{"network": {"agentPort": "x"}}', "network.agentPort: must be an integer"),
        (b'{"conditions": [{"type": "X"}]}', "conditions[0].status: is required"),
        (b"[1]", "body: must be a JSON object"),
    ],
    ids=["syntax", "wrong-type", "condition-without-status", "not-object"],
)
async def test_bad_beats_are_400_and_change_nothing_but_the_lease(
    api: httpx.AsyncClient, leases: LeaseTable, body: bytes, error: str
) -> None:
    """A bug in one collector must not take a Node NotReady: the agent spoke, so its lease renews."""
    before = (await api.get(f"{NODES}/edge1")).json()
    answer = await api.post(f"{NODES}/edge1/heartbeat", content=body)
    assert answer.status_code == 400 and answer.json()["errors"] == [error]
    assert answer.json()["detail"] == error
    assert leases.get("edge1") is not None
    after = (await api.get(f"{NODES}/edge1")).json()
    assert {**after["status"], "lastHeartbeat": None} == {**before["status"], "lastHeartbeat": None}


@pytest.mark.usefixtures("registered")
async def test_a_beat_with_invalid_facts_names_them_stores_none_and_renews_the_lease(
    api: httpx.AsyncClient, leases: LeaseTable
) -> None:
    body = {
        "capacity": {"cpu": "lots", "memory": "-5Gi"},
        "network": {"ip": "not-an-ip"},
        "info": {"osImage": "Debian 13"},
    }
    answer = await api.post(f"{NODES}/edge1/heartbeat", json=body)
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert errors == [
        "network.ip: Invalid value: \"not-an-ip\": must be a valid IP address (e.g. '100.64.0.5')",
        "capacity.cpu: Invalid value: \"lots\": must be a quantity such as '500m', '2', '512Mi' or '10Gi'",
        'capacity.memory: Invalid value: "-5Gi": must be greater than or equal to 0',
    ]
    assert "network.ip" in answer.json()["detail"] and "capacity.memory" in answer.json()["detail"]
    status = (await api.get(f"{NODES}/edge1")).json()["status"]
    assert "capacity" not in status and "info" not in status and "ip" not in status.get("network", {})
    assert leases.get("edge1") is not None


async def test_an_invalid_beat_for_an_unknown_node_is_still_404(api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{NODES}/ghost/heartbeat", json={"network": {"ip": "x"}})
    assert answer.status_code == 404


@pytest.mark.usefixtures("registered")
async def test_the_go_agents_beat_with_zero_times_passes(api: httpx.AsyncClient) -> None:
    """The body the Go cara-agent sends (../shared/contract/go-wire-transcripts.md), zero time and all."""
    body = (
        b'{"state":"Ready","network":{"ip":"100.64.0.9","agentPort":18703,'
        b'"throughput":{"lastTestTime":"0001-01-01T00:00:00Z"}}}'
    )
    assert (await api.post(f"{NODES}/edge1/heartbeat", content=body)).status_code == 204


async def test_deleted_node_beats_get_404(api: httpx.AsyncClient, registered: None) -> None:
    await api.post(f"{NODES}/edge1/heartbeat")
    await api.delete(f"{NODES}/edge1")
    assert (await api.post(f"{NODES}/edge1/heartbeat")).status_code == 404
