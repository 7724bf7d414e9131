"""Peer probing: who the fellow agents are, which of them a round probes, rotation within the period, reporting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path as FsPath
from typing import Any

import httpx
import pytest

from agent.collectors.peers import (
    NODE_LIST_REFRESH,
    PeerProbeConfig,
    PeerProber,
    PeerRecord,
    assigned_fellows,
    choose,
    fellows_of,
    match_fellows,
    merge_peers,
    round_budget,
)
from agent.collectors.resources import Usage
from agent.collectors.tailnet import TailnetView, network_condition
from agent.settings import Reservation, SettingError, load_settings
from agent.status import AgentStatus
from controlplane.api import (
    ConditionStatus,
    NetworkMode,
    Node,
    NodeInfo,
    NodeNetworkStatus,
    NodeState,
    NodeStatus,
    ObjectMeta,
    PeerPath,
    ProbeTarget,
)
from controlplane.client import Client, ServerUnreachable
from mesh import IPAddress, Path, Status, Via
from tests.conftest import FakeClock

TAG = "tag:cara-node"


def peer(name: str, index: int, **kw: Any) -> dict[str, Any]:
    """peer is one PeerStatus on the wire: online, tagged, idle unless kw says otherwise."""
    doc = {
        "ID": str(index),
        "HostName": name,
        "DNSName": f"{name}.tailnet.test.",
        "TailscaleIPs": [f"100.64.0.{index}"],
        "Tags": [TAG],
        "Online": True,
        "InNetworkMap": True,
        "Relay": "headscale",
    }
    doc.update(kw)
    return doc


def tailnet(*peers: dict[str, Any]) -> Status:
    me = peer("edge1", 1)
    return Status.model_validate(
        {"BackendState": "Running", "Self": me, "Peer": {f"nodekey:{p['ID']}": p for p in peers}}
    )


def fleet(count: int) -> Status:
    """fleet is edge1's view of edge2..edge{count+1}, all idle."""
    return tailnet(*(peer(f"edge{i}", i) for i in range(2, count + 2)))


def node(name: str, ip: str) -> ProbeTarget:
    return ProbeTarget(name=name, ip=ip)


def nodes_of(status: Status) -> list[ProbeTarget]:
    return [node("edge1", "100.64.0.1")] + [node(p.host_name, str(p.ipv4)) for p in status.peers]


