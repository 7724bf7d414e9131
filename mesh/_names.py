"""Names on the tailnet from the local peer list: MagicDNS resolution, self identity and peer discovery.

Everything here reads a `Status` and never OS DNS: MagicDNS may not be programmed into the host resolver
(the lab runs with --accept-dns=false), and the peer list is what tailscaled will actually route to.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from ._exceptions import PeerUnknown
from ._models import IPAddress, PeerStatus, Status


@dataclass(frozen=True, slots=True)
class SelfIdentity:
    """SelfIdentity is who this node is on the tailnet."""

    # node_id: the stable node ID ("" if unknown).
    node_id: str
    # host_name: the OS host name the node reported.
    host_name: str
    # dns_name: the MagicDNS FQDN without the trailing dot ("edge1.tailnet.test").
    dns_name: str
    # ips: the tailnet addresses, IPv4 first.
    ips: tuple[IPAddress, ...]
    # user: the owner's login name ("tagged-devices" for tag-owned nodes; "" if unknown).
    user: str
    # tags: the ACL tags; empty for user-owned nodes.
    tags: tuple[str, ...]
    # derp_region: this node's home DERP region code ("" when none).
    derp_region: str


def self_identity(status: Status) -> SelfIdentity:
    """self_identity returns this node's identity; raises NotRunning unless the backend is Running.

    Pass a full status: with peers=false tailscaled also leaves out the User map, and `user` comes back "".
    """
    me = status.require_running().self_
    if me is None:
        raise PeerUnknown("self")
    profile = status.user.get(me.user_id)
    return SelfIdentity(
        node_id=me.id,
        host_name=me.host_name,
        dns_name=me.fqdn,
        ips=tuple(sorted(me.tailscale_ips or status.tailscale_ips, key=lambda ip: ip.version)),
        user=profile.login_name if profile else "",
        tags=tuple(me.tags),
        derp_region=me.relay,
    )


def _match_rank(node: PeerStatus, name: str) -> int | None:
    """_match_rank is how well name names node: 0 FQDN, 1 first DNS label, 2 host name; None for no match."""
    fqdn = node.fqdn.lower()
    if fqdn and name == fqdn:
        return 0
    if fqdn and name == node.dns_name_short.lower():
        return 1
    if node.host_name and name == node.host_name.lower():
        return 2
    return None


def find_peer(status: Status, name: str) -> PeerStatus:
    """find_peer returns the node (a peer or self) named by a short name, FQDN (trailing dot optional) or IP.

    A MagicDNS match beats a host-name match; among equals an online node wins. Raises NotRunning unless the
    backend is Running and PeerUnknown when nothing matches.
    """
    status.require_running()
    nodes = [*status.peers, *([status.self_] if status.self_ else [])]
    wanted = name.strip().rstrip(".").lower()
    try:
        literal: IPAddress | None = ip_address(wanted)
    except ValueError:
        literal = None
    if literal is not None:
        for node in nodes:
            if literal in node.tailscale_ips:
                return node
        raise PeerUnknown(name)
    matches = sorted(
        (rank, not node.is_online, index)
        for index, node in enumerate(nodes)
        if (rank := _match_rank(node, wanted)) is not None
    )
    if not matches:
        raise PeerUnknown(name)
    return nodes[matches[0][2]]


def resolve(status: Status, name: str) -> list[IPAddress]:
    """resolve returns the tailnet IPs (IPv4 first) of the node a short name, FQDN or IP names.

    Raises NotRunning unless the backend is Running and PeerUnknown when no node has that name.
    """
    return sorted(find_peer(status, name).tailscale_ips, key=lambda ip: ip.version)


def find_peers(
    status: Status, *, tag: str | None = None, hostname: str | None = None, online_only: bool = False
) -> list[PeerStatus]:
    """find_peers lists the peers (never self) carrying `tag` and/or with host name or DNS label `hostname`.

    With neither filter it lists every peer; results are ordered by DNS name. Raises NotRunning unless Running.
    """
    status.require_running()
    wanted = hostname.lower() if hostname else None
    return [
        peer
        for peer in status.peers
        if (tag is None or peer.has_tag(tag))
        and (wanted is None or wanted in (peer.host_name.lower(), peer.dns_name_short.lower()))
        and (not online_only or peer.is_online)
    ]
