"""Names from the peer list: MagicDNS resolution, self identity and peer discovery, on captured statuses."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from mesh import NotRunning, PeerUnknown, Status, find_peer, find_peers, resolve, self_identity

from .captured import status, wire

EDGE1 = status("edge1-status.json")
OPERATOR = status("operator-status.json")
CONTROL = status("control-status.json")


def _wire_ips(name: str, host: str) -> list[str]:
    captured = wire(name)
    nodes = [*captured["Peer"].values(), captured["Self"]]
    return next(n["TailscaleIPs"] for n in nodes if n["HostName"] == host)


@pytest.mark.parametrize(
    "name",
    ["edge2", "EDGE2", "edge2.tailnet.test", "edge2.tailnet.test.", " edge2 "],
    ids=["short", "case", "fqdn", "fqdn-dot", "spaces"],
)
def test_resolve_short_name_or_fqdn_to_tailnet_ips(name: str) -> None:
    assert [str(ip) for ip in resolve(EDGE1, name)] == _wire_ips("edge1-status.json", "edge2")


def test_every_host_resolves_from_every_other() -> None:
    for viewer, captured in ((EDGE1, "edge1-status.json"), (OPERATOR, "operator-status.json")):
        for host in ("cara-server", "operator", "edge1", "edge2", "edge3"):
            ips = resolve(viewer, host)
            assert [str(ip) for ip in ips] == _wire_ips(captured, host) and ips[0].version == 4


def test_resolve_an_ip_literal_to_its_node() -> None:
    ip = _wire_ips("edge1-status.json", "cara-server")[0]
    assert find_peer(EDGE1, ip).host_name == "cara-server"
    assert resolve(EDGE1, ip)[0] == ip_address(ip)


def test_unknown_names_raise_peer_unknown() -> None:
    for name in ("edge9", "edge2.example.com", "100.64.9.9"):
        with pytest.raises(PeerUnknown, match="no tailnet peer named"):
            resolve(EDGE1, name)


def test_magicdns_name_beats_a_host_name() -> None:
    # Two machines that both call themselves "edge2": headscale gives the second another DNS label.
    captured = wire("edge1-status.json")
    twin_key, twin = next((k, p) for k, p in captured["Peer"].items() if p["HostName"] == "edge3")
    captured["Peer"][twin_key] = {**twin, "HostName": "edge2", "DNSName": "edge2-1.tailnet.test."}
    twisted = Status.model_validate(captured)
    assert find_peer(twisted, "edge2").dns_name == "edge2.tailnet.test."
    assert find_peer(twisted, "edge2-1").host_name == "edge2"


def test_names_need_a_running_backend() -> None:
    fresh = status("fresh-status-needslogin.json")
    for call in (lambda: resolve(fresh, "cara-server"), lambda: self_identity(fresh), lambda: find_peers(fresh)):
        with pytest.raises(NotRunning, match="NeedsLogin"):
            call()


def test_self_identity_of_a_tagged_node() -> None:
    me = self_identity(EDGE1)
    assert me.dns_name == "edge1.tailnet.test" and not me.dns_name.endswith(".")
    assert me.host_name == "edge1" and me.tags == ("tag:cara-node",) and me.user == "tagged-devices"
    assert [str(ip) for ip in me.ips] == wire("edge1-status.json")["TailscaleIPs"]
    assert me.derp_region == "headscale" and me.node_id == wire("edge1-status.json")["Self"]["ID"]


def test_self_identity_of_a_user_node() -> None:
    me = self_identity(OPERATOR)
    assert (me.dns_name, me.user, me.tags) == ("operator.tailnet.test", "ops", ())


def test_self_identity_of_the_control_host() -> None:
    me = self_identity(CONTROL)
    assert (me.host_name, me.dns_name, me.tags) == ("cara-server", "cara-server.tailnet.test", ("tag:cara-server",))


@pytest.mark.parametrize(
    ("filters", "hosts"),
    [
        ({"tag": "tag:cara-node"}, ["edge2", "edge3"]),
        ({"tag": "cara-node"}, ["edge2", "edge3"]),
        ({"tag": "tag:cara-server"}, ["cara-server"]),
        ({"hostname": "cara-server"}, ["cara-server"]),
        ({"tag": "tag:cara-node", "hostname": "edge3"}, ["edge3"]),
        ({"tag": "tag:nothing"}, []),
        ({}, ["cara-server", "edge2", "edge3", "operator"]),
        ({"online_only": True}, ["cara-server", "edge2", "edge3", "operator"]),
    ],
    ids=["tag", "tag-no-prefix", "server-tag", "hostname", "both", "no-match", "all", "online"],
)
def test_find_peers_by_tag_or_hostname_never_self(filters: dict[str, object], hosts: list[str]) -> None:
    assert [p.host_name for p in find_peers(EDGE1, **filters)] == hosts  # type: ignore[arg-type]


def test_find_peers_online_only_drops_offline_peers() -> None:
    captured = wire("edge1-status.json")
    key = next(k for k, p in captured["Peer"].items() if p["HostName"] == "edge3")
    captured["Peer"][key]["Online"] = False
    assert [p.host_name for p in find_peers(Status.model_validate(captured), tag="cara-node", online_only=True)] == [
        "edge2"
    ]


def test_self_identity_without_peers_has_no_user_because_the_daemon_drops_the_user_map() -> None:
    assert wire("edge1-status-nopeers.json")["User"] is None
    me = self_identity(status("edge1-status-nopeers.json"))
    assert me.user == "" and me.dns_name == "edge1.tailnet.test" and me.tags == ("tag:cara-node",)
