"""Peers: probes the paths to fellow agents, a bounded number per round, rotating so each is refreshed in time.

Fellow agents are the ones the control plane assigns this agent (GET /api/v1/nodes/{name}/peers: a bounded,
stable share of the fleet plus any Node it is asked to witness; a server without that route, such as the Go
Caravanserai, is asked for its Node list instead), intersected with the tailnet peers carrying the agent tag
(design §5.3), matched by tailnet IP, then Node name. Each round (one per heartbeat) probes
at most `budget` of them with one or two disco pings (design §5.2): first the *urgent* ones (never probed, the
passive verdict from status names another mode than the last probe, or a path just stopped answering), then the
least recently probed. The budget is `per_round`, raised when needed so that every tracked peer is probed at
least once per `refresh_period`. Between probes `classify_peer` reads tailscale's own verdict from status, so a
pair that talks (and so falls back by itself) is re-probed in the very next round.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from typing import Final

from controlplane.api import NODE_TAG, NetworkMode, Node, PeerPath, ProbeTarget
from controlplane.client import Client, ClientError, NotFound
from mesh import (
    IPAddress,
    LocalClient,
    MeshError,
    Path,
    PathMode,
    PeerStatus,
    RelayExplanation,
    RelayReason,
    Status,
    Via,
    classify_peer,
    explain_path,
    probe_path,
)

log = logging.getLogger("cara.agent")

#: The ACL tag every agent's machine carries (the server's node role is granted to the same tag).
AGENT_TAG: Final = NODE_TAG
#: Pings per probe: one answers for a trusted direct path; a DERP pong is checked by a second (magicsock races
#: DERP against the direct candidates when it trusts none, so one DERP pong alone proves nothing).
PROBE_ATTEMPTS: Final = 2
PROBE_INTERVAL: Final = 0.2
#: Bound on one ping: a path that just died eats pings until magicsock's trust in it lapses (6.5 s), so a short
#: timeout keeps a round (and the heartbeat that waits for it) short; the peer is then re-probed next round.
PROBE_PING_TIMEOUT: Final = 1.0
#: How often the assignment is asked for again without a reason; an unmatched tagged peer (a new agent, or one
#: assigned to others) asks again too, at most once per refresh period (an unchanged assignment is a 304).
NODE_LIST_REFRESH: Final = 300.0

_MODES: Final = {PathMode.DIRECT: NetworkMode.DIRECT, PathMode.DERP: NetworkMode.DERP}
#: The explanation of a tracked peer no probe has reached yet.
_NOT_PROBED: Final = RelayExplanation(RelayReason.NOT_PROBED, "tracked, not probed yet.")

Probe = Callable[[IPAddress], Awaitable[Path]]
#: The peer's advertised endpoints (whois Node.Endpoints); None when the lookup failed.
EndpointLookup = Callable[[IPAddress], Awaitable[Sequence[str] | None]]
ListFellows = Callable[[], Awaitable[Sequence[ProbeTarget]]]


def disco_probe(local: LocalClient) -> Probe:
    """disco_probe is the real probe: up to PROBE_ATTEMPTS disco pings through the local tailscaled."""

    async def probe(ip: IPAddress) -> Path:
        return await probe_path(
            local, ip, attempts=PROBE_ATTEMPTS, interval=PROBE_INTERVAL, ping_timeout=PROBE_PING_TIMEOUT
        )

    return probe


def whois_endpoints(local: LocalClient) -> EndpointLookup:
    """whois_endpoints looks a peer's advertised endpoints up in this node's netmap (LocalAPI whois)."""

    async def lookup(ip: IPAddress) -> Sequence[str] | None:
        try:
            return (await local.whois(str(ip))).node.endpoints
        except MeshError as exc:
            log.debug("whois %s failed: %s", ip, exc)
            return None

    return lookup


async def _no_lookup(ip: IPAddress) -> Sequence[str] | None:
    return None


@dataclass(frozen=True, slots=True)
class PeerProbeConfig:
    """PeerProbeConfig bounds probing: how many per round, how often each, how many tracked at most."""

    per_round: int = 4
    # refresh_period: every tracked peer is probed at least this often (seconds).
    refresh_period: float = 60.0
    # round_interval: seconds between rounds (the heartbeat interval: one round per heartbeat).
    round_interval: float = 10.0
    # max_peers: most fellows tracked and reported (MAX_PEERS).
    max_peers: int = 16
    tag: str = AGENT_TAG


@dataclass(slots=True)
class PeerRecord:
    """PeerRecord is what this agent knows of the path to one fellow agent."""

    name: str
    ip: IPAddress
    mode: NetworkMode | None = None
    derp_region: str | None = None
    latency_ms: float | None = None
    # last_seen: when a probe last found the path (mode known); None if never.
    last_seen: datetime | None = None
    # probed_at: when the last probe (any outcome) ran; None if never.
    probed_at: datetime | None = None
    # urgent: probe before the rotation's turn (never probed, passive verdict changed, just stopped answering).
    urgent: bool = True
    # why: why the path is not Direct (None while Direct); set by each probe.
    why: RelayExplanation | None = None
    # since: when the path took its current mode (Direct, DERP or unknown); None before the first probe.
    since: datetime | None = None

    def to_path(self) -> PeerPath:
        why = self.why if self.mode is not NetworkMode.DIRECT else None
        if why is None and self.probed_at is None:
            why = _NOT_PROBED
        return PeerPath(
            name=self.name,
            ip=str(self.ip),
            mode=self.mode,
            derp_region=self.derp_region if self.mode is NetworkMode.DERP else None,
            latency_ms=round(self.latency_ms, 3) if self.latency_ms is not None else None,
            last_seen=self.last_seen,
            relay_reason=why.reason.value if why else None,
            relay_message=why.message if why else None,
            since=self.since,
        )

    def settle(self, mode: NetworkMode | None, now: datetime) -> None:
        """settle records the probe's mode, moving `since` when the mode changed (or on the first probe)."""
        if self.probed_at is None or mode != self.mode:
            self.since = now
        self.mode = mode


