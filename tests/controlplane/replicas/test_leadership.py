"""Leadership and run_when_leading, one step at a time over a store that answers the lease as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, cast

import pytest

from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import Leadership, run_when_leading
from controlplane.store import open_store
from controlplane.store.base import Store, StoreError
from controlplane.store.leases import Lease, LeaseTable
from tests.conftest import FakeClock

TTL = timedelta(seconds=10)


class ScriptedLease:
    """ScriptedLease is a store whose try_acquire_leadership answers from a script (an exception is raised)."""

    def __init__(self, store: Store, answers: list[bool | Exception]) -> None:
        self.store, self.answers, self.asked_at = store, list(answers), list[datetime]()
        self.loads = 0

    async def try_acquire_leadership(self, holder: str, ttl_s: float, now: datetime) -> bool:
        self.asked_at.append(now)
        answer = self.answers.pop(0) if self.answers else False
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def load_leases(self) -> dict[str, Lease]:
        self.loads += 1
        return await self.store.load_leases()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
async def sqlite_store() -> AsyncIterator[Store]:
    store = await open_store("sqlite:///:memory:")
    yield store
    await store.close()


async def test_leading_lasts_ttl_from_the_start_of_the_last_successful_renewal(
    sqlite_store: Store, clock: FakeClock
) -> None:
    lease = ScriptedLease(sqlite_store, [True, StoreError("connection lost"), True, False])
    leadership = Leadership(store=cast(Store, lease), holder="r1", ttl=TTL, now=clock.now)
    assert not leadership.leading()
    assert await leadership.renew()
    clock.step(9.9)
    assert leadership.leading()
    clock.step(0.1)
    assert not leadership.leading(), "a replica that has not renewed stops acting when its lease may expire"
    assert not await leadership.renew(), "a store error is not leading"
    assert not leadership.leading()
    assert await leadership.renew() and leadership.leading()
    assert not await leadership.renew() and not leadership.leading(), "another replica holds it now"


async def test_each_term_starts_controllers_and_losing_the_lease_stops_them(
    sqlite_store: Store, clock: FakeClock
) -> None:
    lease = ScriptedLease(sqlite_store, [False, True, True, False, True])
    changes: list[bool] = []
    stop = asyncio.Event()

    def on_change(leading: bool) -> None:
        changes.append(leading)
        if len(changes) == 3:
            stop.set()

    await asyncio.wait_for(
        run_when_leading(
            store=cast(Store, lease),
            leases=LeaseTable(),
            now=clock.now,
            config=ControllerConfig(),
            stop=stop,
            leadership=Leadership(store=cast(Store, lease), holder="r1", ttl=TTL, now=clock.now),
            renew_every=timedelta(0),
            merge_leases=True,
            on_change=on_change,
        ),
        timeout=10,
    )
    assert changes == [True, False, True], "a term per won lease, so a new term gets fresh controllers"
    assert lease.loads == 3, "the leader merges the other replicas' leases at each renewal it wins"
