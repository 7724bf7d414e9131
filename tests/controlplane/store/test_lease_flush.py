"""LeaseTable.flush persists in chunks and never forgets a lease whose chunk failed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from controlplane.store.leases import Lease, LeaseTable

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingStore:
    """RecordingStore records save_leases batches and fails the call numbered `fail_on` (1-based)."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[dict[str, Lease]] = []
        self.fail_on = fail_on

    async def save_leases(self, leases: Mapping[str, Lease]) -> None:
        if self.fail_on is not None and len(self.batches) + 1 == self.fail_on:
            self.fail_on = None
            raise OSError("disk full")
        self.batches.append(dict(leases))


async def test_flush_in_chunks() -> None:
    table = LeaseTable()
    for i in range(25):
        table.renew(f"n{i}", T0)
    store: Any = RecordingStore()
    assert await table.flush(store, chunk=10) == 25
    assert [len(b) for b in store.batches] == [10, 10, 5]
    assert await table.flush(store, chunk=10) == 0, "nothing renewed since"


async def test_failed_chunk_is_flushed_next_time() -> None:
    table = LeaseTable()
    for i in range(25):
        table.renew(f"n{i}", T0)
    store: Any = RecordingStore(fail_on=2)
    with pytest.raises(OSError):
        await table.flush(store, chunk=10)
    assert await table.flush(store, chunk=10) == 15
    flushed = {name for batch in store.batches for name in batch}
    assert flushed == {f"n{i}" for i in range(25)}