def round_budget(tracked: int, config: PeerProbeConfig) -> int:
    """round_budget is how many peers one round probes: per_round, or more so each is probed within the period."""
    rounds_per_period = max(1, math.floor(config.refresh_period / config.round_interval))
    return min(tracked, max(config.per_round, math.ceil(tracked / rounds_per_period)))


def choose(records: Sequence[PeerRecord], budget: int) -> list[PeerRecord]:
    """choose picks the round's probes: urgent first, then least recently probed (never = first), then by name."""

    def key(record: PeerRecord) -> tuple[bool, float, str]:
        probed = record.probed_at.timestamp() if record.probed_at is not None else -math.inf
        return (not record.urgent, probed, record.name)

    return sorted(records, key=key)[:budget]


def _pair_rank(a: str, b: str) -> bytes:
    """_pair_rank orders the fellows when there are more than max_peers: a hash of the pair, the same from both
    ends, so the pairs left out are spread over the fleet instead of always the same names."""
    return hashlib.sha256("\0".join(sorted((a, b))).encode()).digest()


def fellows_of(nodes: Sequence[Node]) -> list[ProbeTarget]:
    """fellows_of reduces a Node list (a server without the peers route) to the Nodes with a tailnet address."""
    return [
        ProbeTarget(name=node.name, ip=node.status.network.ip, agent_port=node.status.network.agent_port or None)
        for node in nodes
        if node.status.network is not None and node.status.network.ip
    ]


