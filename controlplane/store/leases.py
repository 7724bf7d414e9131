"""Node leases in memory: the cheap path for heartbeats, persisted to the store in batches.

An empty heartbeat only renews a lease here; the stored Node is not rewritten. The server
flushes dirty leases every few seconds (`flush`), and loads them at start (`load`), so the
persisted time lags by at most one flush period. The lifecycle controller reads leases from
here, never from the stored Node.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from .base import Store

#: Leases persisted per store transaction when flushing.
FLUSH_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Lease:
    """Lease is a node's last heartbeat as the control plane's own clock saw it."""

    # RenewedAt: when the last beat arrived.
    renewed_at: datetime
    # Released: the agent said goodbye (going-away beat); the node is NotReady until it beats again.
    released: bool = False

    def is_fresh(self, now: datetime, grace: timedelta) -> bool:
        """is_fresh reports whether the node is live: not released, and renewed no longer than grace ago."""
        return not self.released and now - self.renewed_at <= grace


class LeaseTable:
    """LeaseTable holds the newest lease per node; not thread-safe, used from one event loop."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        self._dirty: set[str] = set()
        # Goodbye: set by release; the lifecycle controller waits on it to pass at once rather than at its next
        # period, so a going-away beat turns the Node NotReady within the write of one pass.
        self.goodbye = asyncio.Event()

    def renew(self, name: str, at: datetime) -> None:
        """renew records a heartbeat from name at time at."""
        self._leases[name] = Lease(at)
        self._dirty.add(name)

    def release(self, name: str, at: datetime) -> None:
        """release records the agent's going-away beat: the node is NotReady at once."""
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
                await store.save_leases({name: self._leases[name].renewed_at for name in part if name in self._leases})
            except BaseException:
                self._dirty.update(names[start:])
                raise
        return len(names)

    async def load(self, store: Store) -> None:
        """load fills the table from the store (at start); leases already held are kept if newer."""
        for name, at in (await store.load_leases()).items():
            held = self._leases.get(name)
            if held is None or held.renewed_at < at:
                self._leases[name] = Lease(at)
