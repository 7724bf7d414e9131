"""Why a path is not Direct: explain_path over status and whois captured in the lab while `lab block edge1 edge2`."""

from __future__ import annotations

import pytest

from mesh import Path, RelayReason, Status, Via, WhoIsResponse, explain_path

from .captured import peer, raw, status

BLOCKED = "edge1-status-blocked-edge2.json"
#: edge1's view with edge2 blocked: edge3 (and the control plane) Direct, edge2 relayed over DERP.
EDGE2 = peer(BLOCKED, "edge2")
EDGE3 = peer(BLOCKED, "edge3")
ENDPOINTS = WhoIsResponse.model_validate_json(raw("edge1-whois-edge2-blocked.json")).node.endpoints
DERP = Path(Via.DERP, derp_region="headscale", latency_ms=1.0)


def _lonely() -> Status:
    """_lonely is the captured status with no trusted direct address to any peer."""
    st = status(BLOCKED)
    return st.model_copy(update={"peer": {k: p.model_copy(update={"cur_addr": ""}) for k, p in st.peer.items()}})


def test_the_captures_are_what_the_rules_read() -> None:
    st = status(BLOCKED)
    assert EDGE2.cur_addr == "" and EDGE2.active and EDGE3.cur_addr != ""
    assert EDGE2.addrs == []  # status leaves a peer's Addrs empty: endpoints come from whois
    assert ENDPOINTS and all(":" in e for e in ENDPOINTS)
    assert st.self_ is not None and st.self_.addrs


def test_a_direct_path_needs_no_reason() -> None:
    direct = Path(Via.DIRECT, endpoint=EDGE3.cur_addr)
    assert explain_path(direct, peer=EDGE3, status=status(BLOCKED), probed=True) is None


def test_the_blocked_pair_is_udp_blocked_and_names_the_endpoint() -> None:
    why = explain_path(DERP, peer=EDGE2, status=status(BLOCKED), probed=True, endpoints=ENDPOINTS)
    assert why is not None and why.reason is RelayReason.UDP_BLOCKED
    assert ENDPOINTS[0] in why.message and "unanswered" in why.message
    assert why.message.endswith("UDP between the two is blocked.")


@pytest.mark.parametrize(
    ("path", "probed", "endpoints", "lonely", "reason"),
    [
        (DERP, False, None, False, RelayReason.NOT_PROBED),
        (Path(Via.IDLE), False, None, False, RelayReason.NOT_PROBED),
        (Path(Via.NO_ANSWER), True, None, False, RelayReason.NO_ANSWER),
        (Path(Via.PEER_RELAY, peer_relay="10.99.13.2:7777:vni:5"), True, None, False, RelayReason.PEER_RELAY),
        (DERP, True, [], False, RelayReason.NO_ENDPOINTS),
        (DERP, True, None, False, RelayReason.UDP_BLOCKED),
        (DERP, True, ENDPOINTS, True, RelayReason.NO_DIRECT_PATHS),
    ],
    ids=[
        "derp-from-status-alone",
        "idle",
        "probed-without-pong",
        "peer-relay",
        "peer-advertises-nothing",
        "endpoints-not-looked-up",
        "no-direct-path-anywhere",
    ],
)
def test_reasons(path: Path, probed: bool, endpoints: list[str] | None, lonely: bool, reason: RelayReason) -> None:
    st = _lonely() if lonely else status(BLOCKED)
    why = explain_path(path, peer=EDGE2, status=st, probed=probed, endpoints=endpoints)
    assert why is not None and why.reason is reason, why


def test_own_probes_count_as_direct_elsewhere() -> None:
    why = explain_path(DERP, peer=EDGE2, status=_lonely(), probed=True, endpoints=ENDPOINTS, direct_elsewhere=True)
    assert why is not None and why.reason is RelayReason.UDP_BLOCKED


def test_this_node_without_endpoints() -> None:
    st = status(BLOCKED)
    assert st.self_ is not None
    bare = st.model_copy(update={"self_": st.self_.model_copy(update={"addrs": []})})
    why = explain_path(DERP, peer=EDGE2, status=bare, probed=True, endpoints=ENDPOINTS)
    assert why is not None and why.reason is RelayReason.NO_ENDPOINTS and "this node" in why.message


def test_health_warnings_are_quoted_and_explain_a_lonely_node() -> None:
    warned = _lonely().model_copy(update={"health": ["Tailscale could not connect to the 'headscale' relay server."]})
    why = explain_path(DERP, peer=EDGE2, status=warned, probed=True, endpoints=ENDPOINTS)
    assert why is not None and why.reason is RelayReason.TAILSCALED_HEALTH and "'headscale' relay" in why.message
    quoted = explain_path(Path(Via.NO_ANSWER), peer=EDGE2, status=warned, probed=True)
    assert quoted is not None and quoted.message.endswith("relay server.")


def test_reason_values_are_camel_case_and_closed() -> None:
    assert [r.value for r in RelayReason] == [
        "PeerRelay",
        "NoEndpoints",
        "UDPBlocked",
        "NoDirectPaths",
        "TailscaledHealth",
        "NoAnswer",
        "NotProbed",
        "Unknown",
    ]
