"""Tailnet: this node's overlay identity and its paths (to the control plane and to the peers it talks to).

The mode of the path to the control plane is tailscale's own verdict, read passively from status
(`CurAddr` set: Direct; `Active` with a `Relay`: DERP), because heartbeats keep that session active. Only when
status says nothing (idle path) does the collector probe with disco pings. One disco ping per collection gives
the latency. When the path is not Direct, it carries a relay reason and sentence (mesh.explain_path), as the peer
paths do: a probe's verdict when the ping (or the idle probe) agreed with status, else status's alone (NotProbed).
A probed explanation stays while the mode stays, so one ping lost on the relayed path does not turn the reason
into NotProbed and back (each turn would be a full beat).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from controlplane.api import (
    Condition,
    ConditionStatus,
    NetworkMode,
    NodeNetworkStatus,
    NodeTailnet,
    PeerPath,
)
from mesh import (
    DaemonUnreachable,
    IPAddress,
    LocalClient,
    MeshError,
    NotRunning,
    Path,
    PathMode,
    PeerStatus,
    PeerUnknown,
    PingType,
    RelayExplanation,
    RequestTimeout,
    Status,
    Via,
    classify_peer,
    classify_pong,
    explain_path,
    find_peer,
    probe_path,
    self_identity,
)

from .peers import whois_endpoints

#: The condition type the agent owns for the local tailscaled (design: agents report facts as conditions).
NETWORK_UNAVAILABLE: Final = "NetworkUnavailable"
REASON_RUNNING: Final = "TailscaledRunning"
REASON_NOT_RUNNING: Final = "TailscaledNotRunning"
REASON_UNREACHABLE: Final = "TailscaledUnreachable"
#: Bound on one latency ping; a DERP round trip in the lab is a few ms, a dead direct address never answers.
PING_TIMEOUT: Final = 2.0
#: Probe budget when the path is idle (no verdict in status): a few pings, half a second apart.
IDLE_PROBE_ATTEMPTS: Final = 3

_MODES: Final = {PathMode.DIRECT: NetworkMode.DIRECT, PathMode.DERP: NetworkMode.DERP}

Prober = Callable[[LocalClient, IPAddress], Awaitable[Path]]


async def _short_probe(client: LocalClient, ip: IPAddress) -> Path:
    return await probe_path(client, ip, attempts=IDLE_PROBE_ATTEMPTS, interval=0.5, ping_timeout=PING_TIMEOUT)


@dataclass(frozen=True, slots=True)
class TailnetView:
    """TailnetView is one collection: the network status (None when tailscaled gave none) and the condition."""

    network: NodeNetworkStatus | None
    condition: Condition
    # self_ip: this node's tailnet IPv4 (where the agent's HTTP server listens); None when unknown.
    self_ip: str | None
    # backend_state: tailscaled's BackendState, or "Unreachable".
    backend_state: str
    # status: the tailscaled status this view was read from (peer probing reads it too); None when none came.
    status: Status | None = None


def network_condition(status: ConditionStatus, reason: str, message: str, now: datetime) -> Condition:
    """network_condition is the NetworkUnavailable condition with this verdict, as the collector reports it."""
    return Condition(type=NETWORK_UNAVAILABLE, status=status, reason=reason, message=message, last_heartbeat_time=now)


def _peer_name(peer: PeerStatus) -> str:
    return peer.dns_name_short or peer.host_name.lower() or (str(peer.ipv4) if peer.ipv4 else peer.id)


def peer_paths(status: Status, limit: int, *, control: PeerStatus | None = None) -> list[PeerPath]:
    """peer_paths lists the peers this node actually talks to (Active or a direct address), most recent first,
    leaving out `control`: the control plane's host, whose path is the network's own (mode, relayReason), not a
    peer entry, whatever its tailnet name."""
    talking = [
        p for p in status.peers if p.is_online and (p.active or p.cur_addr) and (control is None or p.id != control.id)
    ]
    talking.sort(key=lambda p: p.last_write.timestamp() if p.last_write else 0.0, reverse=True)
    paths = []
    for peer in talking[:limit]:
        path = classify_peer(peer)
        mode = _MODES.get(path.mode) if path.mode else None
        why = explain_path(path, peer=peer, status=status, probed=False)
        paths.append(
            PeerPath(
                name=_peer_name(peer),
                ip=str(peer.ipv4) if peer.ipv4 else None,
                mode=mode,
                derp_region=path.derp_region or None,
                last_seen=peer.last_write,
                relay_reason=why.reason.value if why else None,
                relay_message=why.message if why else None,
            )
        )
    return sorted(paths, key=lambda p: p.name)


class TailnetCollector:
    """TailnetCollector reads tailscaled through `local` and judges the path to the control plane at `server_host`.

    `server_host` is the control plane's tailnet IP or MagicDNS name; `prober` replaces the idle-path probe in tests.
    """

    def __init__(
        self,
        *,
        local: LocalClient,
        server_host: str | None,
        agent_port: int,
        max_peers: int,
        prober: Prober = _short_probe,
    ) -> None:
        self._local, self.server_host, self._port, self._max_peers = local, server_host, agent_port, max_peers
        self._prober = prober
        # The last probed explanation of the path to the control plane, with the mode it explained.
        self._probed_why: tuple[NetworkMode | None, RelayExplanation] | None = None

    async def collect(self, now: datetime) -> TailnetView:
        """collect returns the network status and the NetworkUnavailable condition; it never raises MeshError."""
        try:
            status = await self._local.status()
            me = self_identity(status)
        except DaemonUnreachable as exc:
            return TailnetView(
                None, network_condition(ConditionStatus.TRUE, REASON_UNREACHABLE, str(exc), now), None, "Unreachable"
            )
        except NotRunning as exc:
            message = f"tailscaled is {exc.state or 'not running'}, not Running"
            return TailnetView(
                None, network_condition(ConditionStatus.TRUE, REASON_NOT_RUNNING, message, now), None, exc.state
            )
        except MeshError as exc:
            return TailnetView(
                None, network_condition(ConditionStatus.TRUE, REASON_UNREACHABLE, str(exc), now), None, "Unreachable"
            )
        ipv4 = next((str(ip) for ip in me.ips if ip.version == 4), None)
        server = self._server_peer(status)
        network = NodeNetworkStatus(
            ip=ipv4,
            dns_name=me.dns_name or None,
            agent_port=self._port,
            derp_region=me.derp_region or None,
            # [] on the wire: "no peers now" (the server merges network)
            peers=peer_paths(status, self._max_peers, control=server),
            tailnet=NodeTailnet(
                node_id=me.node_id or None,
                user=me.user or None,
                tags=list(me.tags) or None,
                online=status.self_.online if status.self_ else None,
            ),
        )
        if server is not None:
            network = await self._with_server_path(status, network, server)
        condition = network_condition(ConditionStatus.FALSE, REASON_RUNNING, "tailscaled is Running", now)
        return TailnetView(network, condition, ipv4, status.backend_state, status)

    def _server_peer(self, status: Status) -> PeerStatus | None:
        """_server_peer is the tailnet peer of the control plane: the one server_host (the server URL's host, a
        tailnet IP or the MagicDNS name resolved at start) names; None when it is not a peer with an IPv4."""
        if not self.server_host:
            return None
        try:
            server = find_peer(status, self.server_host)
        except (PeerUnknown, NotRunning):
            return None
        if server.ipv4 is None or (status.self_ is not None and server.id == status.self_.id):
            return None
        return server

    async def _with_server_path(
        self, status: Status, network: NodeNetworkStatus, server: PeerStatus
    ) -> NodeNetworkStatus:
        """_with_server_path fills mode, latency and (on DERP) the carrying region of the path to the control plane."""
        if server.ipv4 is None:  # _server_peer returns none such; this narrows the type
            return network
        path = classify_peer(server)
        latency: float | None = None
        answered = False
        try:
            pong = classify_pong(await self._local.ping(server.ipv4, PingType.DISCO, PING_TIMEOUT))
            latency, answered = pong.latency_ms, True
        except (RequestTimeout, MeshError):
            pong = Path(path.via)
        # Probed: the disco ping went to the server's endpoints and came back the way status says (or the idle
        # probe gave the verdict); a pong that disagrees with status leaves status's verdict unexamined.
        probed = answered and pong.via is path.via
        if path.mode is None:  # idle: status has no verdict, so ask the path itself
            path, probed = await self._prober(self._local, server.ipv4), True
        mode = _MODES.get(path.mode) if path.mode else None
        region = path.derp_region or (pong.derp_region if mode is NetworkMode.DERP else "") or network.derp_region
        why = None
        if mode is not NetworkMode.DIRECT:
            endpoints = await whois_endpoints(self._local)(server.ipv4) if probed and path.via is Via.DERP else None
            elsewhere = any(p.mode is NetworkMode.DIRECT for p in network.peers or ())
            why = explain_path(
                path, peer=server, status=status, probed=probed, endpoints=endpoints, direct_elsewhere=elsewhere
            )
            if probed:
                self._probed_why = (mode, why) if why is not None else None
            elif self._probed_why is not None and self._probed_why[0] is mode:
                why = self._probed_why[1]
        else:
            self._probed_why = None
        return network.model_copy(
            update={
                "mode": mode,
                "latency_ms": round(latency, 3) if latency is not None else None,
                "derp_region": region or None,
                "relay_reason": why.reason.value if why else None,
                "relay_message": why.message if why else None,
            }
        )
