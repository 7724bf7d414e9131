"""Tailnet collector over captured LocalAPI answers: identity, path mode to the server, peers, the condition."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from agent.collectors.tailnet import NETWORK_UNAVAILABLE, TailnetCollector, peer_paths
from controlplane.api import ConditionStatus, NetworkMode
from mesh import IPAddress, LocalClient, Path, Via
from tests.mesh.captured import Answer, FakeDaemon, status

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def collector(
    script: dict[str, Answer | list[Answer]], server: str | None, **kw: object
) -> tuple[TailnetCollector, FakeDaemon]:
    daemon = FakeDaemon(script)
    local = LocalClient("/nonexistent.sock", transport=httpx.MockTransport(daemon))
    return TailnetCollector(local=local, server_host=server, agent_port=9090, max_peers=16, **kw), daemon  # type: ignore[arg-type]


async def test_direct_path_identity_and_latency() -> None:
    tc, daemon = collector(
        {"GET status": (200, "edge1-status-direct.json"), "POST ping": (200, "edge1-ping-edge2-direct.json")}, "edge2"
    )
    view = await tc.collect(NOW)
    net = view.network
    assert net is not None
    assert (net.ip, net.dns_name, net.mode, net.agent_port, net.derp_region) == (
        "100.64.0.3",
        "edge1.tailnet.test",
        NetworkMode.DIRECT,
        9090,
        "headscale",
    )
    assert net.latency_ms is not None and net.latency_ms > 0
    assert net.tailnet is not None and net.tailnet.tags == ["tag:cara-node"]
    assert view.self_ip == "100.64.0.3"
    assert (view.condition.type, view.condition.status, view.condition.reason) == (
        NETWORK_UNAVAILABLE,
        ConditionStatus.FALSE,
        "TailscaledRunning",
    )
    assert [r.url.params["ip"] for r in daemon.requests if r.method == "POST"] == ["100.64.0.4"]


async def test_active_relayed_path_is_derp() -> None:
    tc, _ = collector(
        {"GET status": (200, "edge1-status-derp.json"), "POST ping": (200, "edge1-ping-edge2-derp.json")}, "100.64.0.4"
    )
    net = (await tc.collect(NOW)).network
    assert net is not None and (net.mode, net.derp_region) == (NetworkMode.DERP, "headscale")


async def test_a_relayed_control_path_says_why_as_peer_paths_do() -> None:
    """edge1's path to the control plane (on edge2) while `lab block edge1 edge2`: the disco ping came back
    through DERP, the server's advertised endpoint went unanswered, and edge1 is Direct with edge3."""
    tc, daemon = collector(
        {
            "GET status": (200, "edge1-status-blocked-edge2.json"),
            "POST ping": (200, "edge1-ping-edge2-derp.json"),
            "GET whois": (200, "edge1-whois-edge2-blocked.json"),
        },
        "edge2",
    )
    net = (await tc.collect(NOW)).network
    assert net is not None and (net.mode, net.relay_reason) == (NetworkMode.DERP, "UDPBlocked")
    assert net.relay_message == (
        "disco pings to the peer's endpoints (10.99.12.2:41641) went unanswered while this node is direct with other"
        " peers: UDP between the two is blocked."
    )
    assert [r.url.params["addr"] for r in daemon.requests if r.url.path.endswith("/whois")] == ["100.64.0.4"]
    wire = net.to_wire()
    assert (wire["relayReason"], wire["mode"]) == ("UDPBlocked", "DERP")


async def test_a_relayed_control_path_with_no_direct_peer_blames_this_nodes_udp() -> None:
    tc, _ = collector(
        {
            "GET status": (200, "edge1-status-derp.json"),
            "POST ping": (200, "edge1-ping-edge2-derp.json"),
            "GET whois": (200, "edge1-whois-edge2-blocked.json"),
        },
        "edge2",
    )
    net = (await tc.collect(NOW)).network
    assert net is not None and (net.mode, net.relay_reason) == (NetworkMode.DERP, "NoDirectPaths")


async def test_a_control_path_status_calls_relayed_but_no_ping_confirmed_is_not_probed() -> None:
    tc, daemon = collector(
        {"GET status": (200, "edge1-status-derp.json"), "POST ping": httpx.ReadTimeout("timed out")}, "edge2"
    )
    net = (await tc.collect(NOW)).network
    assert net is not None and (net.mode, net.relay_reason) == (NetworkMode.DERP, "NotProbed")
    assert net.relay_message is not None and net.relay_message.startswith("relayed, as tailscaled's status says")
    assert not [r for r in daemon.requests if r.url.path.endswith("/whois")]  # no endpoints asked for


async def test_a_probed_reason_stays_while_the_mode_does_when_a_ping_is_lost() -> None:
    """One ping lost on the relayed path keeps the probed reason (no NotProbed flapping); a Direct path drops it,
    and a relayed path no ping confirmed is NotProbed again."""
    statuses: list[Answer] = [(200, "edge1-status-blocked-edge2.json")] * 2
    statuses += [(200, "edge1-status-direct.json"), (200, "edge1-status-blocked-edge2.json")]
    tc, _ = collector(
        {
            "GET status": statuses,
            "POST ping": [
                (200, "edge1-ping-edge2-derp.json"),
                httpx.ReadTimeout("timed out"),
                (200, "edge1-ping-edge2-direct.json"),
                httpx.ReadTimeout("timed out"),
            ],
            "GET whois": (200, "edge1-whois-edge2-blocked.json"),
        },
        "edge2",
    )
    said = []
    for _ in range(4):
        net = (await tc.collect(NOW)).network
        assert net is not None
        said.append((net.mode, net.relay_reason))
    assert said == [
        (NetworkMode.DERP, "UDPBlocked"),
        (NetworkMode.DERP, "UDPBlocked"),  # the lost ping
        (NetworkMode.DIRECT, None),
        (NetworkMode.DERP, "NotProbed"),
    ]


