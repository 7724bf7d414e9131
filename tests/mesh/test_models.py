"""The wire models: every captured answer decodes; null, zero times and unknown fields are tolerated."""

from __future__ import annotations

import json
from datetime import datetime
from ipaddress import IPv4Address, ip_address

import pytest

from mesh import PeerStatus, PingResult, Status, WhoIsResponse

from .captured import FIXTURES, peer, raw, wire

STATUS_FILES = sorted(path.name for path in FIXTURES.glob("*status*.json"))


def test_the_capture_covers_what_the_tests_need() -> None:
    manifest = json.loads(raw("MANIFEST.json"))
    assert manifest["tailscaled"].startswith("1.98.10")
    on_disk = {path.name for path in FIXTURES.iterdir() if path.suffix in (".json", ".txt")} - {"MANIFEST.json"}
    assert set(manifest["files"]) == on_disk
    assert len(STATUS_FILES) >= 6


@pytest.mark.parametrize("name", STATUS_FILES, ids=STATUS_FILES)
def test_every_captured_status_decodes_and_keeps_its_peers(name: str) -> None:
    status = Status.model_validate_json(raw(name))
    assert status.version.startswith("1.98.10")
    assert len(status.peer) == len(wire(name)["Peer"] or {})


def test_null_reads_as_empty() -> None:
    captured = wire("fresh-status-needslogin.json")
    assert captured["TailscaleIPs"] is None and captured["Peer"] is None and captured["Self"]["TailscaleIPs"] is None
    status = Status.model_validate(captured)
    assert status.tailscale_ips == [] and status.peer == {} and status.cert_domains == []
    assert status.self_ is not None and status.self_.tailscale_ips == []
    assert status.current_tailnet is None


def test_go_zero_time_reads_as_never_and_nanoseconds_are_accepted() -> None:
    edge2 = peer("edge1-status.json", "edge2")
    captured = next(p for p in wire("edge1-status.json")["Peer"].values() if p["HostName"] == "edge2")
    assert captured["LastHandshake"] == "0001-01-01T00:00:00Z" and edge2.last_handshake is None
    assert isinstance(edge2.created, datetime) and edge2.created.tzinfo is not None
    assert edge2.created.isoformat()[:19] == captured["Created"][:19]


def test_unknown_fields_are_ignored() -> None:
    captured = wire("edge1-status.json")
    captured["SomethingFromTomorrow"] = {"nested": [1, 2]}
    captured["Self"]["AnotherNewField"] = True
    assert Status.model_validate(captured) == Status.model_validate_json(raw("edge1-status.json"))


def test_user_map_keys_are_numeric_ids() -> None:
    status = Status.model_validate_json(raw("edge1-status.json"))
    assert status.self_ is not None
    assert status.user[status.self_.user_id].login_name == "tagged-devices"
    operator = next(p for p in status.peers if p.host_name == "operator")
    assert status.user[operator.user_id].login_name == "ops"


def test_peer_predicates() -> None:
    edge2 = peer("edge1-status-direct.json", "edge2")
    assert edge2.is_direct and edge2.is_online
    assert edge2.fqdn == "edge2.tailnet.test" and edge2.dns_name_short == "edge2"
    assert edge2.has_tag("tag:cara-node") and edge2.has_tag("cara-node") and not edge2.has_tag("cara-server")
    assert isinstance(edge2.ipv4, IPv4Address)
    assert not peer("edge1-status.json", "edge2").is_direct
    assert peer("edge1-status.json", "operator").tags == []  # Tags is omitted on the wire for user nodes


def test_whois_addresses_drop_the_prefix_length() -> None:
    who = WhoIsResponse.model_validate_json(raw("edge1-whois-edge2.json"))
    captured = wire("edge1-whois-edge2.json")["Node"]["Addresses"]
    assert [str(ip) for ip in who.node.addresses] == [cidr.split("/")[0] for cidr in captured]
    assert who.node.home_derp == 999


@pytest.mark.parametrize(
    ("name", "direct", "derp"),
    [
        ("edge1-ping-edge2-direct.json", True, False),
        ("edge1-ping-edge2-derp.json", False, True),
        ("edge1-ping-edge2-tsmp.json", False, False),
    ],
    ids=["direct", "derp", "tsmp"],
)
def test_ping_result_predicates(name: str, direct: bool, derp: bool) -> None:
    result = PingResult.model_validate_json(raw(name))
    assert (result.ok, result.is_direct, result.is_derp) == (True, direct, derp)
    assert result.latency_ms == pytest.approx(wire(name)["LatencySeconds"] * 1000)
    assert result.ip == str(ip_address(result.node_ip))


def test_models_are_frozen() -> None:
    edge2 = peer("edge1-status.json", "edge2")
    with pytest.raises(ValueError, match="frozen"):
        edge2.cur_addr = "10.0.0.1:1"  # type: ignore[misc]
    assert isinstance(edge2, PeerStatus)
