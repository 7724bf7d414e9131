"""Peer discovery: a bounded, stable set of fellows per agent, every Node probed by as many, pairs covered over
epochs, served with an ETag (304 when unchanged) at GET /api/v1/nodes/{name}/peers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from controlplane.server.discovery import REBUILD_EVERY_S, PeerDirectory, ring_position
from tests.conftest import FakeClock

NODES = "/api/v1/nodes"


def _directory(
    addresses: dict[str, tuple[str, int | None]], clock: FakeClock, per_node: int = 4, epoch_s: int = 3600
) -> PeerDirectory:
    version = [0]
    return PeerDirectory(addresses=lambda: (version[0], addresses), now=clock.now, per_node=per_node, epoch_s=epoch_s)


def _fleet(count: int) -> dict[str, tuple[str, int | None]]:
    return {f"n{i}": (f"100.64.{i // 250}.{i % 250 + 1}", 9090 if i % 2 else None) for i in range(count)}


def test_each_node_probes_a_bounded_set_and_is_probed_by_as_many(clock: FakeClock) -> None:
    fleet = _fleet(200)
    directory = _directory(fleet, clock)
    probed_by: dict[str, int] = dict.fromkeys(fleet, 0)
    for name in fleet:
        peers = directory.peers_of(name)
        assert len(peers) == 4 and name not in {p.name for p in peers}
        assert all((p.ip, p.agent_port) == fleet[p.name] for p in peers)
        for peer in peers:
            probed_by[peer.name] += 1
    assert set(probed_by.values()) == {4}, "a ring: every Node has as many probers as it probes"


def test_a_node_joining_moves_only_its_neighbours(clock: FakeClock) -> None:
    fleet = _fleet(300)
    version = [0]
    directory = PeerDirectory(addresses=lambda: (version[0], fleet), now=clock.now, per_node=4)
    before = {name: directory.peers_of(name) for name in fleet}
    fleet["newcomer"] = ("100.64.9.9", None)
    version[0] += 1
    clock.step(REBUILD_EVERY_S)
    changed = [name for name in before if directory.peers_of(name) != before[name]]
    assert 1 <= len(changed) <= 4, changed
    assert all("newcomer" in {p.name for p in directory.peers_of(name)} for name in changed)


def test_addresses_arriving_one_by_one_rebuild_the_ring_once_per_period(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet(50)
    version = [0]
    directory = PeerDirectory(addresses=lambda: (version[0], fleet), now=clock.now, per_node=4)
    hashed: list[str] = []

    def counted(epoch: int, name: str) -> int:
        hashed.append(name)
        return ring_position(epoch, name)

    monkeypatch.setattr("controlplane.server.discovery.ring_position", counted)
    directory.peers_of("n0")
    assert len(hashed) == 50 + 1  # the ring, then the asking Node's own place
    for i in range(20):  # a fleet coming up: a new address before every question
        fleet[f"late{i}"] = (f"100.65.0.{i + 1}", 9090)
        version[0] += 1
        directory.peers_of(f"n{i}")
        clock.step(0.1)
    assert len(hashed) == 51 + 20, "no rebuild within the period: each question only looks up its own place"
    clock.step(REBUILD_EVERY_S)
    peers = {p.name for name in fleet for p in directory.peers_of(name)}
    assert {f"late{i}" for i in range(20)} <= peers, "after the period every address is on the ring"


def test_every_pair_is_covered_over_epochs(clock: FakeClock) -> None:
    fleet = _fleet(20)
    directory = _directory(fleet, clock, per_node=2, epoch_s=60)
    covered: set[frozenset[str]] = set()
    for _ in range(200):
        for name in fleet:
            covered |= {frozenset((name, p.name)) for p in directory.peers_of(name)}
        clock.step(60)
    assert len(covered) == 20 * 19 // 2


def test_a_fleet_of_one_has_no_peers_and_small_fleets_no_repeats(clock: FakeClock) -> None:
    assert _directory({"solo": ("100.64.0.1", None)}, clock).peers_of("solo") == []
    peers = _directory(_fleet(3), clock).peers_of("n0")
    assert sorted(p.name for p in peers) == ["n1", "n2"]
    assert [p.name for p in _directory(_fleet(3), clock).peers_of("unaddressed")] == ["n0", "n1", "n2"]


def test_witness_requests_are_named_with_their_addresses(clock: FakeClock) -> None:
    fleet = _fleet(10)
    directory = PeerDirectory(
        addresses=lambda: (0, fleet), now=clock.now, witness=lambda name: ["n7", "gone"] if name == "n1" else []
    )
    answer = directory.answer("n1")
    assert b'"witness":[{"name":"n7","ip":"100.64.0.8","agentPort":9090}]' in answer.body


async def _register_with_ip(api: httpx.AsyncClient, name: str, ip: str) -> None:
    assert (await api.post(NODES, json={"metadata": {"name": name}, "spec": {"hostname": name}})).status_code == 201
    beat = {"network": {"ip": ip, "agentPort": 9090}}
    assert (await api.post(f"{NODES}/{name}/heartbeat", json=beat)).status_code == 204


async def test_route_answers_names_and_addresses_with_an_etag(api: httpx.AsyncClient) -> None:
    for i in range(12):
        await _register_with_ip(api, f"edge{i}", f"100.64.0.{i + 1}")
    first = await api.get(f"{NODES}/edge3/peers")
    assert first.status_code == 200 and first.headers["etag"].startswith('"')
    body = first.json()
    assert body["kind"] == "PeerAssignment" and body["witness"] == []
    assert len(body["peers"]) == 8 and all(set(p) == {"name", "ip", "agentPort"} for p in body["peers"])
    again = await api.get(f"{NODES}/edge3/peers", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    await _register_with_ip(api, "edge12", "100.64.0.13")
    await api.post(f"{NODES}/edge12/heartbeat", json={"network": {"ip": "100.64.0.99"}})
    moved = {p["name"]: p["ip"] for p in (await api.get(f"{NODES}/edge3/peers")).json()["peers"]}
    assert moved.get("edge12", "100.64.0.99") == "100.64.0.99", "an address that moved is served moved"


async def test_route_refuses_an_unknown_node(api: httpx.AsyncClient) -> None:
    answer = await api.get(f"{NODES}/nobody/peers")
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("epoch_s", [3600])
def test_the_assignment_stays_within_an_epoch_and_changes_across_them(epoch_s: int) -> None:
    clock = FakeClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    directory = _directory(_fleet(500), clock, per_node=4, epoch_s=epoch_s)
    first = directory.answer("n1")
    clock.step(epoch_s - 1)
    assert directory.answer("n1") == first
    clock.step(timedelta(seconds=2).total_seconds())
    assert directory.answer("n1").etag != first.etag
