"""Node leases in memory: the cheap path for heartbeats, persisted to the store in batches.

An empty heartbeat only renews a lease here; the stored Node is not rewritten. The server
flushes dirty leases every few seconds (`flush`), and loads them at start (`load`), so the
persisted time lags by at most one flush period. The lifecycle controller reads leases from
here, never from the stored Node.

A lease also says when the Node's facts were last reconfirmed (`facts_confirmed_at`): every accepted
beat reconfirms them, but a beat whose facts were rejected (400) renews only the lease, and until an
accepted full beat the facts keep the time of their last confirmation, so they go stale after the grace
while the Node stays Ready. A goodbye beat marks the lease released. Both marks are flushed with the lease
(the whole `Lease` is stored), so they survive a restart (`load`), and the leader, which merges the leases
the other replicas flushed (`load` again, the newer lease winning with its marks), sees a goodbye or a
rejected beat that reached another replica within one flush period plus its renewal period.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from .base import Lease, Store

__all__ = ["FLUSH_CHUNK", "Lease", "LeaseTable", "facts_confirmed_at"]

#: Leases persisted per store transaction when flushing.
FLUSH_CHUNK = 1000


def facts_confirmed_at(lease: Lease | None, stored: datetime | None) -> datetime | None:
    """facts_confirmed_at is THE time a Node's facts were last reconfirmed, from its lease and the stored
    lastHeartbeat (which a flush or a full beat wrote): the newer of the two, unless a beat since was rejected."""
    if lease is None:
        return stored
    if lease.rejected:
        return lease.facts_at
    return lease.renewed_at if stored is None or stored < lease.renewed_at else stored


class LeaseTable:
    """LeaseTable holds the newest lease per node; not thread-safe, used from one event loop."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        self._dirty: set[str] = set()
        # Goodbye: set by release; the lifecycle controller waits on it to pass at once rather than at its next
        # period, so a going-away beat turns the Node NotReady within the write of one pass.
        self.goodbye = asyncio.Event()

    def renew(self, name: str, at: datetime, *, facts: bool = False) -> None:
        """renew records an accepted heartbeat from name at time at; facts says it carried facts (a full beat),
        which reconfirms them even after a rejected beat. An empty beat after a rejected one renews only."""
        held = self._leases.get(name)
        if held is not None and held.rejected and not facts:
            self._leases[name] = Lease(at, rejected=True, facts_at=held.facts_at)
        else:
            self._leases[name] = Lease(at)
        self._dirty.add(name)

    def reject(self, name: str, at: datetime) -> None:
        """reject records a beat whose facts were rejected: the lease renews (the agent is alive), the facts'
        confirmation stays where it was (never, when no lease is held: the table is loaded at start, so none
        held means the Node never beat)."""
        held = self._leases.get(name)
        self._leases[name] = Lease(at, rejected=True, facts_at=held.confirmed_at if held is not None else None)
        self._dirty.add(name)

    def release(self, name: str, at: datetime) -> None:
        """release records the agent's going-away beat: the node is NotReady at once."""
        held = self._leases.get(name)
        if held is not None and held.rejected:
            self._leases[name] = Lease(at, released=True, rejected=True, facts_at=held.facts_at)
        else:
            self._leases[name] = Lease(at, released=True)
        self._dirty.add(name)
        self.goodbye.set()

    def get(self, name: str) -> Lease | None:
        """get returns the lease of name, or None when it never beat (since the last load)."""
        return self._leases.get(name)

    def forget(self, name: str) -> None:
        """forget drops the lease of a deleted node."""
        self._leases.pop(name, None)
        self._dirty.discard(name)

    def __len__(self) -> int:
        return len(self._leases)

    async def flush(self, store: Store, *, chunk: int = FLUSH_CHUNK) -> int:
        """flush persists the leases renewed since the last flush, `chunk` per transaction; returns how many.

        Small chunks keep each store call short, so a 20k-node flush never holds the event loop (or the GIL)
        for long; a chunk that fails is marked dirty again for the next flush.
        """
        names = [name for name in self._dirty if name in self._leases]
        self._dirty = set()
        for start in range(0, len(names), chunk):
            part = names[start : start + chunk]
            try:
                await store.save_leases({name: self._leases[name] for name in part if name in self._leases})
            except BaseException:
                self._dirty.update(names[start:])
                raise
        return len(names)

    async def load(self, store: Store) -> None:
        """load fills the table from the store (at start, and on the leader at each renewal: the other replicas'
        flushed leases); a stored lease replaces the one held only when newer, and carries its marks, so a goodbye
        or a rejected beat another replica received counts here too (a newly merged goodbye wakes `goodbye`)."""
        for name, stored in (await store.load_leases()).items():
            held = self._leases.get(name)
            if held is None or held.renewed_at < stored.renewed_at:
                self._leases[name] = stored
                if stored.released and held is not None and not held.released:
                    self.goodbye.set()
