"""The leader lease: one replica at a time runs the controllers; PostgreSQL keeps the lease, SQLite always leads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.store import open_store

from .conftest import AnyStore, StoreUrlFactory

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TTL = 10.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_sqlite_always_leads(store: AnyStore) -> None:
    assert await store.try_acquire_leadership("a", TTL, at(0))
    assert await store.try_acquire_leadership("b", TTL, at(1))
    with pytest.raises(ValueError, match="ttl_s"):
        await store.try_acquire_leadership("a", 0, at(2))


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("steps"),
    [
        pytest.param([("a", 0, True), ("b", 1, False), ("a", 2, True)], id="holder-renews-other-is-refused"),
        pytest.param([("a", 0, True), ("b", 9.999, False), ("b", 10, True), ("a", 11, False)], id="expiry-hands-over"),
        pytest.param([("a", 0, True), ("a", 8, True), ("b", 12, False), ("b", 18, True)], id="renewal-extends"),
        pytest.param([("a", 0, True), ("b", 30, True), ("b", 35, True), ("a", 36, False)], id="new-leader-renews"),
    ],
)
async def test_postgres_leader_lease(store: AnyStore, steps: list[tuple[str, float, bool]]) -> None:
    seen = [(holder, t, await store.try_acquire_leadership(holder, TTL, at(t))) for holder, t, _ in steps]
    assert seen == steps


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_postgres_replicas_racing_for_a_free_lease_elect_exactly_one(store_url: StoreUrlFactory) -> None:
    url = store_url()
    replicas = [await open_store(url) for _ in range(4)]
    try:
        won = await asyncio.gather(
            *(replica.try_acquire_leadership(f"r{i}", TTL, at(0)) for i, replica in enumerate(replicas))
        )
        assert won.count(True) == 1
        leader = won.index(True)
        # The lease is in the database, not in a replica: another replica sees it too, and the leader renews.
        other = (leader + 1) % len(replicas)
        assert not await replicas[other].try_acquire_leadership(f"r{other}", TTL, at(5))
        assert await replicas[other].try_acquire_leadership(f"r{leader}", TTL, at(5))
    finally:
        for replica in replicas:
            await replica.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_postgres_failover_within_fifteen_seconds(store: AnyStore) -> None:
    # Replica a renews every 3 s until it dies at t=20; b polls every 3 s and must lead within 15 s of a's death.
    leader_since: float | None = None
    for tick in range(0, 60, 3):
        if tick <= 20:
            assert await store.try_acquire_leadership("a", TTL, at(tick))
        if await store.try_acquire_leadership("b", TTL, at(tick + 0.5)):
            leader_since = tick + 0.5
            break
    assert leader_since is not None and 20 < leader_since <= 20 + 15
