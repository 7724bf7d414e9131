"""The one counting rule of relayed paths (api.path_counts): pairs between Nodes and control paths apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controlplane.api import (
    NetworkMode,
    Node,
    NodeNetworkStatus,
    NodeState,
    NodeStatus,
    ObjectMeta,
    PeerPath,
    path_counts,
    path_kind,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DERP, DIRECT = NetworkMode.DERP, NetworkMode.DIRECT


def node(name: str, mode: NetworkMode | None, *peers: PeerPath, stale: bool = False) -> Node:
    network = NodeNetworkStatus(mode=mode, peers=list(peers))
    status = NodeStatus(
        state=NodeState.READY, network=network, last_heartbeat=NOW - timedelta(seconds=5), facts_stale=stale
    )
    return Node(metadata=ObjectMeta(name=name), status=status)


def test_pairs_and_control_paths_are_counted_apart() -> None:
    nodes = [
        node(
            "a",
            DERP,
            PeerPath(name="b", mode=DERP, relay_reason="UDPBlocked"),
            PeerPath(name="c", mode=DERP, relay_reason="PeerRelay"),
            PeerPath(name="laptop", mode=DERP),  # not a Node: not a pair
            PeerPath(name="a", mode=DERP),  # itself: not a pair
        ),
        node("b", DIRECT, PeerPath(name="a", mode=DIRECT), PeerPath(name="c", relay_reason="NoAnswer")),
        # A stale Node: its pairs are stale only, and its relayed own path is not counted as current.
        node("c", DERP, PeerPath(name="a", mode=DERP), stale=True),
    ]
    assert path_counts(nodes, NOW) == {
        "nodes": 3,
        "direct": 1,
        "relayed": 2,
        "unknown": 1,
        "stale": 1,
        "notProbed": 3 * 2 - 5,
        "notReady": 0,
        "relayedControl": 1,
    }


def test_a_path_kind_is_direct_derp_peer_relay_or_unknown() -> None:
    assert [path_kind(DIRECT, None), path_kind(DERP, "UDPBlocked"), path_kind(DERP, "PeerRelay")] == [
        "Direct",
        "DERP",
        "relay",
    ]
    assert path_kind(None, "NoAnswer") == "unknown"
