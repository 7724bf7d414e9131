"""Path changes: which paths of a Node changed mode between two stored versions of it (history and events)."""

from __future__ import annotations

from datetime import datetime

from controlplane.api import CONTROL_PLANE_PEER, NetworkMode, Node, PathChange


def _modes(node: Node) -> dict[str, NetworkMode | None]:
    network = node.status.network
    if network is None:
        return {}
    modes: dict[str, NetworkMode | None] = {peer.name: peer.mode for peer in network.peers or ()}
    modes[CONTROL_PLANE_PEER] = network.mode
    return modes


def path_changes(before: Node, after: Node, now: datetime) -> list[PathChange]:
    """path_changes lists the paths of after whose known mode differs from before's (unknown there counts too).

    The path to the control plane comes first, then the peers in the order after reports them. A path whose
    mode becomes unknown (idle) is not a change; when it is known again, it is a change from unknown.
    """
    network = after.status.network
    if network is None:
        return []
    old = _modes(before)
    current = [(CONTROL_PLANE_PEER, network.mode, network.derp_region, network.latency_ms)]
    current += [(peer.name, peer.mode, peer.derp_region, peer.latency_ms) for peer in network.peers or ()]
    return [
        PathChange(
            time=now,
            peer=peer,
            from_mode=old.get(peer),
            to_mode=mode,
            derp_region=region if mode is NetworkMode.DERP else None,
            latency_ms=latency,
        )
        for peer, mode, region, latency in current
        if mode is not None and old.get(peer) is not mode
    ]