class FakeProbe:
    """FakeProbe answers with a scripted path per IP (Direct by default) and records who was probed."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}
        self.calls: list[str] = []

    async def __call__(self, ip: IPAddress) -> Path:
        self.calls.append(str(ip))
        return self.paths.get(str(ip), Path(Via.DIRECT, endpoint=f"{ip}:41641", latency_ms=1.25))


class FakeNodes:
    def __init__(self, nodes: Sequence[ProbeTarget]) -> None:
        self.nodes, self.reads, self.fail = list(nodes), 0, False

    async def __call__(self) -> Sequence[ProbeTarget]:
        self.reads += 1
        if self.fail:
            raise ServerUnreachable("http://cara-server:8080", "connection refused")
        return self.nodes


def prober(status: Status, clock: FakeClock, **config: Any) -> tuple[PeerProber, FakeProbe, FakeNodes]:
    probe, nodes = FakeProbe(), FakeNodes(nodes_of(status))
    cfg = PeerProbeConfig(**{"per_round": 4, "refresh_period": 60.0, "round_interval": 10.0, **config})
    return PeerProber(self_name="edge1", list_nodes=nodes, probe=probe, now=clock.now, config=cfg), probe, nodes


@pytest.mark.parametrize(
    ("tracked", "per_round", "period", "interval", "budget"),
    [
        (0, 4, 60, 10, 0),
        (2, 4, 60, 10, 2),  # a small fleet: everyone, every round
        (16, 4, 60, 10, 4),  # 6 rounds x 4 >= 16: per_round suffices
        (100, 4, 60, 10, 17),  # raised: 100 peers over 6 rounds
        (256, 4, 60, 2, 9),  # 30 rounds per period
        (10, 4, 5, 10, 10),  # period shorter than a round: everyone every round
    ],
    ids=["none", "small-fleet", "per-round-enough", "raised", "short-beats", "period-below-interval"],
)
def test_round_budget(tracked: int, per_round: int, period: float, interval: float, budget: int) -> None:
    config = PeerProbeConfig(per_round=per_round, refresh_period=period, round_interval=interval)
    assert round_budget(tracked, config) == budget


def test_choose_urgent_first_then_least_recently_probed_then_name() -> None:
    t = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    ip = Status.model_validate({"TailscaleIPs": ["100.64.0.9"]}).tailscale_ips[0]
    records = [
        PeerRecord("a", ip, probed_at=t.replace(second=30), urgent=False),
        PeerRecord("b", ip, probed_at=t.replace(second=10), urgent=False),
        PeerRecord("c", ip, probed_at=t.replace(second=50), urgent=True),
        PeerRecord("d", ip, probed_at=None, urgent=False),
        PeerRecord("e", ip, probed_at=t.replace(second=10), urgent=False),
    ]
    assert [r.name for r in choose(records, 4)] == ["c", "d", "b", "e"]
    assert [r.name for r in choose(records, 10)] == ["c", "d", "b", "e", "a"]
    assert choose(records, 0) == []


def test_fellows_are_tagged_online_peers_that_are_nodes() -> None:
    status = tailnet(
        peer("edge2", 2),
        peer("laptop", 3, Tags=[]),  # a tailnet user's machine, not an agent
        peer("edge4", 4, Online=False),  # an agent that is away
        peer("stray", 5),  # tagged, but no Node (an agent not registered yet)
        peer("edge6", 6),  # its Node has another name: matched by tailnet IP
        peer("cara-server", 7, Tags=["tag:cara-server"]),
    )
    nodes = [
        node("edge1", "100.64.0.1"),
        node("edge2", "100.64.0.2"),
        node("laptop", "100.64.0.3"),
        node("edge4", "100.64.0.4"),
        node("warehouse-6", "100.64.0.6"),
    ]
    fellows, unmatched = match_fellows(status, nodes, self_name="edge1", tag=TAG)
    assert {name: str(p.ipv4) for name, p in fellows.items()} == {
        "edge2": "100.64.0.2",
        "warehouse-6": "100.64.0.6",
    }
    assert unmatched == 1
    without_list, _ = match_fellows(status, None, self_name="edge1", tag=TAG)
    assert sorted(without_list) == ["edge2", "edge6", "stray"]


async def test_a_small_fleet_is_probed_every_round(clock: FakeClock) -> None:
    status = fleet(2)
    peers, probe, _ = prober(status, clock)
    paths = await peers.round(status)
    assert [(p.name, p.ip, p.mode, p.latency_ms, p.last_seen) for p in paths] == [
        ("edge2", "100.64.0.2", NetworkMode.DIRECT, 1.25, clock.now()),
        ("edge3", "100.64.0.3", NetworkMode.DIRECT, 1.25, clock.now()),
    ]
    clock.step(10)
    await peers.round(status)
    assert sorted(probe.calls) == ["100.64.0.2", "100.64.0.2", "100.64.0.3", "100.64.0.3"]


@pytest.mark.parametrize(
    ("count", "per_round", "period", "rounds"),
    [(10, 4, 30, 3), (40, 4, 60, 6), (16, 4, 60, 4)],
    ids=["per-round", "raised-budget", "default-max-peers"],
)
async def test_rotation_refreshes_every_peer_within_the_period(
    clock: FakeClock, count: int, per_round: int, period: float, rounds: int
) -> None:
    status = fleet(count)
    peers, probe, _ = prober(status, clock, per_round=per_round, refresh_period=period, max_peers=64)
    budget = round_budget(count, peers.config)
    last: dict[str, datetime] = {}
    for _ in range(3 * rounds):
        before = len(probe.calls)
        await peers.round(status)
        assert len(probe.calls) - before == budget  # bounded per round
        for ip in probe.calls[before:]:
            last[ip] = clock.now()
        for ip, when in last.items():  # nobody waits longer than the period
            assert (clock.now() - when).total_seconds() < period, ip
        clock.step(10)
    assert len(last) == count
    # round robin: over one period every peer is probed the same number of times, give or take one
    counts = [probe.calls[-rounds * budget :].count(ip) for ip in last]
    assert max(counts) - min(counts) <= 1


async def test_a_passive_change_is_probed_before_the_rotation(clock: FakeClock) -> None:
    status = fleet(12)  # 12 peers, 4 per round: each peer's turn comes every 3 rounds
    peers, probe, _ = prober(status, clock)
    for _ in range(3):
        await peers.round(status)
        clock.step(10)
    assert {r.mode for r in peers.records.values()} == {NetworkMode.DIRECT}
    # edge5 talks to us and tailscale itself fell back: Active with its home Relay, no CurAddr
    switched = fleet(12)
    switched.peer["nodekey:5"] = switched.peer["nodekey:5"].model_copy(update={"active": True})
    probe.paths["100.64.0.5"] = Path(Via.DERP, derp_region="headscale", latency_ms=40.0)
    before = len(probe.calls)
    paths = {p.name: p for p in await peers.round(switched)}
    assert probe.calls[before] == "100.64.0.5"  # first in this round, although edge5 was probed last round
    assert (paths["edge5"].mode, paths["edge5"].derp_region, paths["edge5"].latency_ms) == (
        NetworkMode.DERP,
        "headscale",
        40.0,
    )


async def test_a_path_that_stops_answering_is_unknown_and_retried_once_first(clock: FakeClock) -> None:
    status = fleet(12)
    peers, probe, _ = prober(status, clock)
    for _ in range(3):
        await peers.round(status)
        clock.step(10)
    seen = peers.records["edge2"].last_seen
    probe.paths["100.64.0.2"] = Path(Via.NO_ANSWER)
    for _ in range(3):  # edge2's turn comes within 3 rounds
        await peers.round(status)
        clock.step(10)
        if "100.64.0.2" in probe.calls[-4:]:
            break
    record = peers.records["edge2"]
    assert (record.mode, record.latency_ms, record.last_seen, record.urgent) == (None, None, seen, True)
    await peers.round(status)
    assert probe.calls[-4] == "100.64.0.2"  # retried first
    assert peers.records["edge2"].urgent is False  # still silent: back to the rotation, not hogging the budget
    clock.step(10)
    await peers.round(status)
    assert "100.64.0.2" not in probe.calls[-4:]


async def test_probing_is_bounded_by_max_peers_and_stable(clock: FakeClock) -> None:
    status = fleet(30)
    peers, _, _ = prober(status, clock, max_peers=8)
    first = [p.name for p in await peers.round(status)]
    clock.step(10)
    second = [p.name for p in await peers.round(status)]
    assert len(first) == 8 and first == second


async def test_the_node_list_is_read_when_due_or_when_a_new_agent_appears(clock: FakeClock) -> None:
    status = fleet(2)
    peers, _, nodes = prober(status, clock, refresh_period=60.0)
    await peers.round(status)
    clock.step(59)
    await peers.round(status)
    assert nodes.reads == 1
    grown = fleet(3)  # edge4 joined the tailnet before its Node is listed here
    clock.step(2)
    await peers.round(grown)
    assert nodes.reads == 2
    clock.step(10)
    await peers.round(grown)
    assert nodes.reads == 2  # still unmatched, but at most once per refresh period
    nodes.nodes = nodes_of(grown)
    clock.step(60)
    assert [p.name for p in await peers.round(grown)] == ["edge2", "edge3", "edge4"]
    assert nodes.reads == 3


async def test_a_failed_node_list_keeps_the_last_one(clock: FakeClock) -> None:
    status = fleet(2)
    peers, _, nodes = prober(status, clock)
    await peers.round(status)
    nodes.fail = True
    clock.step(NODE_LIST_REFRESH)
    assert [p.name for p in await peers.round(status)] == ["edge2", "edge3"]
    assert nodes.reads == 2


def test_merge_keeps_the_probed_fellows_and_the_other_peers_we_talk_to() -> None:
    probed = [PeerPath(name="edge2", ip="100.64.0.2", mode=NetworkMode.DERP, derp_region="headscale")]
    passive = [
        PeerPath(name="cara-server", ip="100.64.0.9", mode=NetworkMode.DIRECT),
        PeerPath(name="edge2", ip="100.64.0.2", mode=NetworkMode.DIRECT),
    ]
    merged = merge_peers(probed, passive, 16)
    assert [(p.name, p.mode) for p in merged] == [("cara-server", NetworkMode.DIRECT), ("edge2", NetworkMode.DERP)]
    assert [p.name for p in merge_peers(probed, passive, 1)] == ["edge2"]


class Machine:
    """Machine is a fixed 2-CPU, 1 GiB, 10 GiB box for snapshots."""

    def cpu_count(self) -> int:
        return 2

    def memory(self) -> Usage:
        return Usage(total=2**30, free=2**29)

    def disk(self, path: FsPath) -> Usage:
        return Usage(total=10 * 2**30, free=5 * 2**30)


class OneView:
    """OneView is a tailnet collector that always sees `status`, with the passive peers `passive`."""

    def __init__(self, status: Status, passive: list[PeerPath]) -> None:
        self.status, self.passive = status, passive

    async def collect(self, now: datetime) -> TailnetView:
        network = NodeNetworkStatus(ip="100.64.0.1", mode=NetworkMode.DIRECT, peers=self.passive or None)
        condition = network_condition(ConditionStatus.FALSE, "TailscaledRunning", "ok", now)
        return TailnetView(network, condition, "100.64.0.1", "Running", self.status)


async def test_a_probed_change_reaches_the_signature_so_the_next_beat_is_full(clock: FakeClock) -> None:
    status = fleet(2)
    peers, probe, _ = prober(status, clock)
    server = PeerPath(name="cara-server", ip="100.64.0.9", mode=NetworkMode.DIRECT)
    agent = AgentStatus(
        tailnet=OneView(status, [server]),  # type: ignore[arg-type]
        resources=Machine(),
        info=NodeInfo(),
        data_dir=FsPath("/"),
        reserved=Reservation(),
        now=clock.now,
        peers=peers,
    )
    first = await agent.snapshot()
    assert first.beat.to_wire()["state"] == "Ready"  # as the Go agent says, so a Go server counts the Node Ready
    assert first.beat.state is NodeState.READY
    network = first.beat.network
    assert network is not None and network.peers is not None
    assert [(p.name, p.mode) for p in network.peers] == [
        ("cara-server", NetworkMode.DIRECT),
        ("edge2", NetworkMode.DIRECT),
        ("edge3", NetworkMode.DIRECT),
    ]
    clock.step(10)
    assert (await agent.snapshot()).signature == first.signature  # latency wobble alone is no change
    probe.paths["100.64.0.3"] = Path(Via.DERP, derp_region="headscale", latency_ms=40.0)
    clock.step(10)
    changed = await agent.snapshot()
    assert changed.signature != first.signature
    assert changed.beat.network is not None and changed.beat.network.peers is not None
    edge3 = changed.beat.network.peers[2].to_wire()
    assert edge3 == {
        "name": "edge3",
        "ip": "100.64.0.3",
        "mode": "DERP",
        "derpRegion": "headscale",
        "latencyMs": 40.0,
        "lastSeen": "2026-11-24T12:00:20Z",
        # fleet()'s Self advertises no endpoint of its own, which is the first thing that rules out a direct path.
        "relayReason": "NoEndpoints",
        "relayMessage": "this node advertises no direct endpoint (its own Addrs are empty).",
        "since": "2026-11-24T12:00:20Z",
    }


def test_peer_settings_defaults_environment_and_errors() -> None:
    defaults = load_settings({}, {}, hostname="h")
    assert (defaults.peer_probes_per_round, defaults.peer_refresh_period) == (4, 60.0)
    env = {"PEER_PROBES_PER_ROUND": "0", "PEER_REFRESH_PERIOD": "2m"}
    s = load_settings({"peer_probes_per_round": "8"}, env, hostname="h")
    assert (s.peer_probes_per_round, s.peer_refresh_period) == (8, 120.0)
    with pytest.raises(SettingError, match=r"^PEER_PROBES_PER_ROUND: 300 is out of range \[0, 256\]$"):
        load_settings({}, {"PEER_PROBES_PER_ROUND": "300"}, hostname="h")
    with pytest.raises(SettingError, match=r"^PEER_REFRESH_PERIOD: 'often' is not a duration"):
        load_settings({}, {"PEER_REFRESH_PERIOD": "often"}, hostname="h")


def test_a_node_list_reduces_to_the_nodes_with_an_address() -> None:
    with_ip = Node(metadata=ObjectMeta(name="edge2"), status=NodeStatus(network=NodeNetworkStatus(ip="100.64.0.2")))
    assert fellows_of([with_ip, Node(metadata=ObjectMeta(name="fresh"))]) == [node("edge2", "100.64.0.2")]


async def test_the_assignment_is_asked_with_its_etag_and_a_go_server_is_listed_instead() -> None:
    seen: list[tuple[str, str | None]] = []
    assignment = {"peers": [{"name": "edge2", "ip": "100.64.0.2"}], "witness": [{"name": "edge9", "ip": "100.64.0.9"}]}
    go_server = False

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("if-none-match")))
        if request.url.path.endswith("/peers"):
            if go_server:
                return httpx.Response(404, json={"error": "not found"})
            if request.headers.get("if-none-match") == '"v1"':
                return httpx.Response(304, headers={"etag": '"v1"'})
            return httpx.Response(200, json=assignment, headers={"etag": '"v1"'})
        nodes = [{"metadata": {"name": "edge3"}, "status": {"network": {"ip": "100.64.0.3"}}}]
        return httpx.Response(200, json={"items": nodes})

    async with Client("http://cara-server:8080", transport=httpx.MockTransport(answer)) as client:
        fellows = assigned_fellows(client, "edge1")
        expected = [node("edge2", "100.64.0.2"), node("edge9", "100.64.0.9")]
        assert await fellows() == expected
        assert await fellows() == expected, "a 304 keeps the last answer"
        go_server = True
        assert await fellows() == [node("edge3", "100.64.0.3")]
    assert seen == [
        ("/api/v1/nodes/edge1/peers", None),
        ("/api/v1/nodes/edge1/peers", '"v1"'),
        ("/api/v1/nodes/edge1/peers", '"v1"'),
        ("/api/v1/nodes", None),
    ]


async def test_a_relayed_probe_says_why_and_since_when(clock: FakeClock) -> None:
    status = fleet(2)
    assert status.self_ is not None
    status = status.model_copy(update={"self_": status.self_.model_copy(update={"addrs": ["10.99.11.2:41641"]})})
    probe, nodes = FakeProbe(), FakeNodes(nodes_of(status))
    looked_up: list[str] = []

    async def endpoints(ip: IPAddress) -> list[str]:
        looked_up.append(str(ip))
        return [f"10.99.1{str(ip)[-1]}.2:41641"]

    peers = PeerProber(self_name="edge1", list_nodes=nodes, probe=probe, now=clock.now, endpoints=endpoints)
    first = {p.name: p for p in await peers.round(status)}
    assert first["edge3"].relay_reason is None and first["edge3"].since == clock.now()
    assert looked_up == []  # Direct paths need no lookup
    start = clock.now()
    clock.step(10)
    probe.paths["100.64.0.3"] = Path(Via.DERP, derp_region="headscale", latency_ms=40.0)
    second = {p.name: p for p in await peers.round(status)}
    edge3 = second["edge3"]
    assert (edge3.mode, edge3.relay_reason, edge3.since) == (NetworkMode.DERP, "UDPBlocked", clock.now())
    assert edge3.relay_message is not None and "10.99.13.2:41641" in edge3.relay_message
    assert looked_up == ["100.64.0.3"]
    assert second["edge2"].since == start  # unchanged mode: since stays
    clock.step(10)
    third = {p.name: p for p in await peers.round(status)}
    assert third["edge3"].since == edge3.since  # still DERP


async def test_a_tracked_peer_not_probed_yet_is_not_probed(clock: FakeClock) -> None:
    peers, _, _ = prober(fleet(3), clock, per_round=1, refresh_period=30.0)
    paths = {p.name: p for p in await peers.round(fleet(3))}
    waiting = [p for p in paths.values() if p.mode is None]
    assert waiting and all(p.relay_reason == "NotProbed" and p.since is None for p in waiting)


async def test_the_address_of_a_fellow_for_a_witness_check(clock: FakeClock) -> None:
    status = fleet(2)  # edge2, edge3
    probing, _, nodes = prober(status, clock)
    # edge3 registered after the read
    nodes.nodes = [node("edge1", "100.64.0.1"), ProbeTarget(name="edge2", ip="100.64.0.2", agent_port=9191)]
    assert probing.address("edge2", 9090) is None, "nothing seen yet"
    await probing.round(status)
    assert probing.address("edge2", 9090) == (IPv4Address("100.64.0.2"), 9191), "its reported agent port"
    assert probing.address("edge3", 9090) == (IPv4Address("100.64.0.3"), 9090), "from the tailnet, by its name"
    assert probing.address("ghost", 9090) is None
