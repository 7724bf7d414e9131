"""How the fleet's paths are counted: the one rule behind `caractrl mesh`'s summary line (and its `-o json`
summary) and the fleet page's "Relayed pairs" and "Relayed control paths" cards (controlplane/server/web/app.js
applies the same rule in the browser; tests/web checks the two agree on one fleet). docs/health.md states it.

Two kinds of path, counted apart: a pair (a Node's reported path to another Node; a peer that is not a Node, such
as a laptop, is not counted) and a control path (a Node's own path to the control plane, status.network.mode).
A path reported by a Node whose facts are stale is counted as stale (pairs) or not at all (control paths), never
as current. Relayed means DERP, through a DERP server or a peer relay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ._liveness import fact_freshness
from ._node import NetworkMode, Node, NodeState

#: The relay reason of a DERP path that goes through a peer relay (its own cell kind, "relay").
PEER_RELAY = "PeerRelay"


def path_kind(mode: NetworkMode | None, reason: str | None) -> str:
    """path_kind is a reported path's kind: Direct, DERP, relay (through a peer relay) or unknown (no mode)."""
    if mode is NetworkMode.DIRECT:
        return "Direct"
    if mode is NetworkMode.DERP:
        return "relay" if reason == PEER_RELAY else "DERP"
    return "unknown"


def node_facts_stale(node: Node, now: datetime) -> bool:
    """node_facts_stale is the server's verdict on the Node's facts (`status.factsStale`), else the freshness
    rule's."""
    served = node.status.facts_stale
    return served if served is not None else fact_freshness(node.status, now).stale


def path_counts(nodes: Sequence[Node], now: datetime) -> dict[str, int]:
    """path_counts counts the fleet's paths: nodes and notReady; the pairs between Nodes reported Direct, relayed,
    unknown or stale (by a Node whose facts are stale, so in none of the others) and the pairs not probed; and
    relayedControl, the Nodes with current facts whose own path to the control plane is relayed."""
    names = {node.name for node in nodes}
    counts = {
        "nodes": len(nodes),
        "direct": 0,
        "relayed": 0,
        "unknown": 0,
        "stale": 0,
        "notProbed": 0,
        "notReady": 0,
        "relayedControl": 0,
    }
    reported = 0
    for node in nodes:
        if node.status.state is NodeState.NOT_READY:
            counts["notReady"] += 1
        stale = node_facts_stale(node, now)
        network = node.status.network
        if network is None:
            continue
        if not stale and network.mode is NetworkMode.DERP:
            counts["relayedControl"] += 1
        for peer in {p.name: p for p in network.peers or ()}.values():
            if peer.name not in names or peer.name == node.name:
                continue
            reported += 1
            kind = path_kind(peer.mode, peer.relay_reason)
            if stale:
                counts["stale"] += 1
            else:
                counts["direct" if kind == "Direct" else "unknown" if kind == "unknown" else "relayed"] += 1
    counts["notProbed"] = len(nodes) * (len(nodes) - 1) - reported
    return counts
