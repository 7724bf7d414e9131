"""Classifying the path to a peer as Direct or DERP, from disco pongs (active) or from status (passive).

The rule (design §5.2), and why, from magicsock (wgengine/magicsock, tailscale v1.98):

* A disco pong names how it came back: `Endpoint` for a direct UDP path, `PeerRelay` for a peer relay,
  `DERPRegionID`/`DERPRegionCode` for DERP. Without a trusted direct address, magicsock pings DERP and every
  candidate endpoint at once and the first pong wins, so one DERP pong proves nothing: probe until a pong names an
  Endpoint (Direct) or every pong of the probe named a DERP region (DERP).
* Passively, `CurAddr` is set only while the best UDP address is trusted (a pong within trustUDPAddrDuration,
  6.5 s, renewed by 3 s heartbeats while the session is active). `Active` means traffic within
  sessionActiveTimeout (45 s). `Relay` is always the peer's *home* DERP region, even on a direct path, so
  `Relay` alone says nothing about the current path: it means DERP only together with `Active`.
* Peer relays count as not Direct: they map to mode DERP (relayed) with `via` PEER_RELAY.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ._client import PING_TIMEOUT, LocalClient, PingType
from ._exceptions import RequestTimeout
from ._models import IPAddress, PeerStatus, PingResult

#: magicsock's trustUDPAddrDuration: how long a direct address stays trusted after its last pong.
TRUST_UDP_ADDR_SECONDS: Final = 6.5
#: magicsock's heartbeatInterval: how often an active session re-pings its direct address.
HEARTBEAT_SECONDS: Final = 3.0
#: magicsock's sessionActiveTimeout: traffic within this makes a peer Active.
SESSION_ACTIVE_SECONDS: Final = 45.0
#: How many disco pings a probe sends at most before settling for DERP (as `tailscale ping`'s -c default).
PROBE_ATTEMPTS: Final = 10
#: Pause between probe pings, in seconds (as `tailscale ping`).
PROBE_INTERVAL: Final = 1.0


class PathMode(StrEnum):
    """PathMode is the caravanserai/v1 network mode of a path: peer-to-peer, or relayed."""

    DIRECT = "Direct"
    DERP = "DERP"


class Via(StrEnum):
    """Via is what carries a path, finer than PathMode."""

    # DIRECT: straight UDP between the two nodes.
    DIRECT = "direct"
    # PEER_RELAY: through another tailnet node acting as a peer relay (not Direct).
    PEER_RELAY = "peer-relay"
    # DERP: through a DERP server.
    DERP = "derp"
    # IDLE: no recent traffic, so tailscaled does not know the path (passive view only).
    IDLE = "idle"
    # OFFLINE: control says the peer is not connected.
    OFFLINE = "offline"
    # NO_ANSWER: no pong came back within the probe.
    NO_ANSWER = "no-answer"


#: The mode each carrier maps to; IDLE, OFFLINE and NO_ANSWER have none (unknown).
_MODE: Final[dict[Via, PathMode]] = {
    Via.DIRECT: PathMode.DIRECT,
    Via.PEER_RELAY: PathMode.DERP,
    Via.DERP: PathMode.DERP,
}


@dataclass(frozen=True, slots=True)
class Path:
    """Path is the verdict on the path to one peer."""

    # via: what carries the path.
    via: Via
    # endpoint: the peer's "ip:port" on a direct path; "" otherwise.
    endpoint: str = ""
    # derp_region: the DERP region code carrying the path when via DERP; "" otherwise.
    derp_region: str = ""
    # peer_relay: the peer-relay "ip:port:vni:N" when via PEER_RELAY; "" otherwise.
    peer_relay: str = ""
    # latency_ms: round-trip time of the deciding pong, in milliseconds; None for a passive verdict.
    latency_ms: float | None = None

    @property
    def mode(self) -> PathMode | None:
        """mode is Direct or DERP (peer relays count as DERP), or None when the path is unknown."""
        return _MODE.get(self.via)

    @property
    def is_direct(self) -> bool:
        """is_direct reports a direct UDP path."""
        return self.via is Via.DIRECT


def classify_pong(result: PingResult) -> Path:
    """classify_pong is the path one disco pong names (populateCLIPingResponseLocked fills exactly one field)."""
    if not result.ok:
        return Path(Via.NO_ANSWER)
    latency = result.latency_ms
    if result.endpoint:
        return Path(Via.DIRECT, endpoint=result.endpoint, latency_ms=latency)
    if result.peer_relay:
        return Path(Via.PEER_RELAY, peer_relay=result.peer_relay, latency_ms=latency)
    if result.derp_region_id or result.derp_region_code:
        return Path(Via.DERP, derp_region=result.derp_region_code, latency_ms=latency)
    return Path(Via.NO_ANSWER)  # a TSMP/ICMP pong names no path


def classify_pongs(results: Sequence[PingResult]) -> Path:
    """classify_pongs is a probe's verdict: Direct if any pong named an Endpoint, else relayed if all relayed.

    A peer relay beats DERP (the better path seen); no pong at all is NO_ANSWER.
    """
    paths = [classify_pong(result) for result in results]
    for via in (Via.DIRECT, Via.PEER_RELAY, Via.DERP):
        if found := [path for path in paths if path.via is via]:
            return found[-1]
    return Path(Via.NO_ANSWER)


def classify_peer(peer: PeerStatus) -> Path:
    """classify_peer is the passive verdict from status alone: CurAddr, then PeerRelay, then Active + Relay."""
    if not peer.is_online:
        return Path(Via.OFFLINE)
    if peer.cur_addr:
        return Path(Via.DIRECT, endpoint=peer.cur_addr)
    if peer.peer_relay:
        return Path(Via.PEER_RELAY, peer_relay=peer.peer_relay)
    if peer.active and peer.relay:
        return Path(Via.DERP, derp_region=peer.relay)
    return Path(Via.IDLE)


async def probe_path(
    client: LocalClient,
    ip: str | IPAddress,
    *,
    attempts: int = PROBE_ATTEMPTS,
    interval: float = PROBE_INTERVAL,
    ping_timeout: float = PING_TIMEOUT,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Path:
    """probe_path disco-pings ip until a pong names an Endpoint or `attempts` pings are spent, then classifies.

    A ping without a pong within `ping_timeout` counts as an attempt with no answer.
    """
    results: list[PingResult] = []
    for attempt in range(attempts):
        if attempt:
            await sleep(interval)
        try:
            result = await client.ping(ip, PingType.DISCO, ping_timeout)
        except RequestTimeout:
            continue
        results.append(result)
        if result.is_direct:
            break
    return classify_pongs(results)


async def wait_for_mode(
    client: LocalClient,
    ip: str | IPAddress,
    mode: PathMode,
    *,
    within: float,
    interval: float = 0.5,
    ping_timeout: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[float, Path]:
    """wait_for_mode disco-pings ip every `interval` s until a pong shows `mode` or `within` s have passed.

    It returns the seconds waited and the last path seen: the deciding pong's path on success, else the last
    verdict (whose mode is not `mode`). A short `ping_timeout` matters after a path dies: magicsock keeps
    pinging only the dead direct address until its trust lapses (6.5 s), and those pings never get a pong.
    """
    start = clock()
    path = Path(Via.NO_ANSWER)
    while True:
        try:
            path = classify_pong(await client.ping(ip, PingType.DISCO, ping_timeout))
        except RequestTimeout:
            path = Path(Via.NO_ANSWER)
        elapsed = clock() - start
        if path.mode is mode or elapsed >= within:
            return elapsed, path
        await sleep(interval)