async def test_a_direct_control_path_has_no_reason_on_the_wire() -> None:
    tc, _ = collector(
        {"GET status": (200, "edge1-status-direct.json"), "POST ping": (200, "edge1-ping-edge2-direct.json")}, "edge2"
    )
    net = (await tc.collect(NOW)).network
    assert net is not None and net.mode is NetworkMode.DIRECT and net.relay_reason is None
    assert "relayReason" not in net.to_wire() and "relayMessage" not in net.to_wire()


async def test_an_idle_path_is_probed() -> None:
    probed: list[IPAddress] = []

    async def prober(local: LocalClient, ip: IPAddress) -> Path:
        probed.append(ip)
        return Path(Via.DIRECT, endpoint="10.99.1.2:41641")

    script: dict[str, Answer | list[Answer]] = {
        "GET status": (200, "edge1-status.json"),
        "POST ping": (200, "edge1-ping-edge2-direct.json"),
    }
    tc, _ = collector(script, "cara-server", prober=prober)
    net = (await tc.collect(NOW)).network
    assert net is not None and net.mode is NetworkMode.DIRECT
    assert [str(ip) for ip in probed] == ["100.64.0.1"]


async def test_a_server_not_on_the_tailnet_leaves_mode_unset() -> None:
    tc, daemon = collector({"GET status": (200, "edge1-status-direct.json")}, "127.0.0.1")
    net = (await tc.collect(NOW)).network
    assert net is not None and net.ip == "100.64.0.3" and net.mode is None
    assert all(r.method == "GET" for r in daemon.requests)


async def test_tailscaled_not_running_is_a_true_condition() -> None:
    tc, _ = collector({"GET status": (200, "fresh-status-needslogin.json")}, "edge2")
    view = await tc.collect(NOW)
    assert view.network is None and view.self_ip is None
    assert (view.condition.status, view.condition.reason, view.backend_state) == (
        ConditionStatus.TRUE,
        "TailscaledNotRunning",
        "NeedsLogin",
    )
    assert view.condition.last_heartbeat_time == NOW


async def test_tailscaled_gone_is_a_true_condition() -> None:
    tc, _ = collector({"GET status": httpx.ConnectError("no such file")}, "edge2")
    view = await tc.collect(NOW)
    assert (view.condition.status, view.condition.reason, view.backend_state) == (
        ConditionStatus.TRUE,
        "TailscaledUnreachable",
        "Unreachable",
    )


def test_peers_are_those_we_talk_to_and_bounded() -> None:
    direct = status("edge1-status-direct.json")
    paths = peer_paths(direct, 16)
    assert [(p.name, p.ip, p.mode) for p in paths] == [("edge2", "100.64.0.4", NetworkMode.DIRECT)]
    derp = peer_paths(status("edge1-status-derp.json"), 16)
    assert [(p.name, p.mode, p.derp_region) for p in derp] == [("edge2", NetworkMode.DERP, "headscale")]
    assert peer_paths(direct, 0) == []


async def test_the_control_hosts_peer_entry_is_left_out_by_identity_whatever_its_name() -> None:
    """The control plane's host is the network's own path, never a peer entry: found by the server URL's host (a
    tailnet IP, or the MagicDNS name the agent resolved), so a host named otherwise than cara-server is left out
    too, and a peer merely named cara-server that is not the control plane stays. (edge1's capture while edge2 is
    blocked: it talks to edge2, edge3 and cara-server.)"""
    script: dict[str, Answer | list[Answer]] = {
        "GET status": (200, "edge1-status-blocked-edge2.json"),
        "POST ping": (200, "edge1-ping-edge2-derp.json"),
        "GET whois": (200, "edge1-whois-edge2-blocked.json"),
    }
    found = {}
    for server in ("cara-server", "100.64.0.1", "edge2", "edge2.tailnet.test", "100.64.0.4", None):
        net = (await collector(script, server)[0].collect(NOW)).network
        assert net is not None
        found[server] = [p.name for p in net.peers or ()]
    assert found == {
        "cara-server": ["edge2", "edge3"],
        "100.64.0.1": ["edge2", "edge3"],
        "edge2": ["cara-server", "edge3"],  # the control plane on a host named edge2
        "edge2.tailnet.test": ["cara-server", "edge3"],
        "100.64.0.4": ["cara-server", "edge3"],
        None: ["cara-server", "edge2", "edge3"],  # no server known: nothing to leave out
    }
    whole = status("edge1-status-blocked-edge2.json")
    control = next(p for p in whole.peers if p.host_name == "edge2")
    # The bound counts the peers kept: edge2 (the second most recent write) gives its place to cara-server.
    assert [p.name for p in peer_paths(whole, 2)] == ["edge2", "edge3"]
    assert [p.name for p in peer_paths(whole, 2, control=control)] == ["cara-server", "edge3"]
