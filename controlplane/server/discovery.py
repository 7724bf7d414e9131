"""Peer discovery that does not grow with the fleet: each agent is handed a bounded set of fellows to probe.

Every Node with a tailnet address is placed on a hash ring at blake2b(epoch, name); an agent probes the
`per_node` Nodes that follow its own place. That is rendezvous hashing's promise (goldpinger's --ping-number)
at O(log N) per question instead of O(N): the assignment is stable (a Node joining or leaving moves only its
neighbours' sets), every Node is probed by `per_node` others, and because the ring is re-seeded every epoch,
every pair of Nodes is neighbours, and so probed, by someone over time. The ring is rebuilt when the epoch turns,
and when an address came, went or moved (the Node cache's version), at most once every REBUILD_EVERY_S, once for
every agent, so what one agent's question costs is a bisection and a few dozen bytes, at 1k Nodes as at 20k, even
while a fleet's addresses arrive one by one. The answer also names the
Nodes the agent is asked to witness (`witness`), and carries an ETag: asked again unchanged, it is a 304.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from controlplane.api import PeerAssignment, ProbeTarget

#: Fellows each agent is asked to probe (its probe budget per round is 4 and it tracks at most 16).
PEERS_PER_NODE: Final = 8
#: Seconds an assignment stays the same while the fleet does: the ring is re-seeded once per epoch.
EPOCH_S: Final = 3600
#: Seconds between two rebuilds for address changes. A rebuild hashes and sorts every Node (about 30 ms at 20k):
#: when a fleet comes up, each of its first beats brings a new address, and a rebuild per question then took more
#: than the core. A Node's new address reaches its probers this much later at most.
REBUILD_EVERY_S: Final = 5.0


def ring_position(epoch: int, name: str) -> int:
    """ring_position is a Node's place on the ring of one epoch."""
    digest = hashlib.blake2b(f"{epoch}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _target(name: str, address: tuple[str, int | None]) -> ProbeTarget:
    return ProbeTarget(name=name, ip=address[0], agent_port=address[1])


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer is one agent's assignment as the bytes to send and their ETag."""

    body: bytes
    etag: str


class PeerDirectory:
    """PeerDirectory answers which fellows an agent probes, from the Node cache's tailnet addresses."""

    def __init__(
        self,
        *,
        addresses: Callable[[], tuple[int, Mapping[str, tuple[str, int | None]]]],
        now: Callable[[], datetime],
        witness: Callable[[str], Sequence[str]] | None = None,
        per_node: int = PEERS_PER_NODE,
        epoch_s: int = EPOCH_S,
        rebuild_every_s: float = REBUILD_EVERY_S,
    ) -> None:
        self._addresses, self._now, self._witness = addresses, now, witness
        self._per_node, self._epoch_s, self._rebuild_every_s = per_node, epoch_s, rebuild_every_s
        self._built: tuple[int, int] | None = None  # (epoch, addresses version) the ring was built for
        self._built_at: datetime | None = None
        self._positions: list[int] = []
        self._targets: list[ProbeTarget] = []

    def _ring(self) -> int:
        """_ring rebuilds the ring if the epoch turned, or the addresses changed and the last rebuild is at least
        rebuild_every_s old; returns the epoch the ring is of."""
        now = self._now()
        epoch = int(now.timestamp()) // self._epoch_s
        version, addresses = self._addresses()
        built = self._built
        if built is None or built[0] != epoch or (built[1] != version and self._settled(now)):
            placed = sorted((ring_position(epoch, name), name) for name in addresses)
            self._positions = [position for position, _ in placed]
            self._targets = [_target(name, addresses[name]) for _, name in placed]
            self._built, self._built_at = (epoch, version), now
        return epoch

    def _settled(self, now: datetime) -> bool:
        return self._built_at is None or (now - self._built_at).total_seconds() >= self._rebuild_every_s

    def peers_of(self, name: str) -> list[ProbeTarget]:
        """peers_of is the fellows Node name probes this epoch: the per_node Nodes after its place, by name."""
        epoch = self._ring()
        count = len(self._targets)
        start = bisect.bisect_right(self._positions, ring_position(epoch, name))
        chosen: list[ProbeTarget] = []
        for step in range(min(count, self._per_node + 1)):
            target = self._targets[(start + step) % count]
            if target.name != name and len(chosen) < self._per_node:
                chosen.append(target)
        return sorted(chosen, key=lambda target: target.name)

    def answer(self, name: str) -> Answer:
        """answer is Node name's whole assignment, serialized, with an ETag of its bytes."""
        peers = self.peers_of(name)
        witness: list[ProbeTarget] = []
        if self._witness is not None:
            _, addresses = self._addresses()
            witness = [_target(n, addresses[n]) for n in self._witness(name) if n in addresses]
        body = PeerAssignment(peers=peers, witness=witness).to_wire_json().encode()
        return Answer(body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')
