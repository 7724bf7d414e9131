"""Why a path is not Direct: a bounded reason code and a sentence, from what this node's LocalAPI shows.

Inputs, all read from tailscaled (what each means is in docs/mesh.md, "Why relayed"):

* the path verdict (`Path`, from disco pongs or from status) and whether it came from a probe;
* the peer's advertised endpoints (whois `Node.Endpoints`: status leaves a peer's `Addrs` empty) and this node's
  own (`Status.Self.Addrs`);
* `PeerStatus.PeerRelay` / a pong's `PeerRelay` (a peer relay carries the path);
* this node's other peers' `CurAddr` (a trusted direct address elsewhere proves this node's UDP works);
* `Status.Health` (tailscaled's health warnings, quoted in the sentence).

What the LocalAPI does not expose, and so is never claimed: netcheck's UDP/NAT facts (`tailscale netcheck` runs
in the CLI process, not in tailscaled) and so whether a NAT maps endpoint-dependently ("hard NAT").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ._models import PeerStatus, Status
from ._paths import Path, Via

#: Most endpoints quoted in a sentence; the rest are counted.
_QUOTED_ENDPOINTS: Final = 3
#: Most characters of tailscaled health text quoted in a sentence.
_QUOTED_HEALTH: Final = 160


class RelayReason(StrEnum):
    """RelayReason is why a path is not Direct; a closed set (it is a Prometheus label value)."""

    # PEER_RELAY: another tailnet node relays the path (a peer relay; not Direct).
    PEER_RELAY = "PeerRelay"
    # NO_ENDPOINTS: one end advertises no direct UDP endpoint, so only a relay can carry the path.
    NO_ENDPOINTS = "NoEndpoints"
    # UDP_BLOCKED: the peer's endpoints were pinged and none answered, while this node has a direct path to
    # another peer: UDP between these two is blocked (a firewall or NAT on the way).
    UDP_BLOCKED = "UDPBlocked"
    # NO_DIRECT_PATHS: the peer's endpoints went unanswered and this node has no direct path to any peer:
    # UDP leaving this node (or its NAT) is the likelier culprit.
    NO_DIRECT_PATHS = "NoDirectPaths"
    # TAILSCALED_HEALTH: endpoints unanswered, no direct path anywhere, and tailscaled reports health warnings.
    TAILSCALED_HEALTH = "TailscaledHealth"
    # NO_ANSWER: the path was probed and no pong came back at all (not even through DERP): mode unknown.
    NO_ANSWER = "NoAnswer"
    # NOT_PROBED: the verdict comes from status alone (or from nothing): why it is relayed was not examined.
    NOT_PROBED = "NotProbed"
    # UNKNOWN: relayed after a probe, and nothing observable explains it.
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class RelayExplanation:
    """RelayExplanation is a reason code and the sentence an operator reads."""

    reason: RelayReason
    message: str


def _endpoints(addrs: list[str]) -> str:
    shown = ", ".join(addrs[:_QUOTED_ENDPOINTS])
    more = len(addrs) - _QUOTED_ENDPOINTS
    return f"{shown} and {more} more" if more > 0 else shown


def _health(status: Status) -> str:
    text = "; ".join(warning.strip() for warning in status.health if warning.strip())
    return text if len(text) <= _QUOTED_HEALTH else text[: _QUOTED_HEALTH - 1] + "…"


def _direct_elsewhere(status: Status, peer: PeerStatus | None) -> bool:
    """_direct_elsewhere reports a trusted direct address (CurAddr) to some other peer right now."""
    return any(other.cur_addr for other in status.peer.values() if other is not peer)


def explain_path(
    path: Path,
    *,
    peer: PeerStatus | None,
    status: Status,
    probed: bool,
    endpoints: Sequence[str] | None = None,
    direct_elsewhere: bool = False,
) -> RelayExplanation | None:
    """explain_path says why `path` to `peer` is not Direct; None when it is Direct.

    `probed` is True when `path` is a probe's verdict (disco pings were sent to the peer's endpoints), False
    when it is status's passive verdict. `peer` is the peer's entry in `status` (None when it is not there).
    `endpoints` are the peer's advertised endpoints from its netmap entry (whois `Node.Endpoints`); None when
    not looked up (status leaves a peer's `Addrs` empty, so "no endpoints" is claimed only from a lookup).
    `direct_elsewhere` says the caller knows of a Direct path from this node to another peer (its own probes);
    a trusted direct address (`CurAddr`) to another peer in `status` counts too.
    """
    if path.via is Via.DIRECT:
        return None
    health = _health(status)
    tail = f" tailscaled reports: {health}" if health else ""
    if path.via is Via.PEER_RELAY or (peer is not None and peer.peer_relay and not peer.cur_addr):
        relay = path.peer_relay or (peer.peer_relay if peer else "")
        return RelayExplanation(RelayReason.PEER_RELAY, f"carried by the peer relay {relay}." + tail)
    if path.via in (Via.NO_ANSWER, Via.OFFLINE) and probed:
        return RelayExplanation(RelayReason.NO_ANSWER, "probed: no pong came back, direct or through DERP." + tail)
    if not probed:
        what = "relayed, as tailscaled's status says" if path.via is Via.DERP else "no path in tailscaled's status"
        return RelayExplanation(RelayReason.NOT_PROBED, f"{what}; not probed, so why was not examined." + tail)
    if path.via is not Via.DERP:
        return RelayExplanation(RelayReason.UNKNOWN, f"no verdict ({path.via.value}); nothing explains it." + tail)
    known = list(endpoints) if endpoints is not None else (list(peer.addrs) if peer and peer.addrs else None)
    if known == []:
        return RelayExplanation(
            RelayReason.NO_ENDPOINTS, "the peer advertises no direct endpoint (its netmap Endpoints are empty)." + tail
        )
    if status.self_ is not None and not status.self_.addrs:
        return RelayExplanation(
            RelayReason.NO_ENDPOINTS, "this node advertises no direct endpoint (its own Addrs are empty)." + tail
        )
    pinged = f"disco pings to the peer's endpoints ({_endpoints(known)})" if known else "disco pings to the peer"
    if direct_elsewhere or _direct_elsewhere(status, peer):
        return RelayExplanation(
            RelayReason.UDP_BLOCKED,
            f"{pinged} went unanswered while this node is direct with other peers: UDP between the two is blocked."
            + tail,
        )
    if health:
        return RelayExplanation(
            RelayReason.TAILSCALED_HEALTH,
            f"{pinged} went unanswered, this node is direct with no peer, and tailscaled reports: {health}",
        )
    return RelayExplanation(
        RelayReason.NO_DIRECT_PATHS,
        f"{pinged} went unanswered, and this node is direct with no peer: its UDP or NAT blocks direct paths.",
    )
