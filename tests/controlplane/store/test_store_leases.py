"""Batched node lease persistence (save_leases / load_leases), alone and through the LeaseTable."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from controlplane.store import Lease, LeaseTable, open_store, postgres, sqlite
from controlplane.store.leases import facts_confirmed_at
from tests.factories import node

from .conftest import AnyStore, StoreUrlFactory

T0 = datetime(2026, 11, 24, 12, 0, 0, 654321, tzinfo=UTC)


async def test_saved_leases_load_back_exactly_in_utc(store: AnyStore) -> None:
    for name in ("a", "b"):
        await store.create_node(node(name))
    tokyo = timezone(timedelta(hours=9))
    await store.save_leases({"a": Lease(T0), "b": Lease(T0.astimezone(tokyo) + timedelta(microseconds=1))})
    loaded = await store.load_leases()
    assert loaded == {"a": Lease(T0), "b": Lease(T0 + timedelta(microseconds=1))}
    assert all(lease.renewed_at.utcoffset() == timedelta(0) for lease in loaded.values())


async def test_unknown_names_are_skipped(store: AnyStore) -> None:
    await store.create_node(node("known"))
    await store.save_leases({"known": Lease(T0), "ghost": Lease(T0)})
    assert await store.load_leases() == {"known": Lease(T0)}


async def test_a_newer_lease_replaces_an_older_one_never_the_reverse(store: AnyStore) -> None:
    await store.create_node(node("a"))
    await store.save_leases({"a": Lease(T0)})
    await store.save_leases({"a": Lease(T0 + timedelta(seconds=10))})
    await store.save_leases({"a": Lease(T0 + timedelta(seconds=5), released=True)})
    assert await store.load_leases() == {"a": Lease(T0 + timedelta(seconds=10))}, "an older lease moves nothing back"


async def test_deleting_a_node_drops_its_lease(store: AnyStore) -> None:
    for name in ("a", "b"):
        await store.create_node(node(name))
    await store.save_leases({"a": Lease(T0), "b": Lease(T0)})
    await store.delete_node("a")
    assert await store.load_leases() == {"b": Lease(T0)}


async def test_empty_batches_and_naive_times(store: AnyStore) -> None:
    await store.create_node(node("a"))
    await store.save_leases({})
    assert await store.load_leases() == {}
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.save_leases({"a": Lease(datetime(2026, 11, 24, 12, 0))})
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.save_leases({"a": Lease(T0, rejected=True, facts_at=datetime(2026, 11, 24, 12, 0))})
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


async def test_a_lease_is_stored_with_its_marks(store: AnyStore) -> None:
    for name in ("gone", "rejected", "never", "plain"):
        await store.create_node(node(name))
    tokyo = timezone(timedelta(hours=9))
    leases = {
        "gone": Lease(T0, released=True),
        "rejected": Lease(T0, rejected=True, facts_at=(T0 - timedelta(seconds=30)).astimezone(tokyo)),
        "never": Lease(T0, released=True, rejected=True),
        "plain": Lease(T0),
    }
    await store.save_leases(leases)
    loaded = await store.load_leases()
    assert loaded == leases
    facts_at = loaded["rejected"].facts_at
    assert facts_at is not None and facts_at.utcoffset() == timedelta(0)


async def test_the_newer_lease_wins_with_its_marks(store: AnyStore) -> None:
    await store.create_node(node("a"))
    await store.save_leases({"a": Lease(T0, rejected=True, facts_at=T0 - timedelta(seconds=5))})
    await store.save_leases({"a": Lease(T0 + timedelta(seconds=1), released=True)})
    assert await store.load_leases() == {"a": Lease(T0 + timedelta(seconds=1), released=True)}
    await store.save_leases({"a": Lease(T0 + timedelta(seconds=2))})
    assert await store.load_leases() == {"a": Lease(T0 + timedelta(seconds=2))}, "a newer plain beat clears the marks"


async def test_the_marks_survive_a_restart_through_the_lease_table(store_url: StoreUrlFactory) -> None:
    url = store_url()
    store = await open_store(url)
    table = LeaseTable()
    try:
        for name in ("bad", "bye"):
            await store.create_node(node(name))
        table.renew("bad", T0, facts=True)
        table.reject("bad", T0 + timedelta(seconds=10))
        table.renew("bad", T0 + timedelta(seconds=20))  # an empty beat after the rejected one confirms nothing
        table.release("bye", T0 + timedelta(seconds=20))
        assert await table.flush(store) == 2
    finally:
        await store.close()
    reopened = await open_store(url)
    try:
        fresh = LeaseTable()
        await fresh.load(reopened)
        bad, bye = fresh.get("bad"), fresh.get("bye")
        assert bad == Lease(T0 + timedelta(seconds=20), rejected=True, facts_at=T0)
        assert facts_confirmed_at(bad, T0 + timedelta(seconds=20)) == T0, "the stored lastHeartbeat confirms nothing"
        assert bye is not None and not bye.is_fresh(T0 + timedelta(seconds=20), timedelta(seconds=40))
        assert not fresh.goodbye.is_set(), "a goodbye loaded at start is no news"
    finally:
        await reopened.close()


#: The schema version of the previous release, v0.1.0 (scripts/previous-release), on both backends: its leases are
#: names and times only.
PREVIOUS_RELEASE_SCHEMA = 3


async def test_a_database_of_the_previous_release_is_migrated_in_place(store_url: StoreUrlFactory) -> None:
    url = store_url()
    doc = node("old").to_wire_json()
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as raw, raw:
            for step in (step for steps in sqlite._MIGRATIONS[:PREVIOUS_RELEASE_SCHEMA] for step in steps):
                raw.execute(step)
            raw.execute(f"PRAGMA user_version = {PREVIOUS_RELEASE_SCHEMA}")
            raw.execute("INSERT INTO nodes (name, doc) VALUES ('old', ?)", (doc,))
            micros = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            raw.execute("INSERT INTO node_leases (name, renewed_at_us) VALUES ('old', ?)", (micros,))
    else:
        with psycopg.connect(url, autocommit=True) as pg, pg.transaction():
            for step in (step for steps in postgres._MIGRATIONS[:PREVIOUS_RELEASE_SCHEMA] for step in steps):
                pg.execute(step)
            pg.execute("CREATE TABLE schema_version (version integer NOT NULL)")
            pg.execute("INSERT INTO schema_version (version) VALUES (%s)", (PREVIOUS_RELEASE_SCHEMA,))
            pg.execute("INSERT INTO nodes (name, doc) VALUES ('old', %s::jsonb)", (doc,))
            pg.execute("INSERT INTO node_leases (name, renewed_at) VALUES ('old', %s)", (T0,))
    store = await open_store(url)
    try:
        assert await store.load_leases() == {"old": Lease(T0)}, "a lease of the previous release reads as unmarked"
        assert (await store.get_node("old")).name == "old"
        await store.save_leases({"old": Lease(T0 + timedelta(seconds=1), released=True)})
        assert await store.load_leases() == {"old": Lease(T0 + timedelta(seconds=1), released=True)}
    finally:
        await store.close()
    # A replica still on the previous release renews the lease (its time only): the goodbye is no longer its mark.
    later = T0 + timedelta(seconds=2)
    if url.startswith("sqlite://"):
        micros = (later - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as raw, raw:
            raw.execute("UPDATE node_leases SET renewed_at_us = ? WHERE name = 'old'", (micros,))
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("UPDATE node_leases SET renewed_at = %s WHERE name = 'old'", (later,))
    store = await open_store(url)
    try:
        assert await store.load_leases() == {"old": Lease(later)}, "marks hold only for the renewal they came with"
    finally:
        await store.close()
