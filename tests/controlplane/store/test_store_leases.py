"""Batched node lease persistence (save_leases / load_leases), alone and through the LeaseTable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controlplane.store import LeaseTable, open_store
from tests.factories import node

from .conftest import AnyStore, StoreUrlFactory

T0 = datetime(2026, 11, 24, 12, 0, 0, 654321, tzinfo=UTC)


async def test_saved_leases_load_back_exactly_in_utc(store: AnyStore) -> None:
    for name in ("a", "b"):
        await store.create_node(node(name))
    tokyo = timezone(timedelta(hours=9))
    await store.save_leases({"a": T0, "b": T0.astimezone(tokyo) + timedelta(microseconds=1)})
    loaded = await store.load_leases()
    assert loaded == {"a": T0, "b": T0 + timedelta(microseconds=1)}
    assert all(at.utcoffset() == timedelta(0) for at in loaded.values())


async def test_unknown_names_are_skipped(store: AnyStore) -> None:
    await store.create_node(node("known"))
    await store.save_leases({"known": T0, "ghost": T0})
    assert await store.load_leases() == {"known": T0}


async def test_a_newer_lease_replaces_an_older_one_never_the_reverse(store: AnyStore) -> None:
    await store.create_node(node("a"))
    await store.save_leases({"a": T0})
    await store.save_leases({"a": T0 + timedelta(seconds=10)})
    await store.save_leases({"a": T0 + timedelta(seconds=5)})
    assert await store.load_leases() == {"a": T0 + timedelta(seconds=10)}


async def test_deleting_a_node_drops_its_lease(store: AnyStore) -> None:
    for name in ("a", "b"):
        await store.create_node(node(name))
    await store.save_leases({"a": T0, "b": T0})
    await store.delete_node("a")
    assert await store.load_leases() == {"b": T0}


async def test_empty_batches_and_naive_times(store: AnyStore) -> None:
    await store.create_node(node("a"))
    await store.save_leases({})
    assert await store.load_leases() == {}
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.save_leases({"a": datetime(2026, 11, 24, 12, 0)})
    assert await store.load_leases() == {}


async def test_leases_survive_a_restart_through_the_lease_table(store_url: StoreUrlFactory) -> None:
    url = store_url()
    store = await open_store(url)
    table = LeaseTable()
    try:
        for i in range(300):
            await store.create_node(node(f"n{i:03}"))
        for i in range(300):
            table.renew(f"n{i:03}", T0 + timedelta(seconds=i))
        assert await table.flush(store) == 300
        assert await table.flush(store) == 0  # nothing renewed since
    finally:
        await store.close()
    reopened = await open_store(url)
    try:
        fresh = LeaseTable()
        await fresh.load(reopened)
        assert len(fresh) == 300
        lease = fresh.get("n299")
        assert lease is not None and lease.renewed_at == T0 + timedelta(seconds=299)
    finally:
        await reopened.close()
