"""Mutators are atomic read-modify-writes: concurrent updates, in one process or across replicas, lose nothing."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from controlplane.api import Node
from controlplane.store import AlreadyExists, NotFound, open_store
from tests.factories import bump, node, project

from .conftest import AnyStore, StoreUrlFactory


async def test_fifty_concurrent_increments_lose_nothing(store: AnyStore) -> None:
    await store.create_node(node("edge-1"))
    await store.create_project(project("shop"))
    await asyncio.gather(
        *(store.update_node("edge-1", bump) for _ in range(50)),
        *(store.update_project("shop", bump) for _ in range(50)),
    )
    assert (await store.get_node("edge-1")).metadata.labels == {"count": "50"}
    assert (await store.get_project("shop")).metadata.labels == {"count": "50"}


async def test_two_replicas_on_one_database_lose_nothing(store_url: StoreUrlFactory) -> None:
    url = store_url()
    first, second = await open_store(url), await open_store(url)
    try:
        await first.create_node(node("edge-1"))
        await asyncio.gather(*(replica.update_node("edge-1", bump) for _ in range(30) for replica in (first, second)))
        assert (await second.get_node("edge-1")).metadata.labels == {"count": "60"}
        assert (await first.get_node("edge-1")).metadata.labels == {"count": "60"}
    finally:
        await first.close()
        await second.close()


async def test_a_failing_write_among_concurrent_ones_fails_alone(store: AnyStore) -> None:
    await store.create_node(node("taken"))
    names = [f"n{i:02}" for i in range(30)]
    results = await asyncio.gather(
        *(store.create_node(node(name)) for name in [*names[:15], "taken", *names[15:]]), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], AlreadyExists)
    assert [n.name for n in await store.list_nodes()] == [*names, "taken"]


async def test_concurrent_updates_of_different_objects_all_land(store: AnyStore) -> None:
    names = [f"n{i:02}" for i in range(20)]
    for name in names:
        await store.create_node(node(name))
    await asyncio.gather(*(store.update_node(name, bump) for name in names for _ in range(3)))
    assert {n.name: (n.metadata.labels or {}).get("count") for n in await store.list_nodes()} == dict.fromkeys(
        names, "3"
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_sqlite_group_commit_keeps_each_mutator_atomic(store_url: StoreUrlFactory) -> None:
    store = await open_store(store_url())
    try:
        await store.create_node(node("edge-1"))
        # Many writes queued at once are committed together; a raising mutator in the batch undoes only itself.

        def explode(n: object) -> object:
            raise RuntimeError("no")

        results = await asyncio.gather(
            *(store.update_node("edge-1", bump if i % 7 else explode) for i in range(100)),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        failed = sum(isinstance(r, RuntimeError) for r in results)
        assert failed == len(range(0, 100, 7))
        assert (await store.get_node("edge-1")).metadata.labels == {"count": str(100 - failed)}
    finally:
        await store.close()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_postgres_batched_updates_settle_each_alone(store_url: StoreUrlFactory) -> None:
    """Updates queued together go as one read and one write; each one's outcome is its own: a missing name is
    NotFound, a raising mutator writes nothing, and a row another writer changed between the batch's read and
    its write is applied again from a fresh read, so that other write is kept."""
    url = store_url()
    store = await open_store(url)
    try:
        names = [f"n{i:02}" for i in range(40)]
        for name in names:
            await store.create_node(node(name))
        calls: list[str] = []

        def explode(n: object) -> object:
            raise RuntimeError("no")

        def racing(n: Node) -> Node:
            calls.append(n.name)
            if len(calls) == 1:  # another writer changes the row between this batch's read and its write
                with psycopg.connect(url) as other:
                    other.execute(
                        "UPDATE nodes SET doc = jsonb_set(doc, '{metadata,annotations}', '{\"other\": \"kept\"}')"
                        " WHERE name = 'n00'"
                    )
            return bump(n)

        results = await asyncio.gather(
            store.update_node("n00", racing),
            *(store.update_node(name, bump) for name in names[1:]),
            store.update_node("ghost", bump),
            store.update_node("n01", explode),  # type: ignore[arg-type]
            store.update_node("n02", bump),  # a second update of a name waits for the next batch
            return_exceptions=True,
        )
        assert isinstance(results[len(names)], NotFound)
        assert isinstance(results[len(names) + 1], RuntimeError)
        assert calls == ["n00", "n00"]
        stored = {n.name: n for n in await store.list_nodes()}
        assert stored["n00"].metadata.labels == {"count": "1"}
        assert stored["n00"].metadata.annotations == {"other": "kept"}
        assert {name: (stored[name].metadata.labels or {}).get("count") for name in names[1:]} == {
            **dict.fromkeys(names[1:], "1"),
            "n02": "2",
        }
    finally:
        await store.close()
