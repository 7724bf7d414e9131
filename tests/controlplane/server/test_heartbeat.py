"""Heartbeats (design §3.4): empty beats renew the lease only; full beats replace non-empty fields, and merge
`network` field by field as the Go server does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from controlplane.server.settings import Settings
from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock

NODES = "/api/v1/nodes"


@pytest.fixture
async def registered(api: httpx.AsyncClient) -> None:
    created = await api.post(NODES, json={"metadata": {"name": "edge1"}, "spec": {"hostname": "edge1"}})
    assert created.status_code == 201


FULL: dict[str, Any] = {
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
    assert status["network"] == {**FULL["network"], "ip": "100.64.0.9"}, "network merges field by field"
    assert status["capacity"] == FULL["capacity"] and status["info"] == FULL["info"]
    assert status["lastHeartbeat"] == "2026-11-24T12:00:10Z"
    types = {c["type"]: c for c in status["conditions"]}
    assert set(types) == {"NetworkUnavailable"}, "the controller owns Ready; an agent's Ready is ignored"
    assert types["NetworkUnavailable"]["lastTransitionTime"] == "2026-11-24T12:00:00Z"


@pytest.mark.usefixtures("registered")
async def test_the_control_paths_reason_goes_with_its_mode(api: httpx.AsyncClient) -> None:
    """A beat that says the mode says its reason: back to Direct, the old reason is gone; a beat without the mode
    (a Go agent's) keeps both."""
    relayed = {"mode": "DERP", "derpRegion": "lab", "relayReason": "UDPBlocked", "relayMessage": "no pong direct"}
    for network, reason in (
        (relayed, "UDPBlocked"),
        ({"ip": "100.64.0.3"}, "UDPBlocked"),
        ({"mode": "Direct"}, None),
    ):
        assert (await api.post(f"{NODES}/edge1/heartbeat", json={"network": network})).status_code == 204
        shown = (await api.get(f"{NODES}/edge1")).json()["status"]["network"]
        assert (shown.get("relayReason"), "relayMessage" in shown) == (reason, reason is not None), network


@pytest.mark.usefixtures("registered")
async def test_an_agents_ready_is_not_trusted(api: httpx.AsyncClient, leases: LeaseTable) -> None:
    """Our agent sends state Ready in full beats for the Go server; ours computes the state itself."""
    assert (await api.post(f"{NODES}/edge1/heartbeat", json={**FULL, "state": "Ready"})).status_code == 204
    assert (await api.get(f"{NODES}/edge1")).json()["status"]["state"] == "NotReady"  # the controller's call
    assert (await api.post(f"{NODES}/edge1/drain")).status_code == 200
    assert (await api.post(f"{NODES}/edge1/heartbeat", json={**FULL, "state": "Ready"})).status_code == 204
    assert (await api.get(f"{NODES}/edge1")).json()["status"]["state"] == "Draining"
    lease = leases.get("edge1")
    assert lease is not None and not lease.released
    assert (await api.post(f"{NODES}/edge1/heartbeat", json={"state": "NotReady"})).status_code == 204
    lease = leases.get("edge1")
    assert lease is not None and lease.released  # the goodbye still works


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
    served = ("lastHeartbeat", "factsStale")  # the served view of the lease, which renewed
    assert {k: v for k, v in after["status"].items() if k not in served} == {
        k: v for k, v in before["status"].items() if k not in served
    }


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


@pytest.mark.usefixtures("registered")
async def test_a_beat_carries_witnesses_in_and_takes_witness_requests_out(
    api: httpx.AsyncClient, app: FastAPI, clock: FakeClock
) -> None:
    for name in ("edge2", "edge3"):
        assert (await api.post(NODES, json={"metadata": {"name": name}})).status_code == 201
    board = app.state.context.writes.witnesses
    plain = await api.post(f"{NODES}/edge1/heartbeat")
    assert "cara-witness" not in plain.headers, "nothing wanted: no header"
    board.want(["edge2", "edge1"])  # the leader's lifecycle pass wants witnesses of silent edge2 (and edge1)
    asked = await api.post(f"{NODES}/edge1/heartbeat")
    assert asked.headers["cara-witness"] == "edge2", "never asked about itself"
    report = {"name": "edge2", "at": "2026-11-24T12:00:00Z", "mode": "Direct", "latencyMs": 1.5}
    full = await api.post(f"{NODES}/edge3/heartbeat", json={"network": {"ip": "100.64.0.3", "witnessed": [report]}})
    assert full.status_code == 204 and full.headers["cara-witness"] == "edge2,edge1"
    witness = board.newest("edge2")
    assert witness is not None and (witness.by, witness.latency_ms) == ("edge3", 1.5)
    third = await api.post(f"{NODES}/edge2/heartbeat")
    assert third.headers["cara-witness"] == "edge1", "edge2 was handed to two agents this window already"
    clock.step(10)  # a new window (one heartbeat interval)
    assert (await api.post(f"{NODES}/edge3/heartbeat")).headers["cara-witness"] == "edge2,edge1"
    stored = (await api.get(f"{NODES}/edge3")).json()["status"]["network"]
    assert stored["witnessed"] == [report], "the witness is kept with edge3's facts, for the other replicas"


@pytest.mark.usefixtures("registered")
async def test_facts_are_served_stale_once_past_the_grace(api: httpx.AsyncClient, clock: FakeClock) -> None:
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=FULL)).status_code == 204
    assert (await api.get(f"{NODES}/edge1")).json()["status"]["factsStale"] is False
    clock.step(40)
    assert (await api.post(f"{NODES}/edge1/heartbeat")).status_code == 204  # an empty beat reconfirms them
    clock.step(40)
    assert (await api.get(f"{NODES}/edge1")).json()["status"]["factsStale"] is False, "exactly at grace: current"
    clock.step(1)
    status = (await api.get(f"{NODES}/edge1")).json()["status"]
    assert status["factsStale"] is True
    assert status["network"]["ip"] == "100.64.0.3", "the facts stay stored: last known values"


