"""Store writes issued concurrently in bounded batches, so the store can group-commit them in one fsync."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Final, TypeVar

T = TypeVar("T")

#: Writes in flight at once. The SQLite store commits up to 512 queued writes together; a smaller batch
#: keeps the event loop responsive between batches.
BATCH: Final = 256


async def write_all(writes: Iterable[Awaitable[T]], *, batch: int = BATCH) -> list[T]:
    """write_all awaits writes at most batch at a time and returns their results in order.

    Each write must handle its own expected errors (NotFound, Conflict): one failing write must not
    cancel the rest of the pass.
    """
    results: list[T] = []
    pending: list[Awaitable[T]] = []
    for write in writes:
        pending.append(write)
        if len(pending) >= batch:
            results.extend(await asyncio.gather(*pending))
            pending = []
    if pending:
        results.extend(await asyncio.gather(*pending))
    return results