def assigned_fellows(client: Client, name: str) -> ListFellows:
    """assigned_fellows asks the control plane which fellows Node name probes (and witnesses), sending the last
    answer's ETag so an unchanged one costs a 304; a server without the route is asked for its Node list."""
    etag: str | None = None
    last: list[ProbeTarget] = []
    supported = True

    async def fellows() -> list[ProbeTarget]:
        nonlocal etag, last, supported
        if supported:
            try:
                assignment, etag = await client.peer_assignment(name, etag=etag)
            except NotFound:
                supported = False  # the Go Caravanserai (or not registered yet): fall back for this run
            else:
                if assignment is not None:
                    last = [*assignment.peers, *assignment.witness]
                return last
        return fellows_of((await client.list_nodes()).items)

    return fellows


def match_fellows(
    status: Status, nodes: Sequence[ProbeTarget] | None, *, self_name: str, tag: str
) -> tuple[dict[str, PeerStatus], int]:
    """match_fellows maps fellow name → online tagged peer; the count is the tagged peers that match no fellow.

    Without a fellow list (never read yet) each tagged peer stands for itself under its MagicDNS short name.
    """
    by_key: dict[str, str] = {}
    for node in nodes or ():
        for key in (node.ip, node.name):
            by_key.setdefault(key.lower().rstrip("."), node.name)
    fellows: dict[str, PeerStatus] = {}
    unmatched = 0
    for peer in status.peers:
        if not peer.has_tag(tag) or not peer.is_online or peer.ipv4 is None:
            continue
        if nodes is None:
            name: str | None = peer.dns_name_short or peer.host_name.lower()
        else:
            keys = (str(peer.ipv4), peer.fqdn.lower(), peer.dns_name_short.lower())
            name = next((by_key[k] for k in keys if k in by_key), None)
        if name is None:
            unmatched += 1
        elif name != self_name:
            fellows.setdefault(name, peer)
    return fellows, unmatched