#: The Go agent's register and beat bodies, from /work/shared/contract/go-wire-transcripts.md (captured from the
#: Go programs): its beat carries no dnsName and no mode, a zero agentPort never, and an empty throughput.
GO_REGISTER = (
    b'{"apiVersion":"caravanserai/v1","kind":"Node","metadata":{"name":"edge-go-1","createdAt":"0001-01-01T00:00:00Z",'
    b'"updatedAt":"0001-01-01T00:00:00Z"},"spec":{"hostname":"edge-go-1"},"status":{"network":{"throughput":'
    b'{"lastTestTime":"0001-01-01T00:00:00Z"}},"info":{},"lastHeartbeat":"0001-01-01T00:00:00Z"}}'
)
GO_BEAT = (
    b'{"state":"Ready","network":{"ip":"100.64.0.9","agentPort":18703,"throughput":'
    b'{"lastTestTime":"0001-01-01T00:00:00Z"}}}'
)


async def test_go_agents_minimal_beat_keeps_the_stored_dns_name_mode_and_throughput(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = {"Content-Type": "application/json"}
    assert (await api.post(NODES, content=GO_REGISTER, headers=headers)).status_code == 201
    known = {
        "network": {
            "ip": "100.64.0.8",
            "dnsName": "edge-go-1.tailnet.test",
            "mode": "DERP",
            "throughput": {"download": "94.1Mbps", "upload": "41.0Mbps", "lastTestTime": "2026-11-24T11:00:00Z"},
        }
    }
    assert (await api.post(f"{NODES}/edge-go-1/heartbeat", json=known)).status_code == 204
    clock.step(10)
    answer = await api.post(f"{NODES}/edge-go-1/heartbeat", content=GO_BEAT, headers=headers)
    assert answer.status_code == 204
    network = (await api.get(f"{NODES}/edge-go-1")).json()["status"]["network"]
    assert network == {**known["network"], "ip": "100.64.0.9", "agentPort": 18703}


@pytest.mark.usefixtures("registered")
async def test_explicit_empty_peer_list_clears_the_peers(api: httpx.AsyncClient) -> None:
    peers = {"network": {"ip": "100.64.0.3", "peers": [{"name": "edge2", "mode": "Direct"}]}}
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=peers)).status_code == 204
    without = {"network": {"ip": "100.64.0.3"}}
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=without)).status_code == 204
    network = (await api.get(f"{NODES}/edge1")).json()["status"]["network"]
    assert network["peers"] == [{"name": "edge2", "mode": "Direct"}], "a beat without peers keeps them"
    cleared = {"network": {"ip": "100.64.0.3", "peers": []}}
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=cleared)).status_code == 204
    assert (await api.get(f"{NODES}/edge1")).json()["status"]["network"]["peers"] == []


@pytest.mark.usefixtures("registered")
async def test_a_rejected_beat_renews_the_lease_but_never_makes_the_facts_fresh(
    api: httpx.AsyncClient, leases: LeaseTable, clock: FakeClock
) -> None:
    """A 400 beat keeps the Node alive (its lease renews) but confirms nothing: the facts keep the time of the last
    accepted beat and go stale after the grace in every view, until a full beat is accepted again."""
    from controlplane.api import Node
    from controlplane.cli.mesh import not_direct
    from controlplane.cli.pages import freshness_lines
    from controlplane.cli.printers import node_row

    assert (await api.post(f"{NODES}/edge1/heartbeat", json=FULL)).status_code == 204
    confirmed = (await api.get(f"{NODES}/edge1")).json()["status"]["lastHeartbeat"]
    for _ in range(3):  # one rejected beat, then "nothing changed" since the rejected facts: no reconfirmation
        clock.step(30)
        assert (await api.post(f"{NODES}/edge1/heartbeat", json={"network": {"ip": "bad"}})).status_code == 400
        clock.step(30)
        assert (await api.post(f"{NODES}/edge1/heartbeat")).status_code == 204
    lease = leases.get("edge1")
    assert lease is not None and lease.is_fresh(clock.now(), Settings().grace), "liveness kept: the Node stays Ready"
    served = (await api.get(f"{NODES}/edge1")).json()
    status = served["status"]
    assert status["factsStale"] is True, "confirmed 180 s ago, past the grace, though the last beat was 0 s ago"
    assert status["factsConfirmedAt"] == confirmed and status["lastHeartbeat"] != confirmed
    row = node_row(served, clock.now(), wide=True)
    assert row[3] == "Direct?" and row[7] == "stale 3m", row
    facts = freshness_lines(Node.model_validate(served), clock.now())[0]
    assert "STALE" in facts and "3m ago" in facts and "rejected" in facts, facts
    (own,) = not_direct([Node.model_validate(served)], clock.now())
    assert (own.kind, own.text, own.stale) == ("stale", "Direct?", True), "mesh: the last known mode, not current"
    assert own.since is not None and own.since.isoformat().replace("+00:00", "Z") == confirmed, "since confirmed"
    metrics = (await api.get("/metrics")).text
    assert 'cara_node_facts_stale{node="edge1"} 1.0' in metrics
    assert 'cara_node_path_mode{mode="Direct",node="edge1"' not in metrics, "a stale path is not exported as a mode"
    assert (await api.post(f"{NODES}/edge1/heartbeat", json=FULL)).status_code == 204  # valid facts again
    status = (await api.get(f"{NODES}/edge1")).json()["status"]
    assert status["factsStale"] is False and status["factsConfirmedAt"] == status["lastHeartbeat"]
