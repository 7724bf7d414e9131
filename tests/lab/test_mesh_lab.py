"""mesh against the real lab: self status, MagicDNS names, whois, and the Direct/DERP switch under `block`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from ipaddress import ip_address

import pytest

from mesh import (
    LocalClient,
    PathMode,
    PeerNotFound,
    PingType,
    Via,
    classify_peer,
    find_peer,
    find_peers,
    probe_path,
    resolve,
    self_identity,
    wait_for_mode,
)

from .conftest import Lab

pytestmark = pytest.mark.lab

EDGES = ("edge1", "edge2", "edge3")
#: The issue's bound on each transition (design §5.2; magicsock needs ~6.5 s of lost trust plus a ping).
TRANSITION_DEADLINE = 20.0


@asynccontextmanager
async def local(lab: Lab, host: str) -> AsyncIterator[LocalClient]:
    async with LocalClient(lab.hosts[host]["socket"]) as client:
        yield client


def _short(lab: Lab, host: str) -> str:
    return lab.hosts[host]["dnsName"].split(".")[0]


@pytest.mark.parametrize("host", EDGES)
async def test_each_edge_reports_itself(lab: Lab, host: str) -> None:
    async with local(lab, host) as client:
        status = await client.status()
    me = self_identity(status)
    assert status.is_running and status.version.startswith("1.98.10")
    assert me.dns_name == lab.hosts[host]["dnsName"] == f"{host}.tailnet.test"
    assert [str(ip) for ip in me.ips] == [lab.hosts[host]["ip"], lab.hosts[host]["ipv6"]]
    assert me.tags == ("tag:cara-node",) and me.user == "tagged-devices"
    assert me.derp_region == "headscale"


async def test_control_and_operator_identities(lab: Lab) -> None:
    async with local(lab, "control") as client:
        control = self_identity(await client.status_without_peers())
    async with local(lab, "operator") as client:
        operator = self_identity(await client.status())  # peers=false also drops the User map
    assert (control.host_name, control.dns_name, sorted(control.tags)) == (
        "cara-server",
        "cara-server.tailnet.test",
        ["tag:cara-registry", "tag:cara-server"],
    )
    assert (operator.user, operator.tags) == ("ops", ())


async def test_every_host_resolves_every_other_by_name(lab: Lab) -> None:
    members = {n: h for n, h in lab.hosts.items() if n != "stranger"}  # the stranger sees nobody (the policy)
    for viewer in members:
        async with local(lab, viewer) as client:
            status = await client.status()
        for target, info in members.items():
            want = [ip_address(info["ip"]), ip_address(info["ipv6"])]
            for name in (_short(lab, target), info["dnsName"], info["dnsName"] + "."):
                assert resolve(status, name) == want, f"{viewer} resolving {name}"


async def test_agents_find_the_server_and_each_other_by_tag(lab: Lab) -> None:
    async with local(lab, "edge1") as client:
        status = await client.status()
    assert find_peer(status, "cara-server").has_tag("tag:cara-server")
    assert [p.host_name for p in find_peers(status, tag="tag:cara-node", online_only=True)] == ["edge2", "edge3"]


async def test_whois_of_peers(lab: Lab) -> None:
    async with local(lab, "control") as client:
        edge = await client.whois(lab.hosts["edge1"]["ip"])
        operator = await client.whois(f"{lab.hosts['operator']['ip']}:12345")
        with pytest.raises(PeerNotFound, match="no match"):
            await client.whois("100.100.200.200")
    assert edge.node.fqdn == "edge1.tailnet.test" and edge.node.tags == ["tag:cara-node"]
    assert edge.user_profile.login_name == "tagged-devices"
    assert ip_address(lab.hosts["edge1"]["ip"]) in edge.node.addresses
    assert operator.user_profile.login_name == "ops" and operator.node.fqdn == "operator.tailnet.test"


@pytest.mark.parametrize(("a", "b"), [("edge1", "edge2"), ("edge2", "edge3"), ("edge3", "edge1")])
async def test_edges_are_direct_by_default(lab: Lab, a: str, b: str) -> None:
    async with local(lab, a) as client:
        path = await probe_path(client, lab.hosts[b]["ip"])
        peer = find_peer(await client.status(), b)
    assert path.mode is PathMode.DIRECT
    assert path.endpoint.rsplit(":", 1)[0] == lab.hosts[b]["underlay"]
    assert path.latency_ms is not None and path.latency_ms > 0
    assert classify_peer(peer).mode is PathMode.DIRECT and peer.cur_addr == path.endpoint


async def test_tsmp_ping_crosses_wireguard_with_positive_latency(lab: Lab) -> None:
    async with local(lab, "edge1") as client:
        result = await client.ping(lab.hosts["edge2"]["ip"], PingType.TSMP)
    assert result.ok and result.latency_seconds > 0 and result.node_name == "edge2"


async def _switch(lab: Lab, a: str, b: str, action: Callable[[str, str], None], want: PathMode) -> float:
    async with local(lab, a) as client:
        action(a, b)
        elapsed, path = await wait_for_mode(client, lab.hosts[b]["ip"], want, within=TRANSITION_DEADLINE)
        assert path.mode is want, f"{a}->{b} still {path.via} after {elapsed:.1f}s"
        assert path.latency_ms is not None and path.latency_ms > 0
        if want is PathMode.DERP:
            assert path.derp_region == "headscale"
            peer = find_peer(await client.status(), b)
            assert classify_peer(peer).via is Via.DERP and peer.cur_addr == ""
        else:
            assert path.endpoint.rsplit(":", 1)[0] == lab.hosts[b]["underlay"]
    assert elapsed < TRANSITION_DEADLINE
    return elapsed


async def test_block_falls_back_to_derp_and_unblock_returns_direct(lab: Lab) -> None:
    async with local(lab, "edge1") as client:
        assert (await probe_path(client, lab.hosts["edge2"]["ip"])).mode is PathMode.DIRECT
    try:
        await _switch(lab, "edge1", "edge2", lab.block, PathMode.DERP)
        async with local(lab, "edge1") as client:
            settled = await probe_path(client, lab.hosts["edge2"]["ip"], attempts=3)
        assert settled.mode is PathMode.DERP  # every pong of a probe via DERP: the classifier's DERP verdict
    finally:
        await _switch(lab, "edge1", "edge2", lab.unblock, PathMode.DIRECT)