class PeerProber:
    """PeerProber keeps the paths to fellow agents; `round(status)` is one pass (what the snapshot and tests call)."""

    def __init__(
        self,
        *,
        self_name: str,
        list_nodes: ListFellows,
        probe: Probe,
        now: Callable[[], datetime],
        config: PeerProbeConfig = PeerProbeConfig(),
        endpoints: EndpointLookup = _no_lookup,
    ) -> None:
        self.self_name, self._list_nodes, self._probe, self._now = self_name, list_nodes, probe, now
        self._endpoints = endpoints
        self.config = config
        self.records: dict[str, PeerRecord] = {}
        self._nodes: Sequence[ProbeTarget] | None = None
        self._nodes_read: datetime | None = None
        self._warned_budget = 0
        # The last tailnet status seen: where a fellow not yet in the Node list is found by its MagicDNS name.
        self._status: Status | None = None

    async def _read_nodes(self, now: datetime, status: Status) -> None:
        """_read_nodes refreshes the Node list when stale, or sooner when a tagged peer matches no Node."""
        age = (now - self._nodes_read).total_seconds() if self._nodes_read else math.inf
        if age < self.config.refresh_period:
            return
        if age < NODE_LIST_REFRESH and self._nodes is not None:
            _, unmatched = match_fellows(status, self._nodes, self_name=self.self_name, tag=self.config.tag)
            if not unmatched:
                return
        self._nodes_read = now
        try:
            self._nodes = list(await self._list_nodes())
        except ClientError as exc:
            log.warning("cannot read the fellows to probe (%s); using the last list", exc)

    def _track(self, status: Status) -> dict[str, PeerStatus]:
        """_track updates the records to the current fellows (at most max_peers) and notes passive changes."""
        fellows, _ = match_fellows(status, self._nodes, self_name=self.self_name, tag=self.config.tag)
        if len(fellows) > self.config.max_peers:
            kept = sorted(fellows, key=lambda name: _pair_rank(self.self_name, name))[: self.config.max_peers]
            fellows = {name: fellows[name] for name in kept}
        records: dict[str, PeerRecord] = {}
        for name, peer in fellows.items():
            ip = peer.ipv4
            if ip is None:  # match_fellows keeps only peers with an IPv4; this satisfies the type checker
                continue
            record = records[name] = self.records.get(name) or PeerRecord(name, ip)
            record.ip = ip
            verdict = classify_peer(peer).mode
            passive = _MODES[verdict] if verdict else None
            if passive is not None and passive != record.mode:
                record.urgent = True  # tailscale itself changed its mind: confirm (and time) it this round
        self.records = records
        return fellows

    def _budget(self) -> int:
        budget = round_budget(len(self.records), self.config)
        if budget > self.config.per_round and budget != self._warned_budget:
            self._warned_budget = budget
            log.info(
                "probing %d peers per round (not %d) to refresh %d peers every %gs",
                budget,
                self.config.per_round,
                len(self.records),
                self.config.refresh_period,
            )
        return budget

    async def _probe_one(self, record: PeerRecord, now: datetime, status: Status, peer: PeerStatus | None) -> None:
        try:
            path = await self._probe(record.ip)
        except MeshError as exc:
            log.debug("probing %s failed: %s", record.name, exc)
            path = None
        mode = _MODES.get(path.mode) if path is not None and path.mode else None
        verdict = path or Path(Via.NO_ANSWER)
        # Only a DERP verdict needs the peer's endpoints (one whois, relayed peers only).
        advertised = await self._endpoints(record.ip) if verdict.via is Via.DERP else None
        elsewhere = any(r.mode is NetworkMode.DIRECT for r in self.records.values() if r is not record)
        record.why = explain_path(
            verdict, peer=peer, status=status, probed=True, endpoints=advertised, direct_elsewhere=elsewhere
        )
        if path is None or mode is None:
            # No answer: the path is unknown now. Re-probe first next round only if it was known until now, so
            # a peer that stays silent does not take the budget from the rotation.
            record.urgent = record.mode is not None
            record.settle(None, now)
            record.probed_at = now
            record.derp_region = record.latency_ms = None
            return
        record.settle(mode, now)
        record.probed_at = now
        record.derp_region, record.latency_ms = path.derp_region or None, path.latency_ms
        record.last_seen, record.urgent = now, False

    async def round(self, status: Status) -> list[PeerPath]:
        """round reads the Node list if due, probes this round's peers concurrently and returns the paths known."""
        now = self._now()
        self._status = status
        await self._read_nodes(now, status)
        fellows = self._track(status)
        chosen = choose(list(self.records.values()), self._budget())
        await asyncio.gather(*(self._probe_one(record, now, status, fellows.get(record.name)) for record in chosen))
        return self.paths()

    def address(self, name: str, default_port: int) -> tuple[IPAddress, int] | None:
        """address is where fellow `name`'s agent listens: its tailnet IP (as tracked, else from the Node list) and
        its reported agent port (default_port when it reported none); None when this agent does not know it."""
        fellow = next((n for n in self._nodes or () if n.name == name), None)
        port = (fellow.agent_port if fellow is not None else None) or default_port
        record = self.records.get(name)
        if record is not None:
            return record.ip, port
        if fellow is not None:
            try:
                return ip_address(fellow.ip), port
            except ValueError:
                pass
        # A fellow not (yet) in the last list read: its tagged tailnet peer, by MagicDNS or host name.
        for peer in self._status.peers if self._status is not None else ():
            names = (peer.dns_name_short.lower(), peer.host_name.lower())
            if peer.has_tag(self.config.tag) and peer.ipv4 is not None and name in names:
                return peer.ipv4, port
        return None

    def paths(self) -> list[PeerPath]:
        """paths is the current report, by name."""
        return [self.records[name].to_path() for name in sorted(self.records)]


def merge_peers(probed: Sequence[PeerPath], passive: Sequence[PeerPath], limit: int) -> list[PeerPath]:
    """merge_peers is status.network.peers: the probed fellows, then the other peers this node talks to (such as
    the control plane) from the passive view, at most `limit`, by name."""
    taken = {p.name for p in probed} | {p.ip for p in probed if p.ip}
    rest = [p for p in passive if p.name not in taken and p.ip not in taken]
    return sorted([*probed, *rest][:limit], key=lambda p: p.name)
