"""Node history (append_history / get_history) on both backends: bounded, ordered, deleted with its Node."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.api import NetworkMode, PathChange, ThroughputSample
from controlplane.store import NotFound, open_store
from tests.factories import node

from .conftest import AnyStore, StoreUrlFactory

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def sample(i: int) -> ThroughputSample:
    return ThroughputSample(time=T0 + timedelta(minutes=i), download=f"{i}.0Mbps", upload="1.0Mbps", bytes_used=i)


def change(i: int, peer: str = "edge2") -> PathChange:
    modes = (NetworkMode.DIRECT, NetworkMode.DERP)
    return PathChange(
        time=T0 + timedelta(seconds=i),
        peer=peer,
        from_mode=modes[i % 2],
        to_mode=modes[(i + 1) % 2],
        derp_region="lab" if i % 2 == 0 else None,
        latency_ms=float(i),
    )


async def test_a_new_node_has_an_empty_history(store: AnyStore) -> None:
    await store.create_node(node("edge1"))
    history = await store.get_history("edge1")
    assert history.to_wire() == {
        "apiVersion": "caravanserai/v1",
        "kind": "NodeHistory",
        "name": "edge1",
        "throughput": [],
        "paths": [],
    }


async def test_entries_come_back_oldest_first_and_exactly(store: AnyStore) -> None:
    await store.create_node(node("edge1"))
    await store.append_history("edge1", throughput=[sample(1)], paths=[change(1), change(2)], limit=10)
    await store.append_history("edge1", throughput=[sample(2)], limit=10)
    history = await store.get_history("edge1")
    assert history.throughput == [sample(1), sample(2)]
    assert history.paths == [change(1), change(2)]


async def test_each_list_keeps_only_its_newest_limit(store: AnyStore) -> None:
    await store.create_node(node("edge1"))
    for i in range(7):
        await store.append_history("edge1", throughput=[sample(i)], paths=[change(i)], limit=3)
    await store.append_history("edge1", paths=[change(10), change(11), change(12), change(13)], limit=3)
    history = await store.get_history("edge1")
    assert [s.bytes_used for s in history.throughput] == [4, 5, 6]
    assert [c.latency_ms for c in history.paths] == [11.0, 12.0, 13.0]


async def test_histories_of_nodes_are_separate(store: AnyStore) -> None:
    for name in ("edge1", "edge2"):
        await store.create_node(node(name))
    await store.append_history("edge1", paths=[change(1, "edge2")], limit=1)
    await store.append_history("edge2", paths=[change(2, "edge1"), change(3, "edge1")], limit=1)
    assert (await store.get_history("edge1")).paths == [change(1, "edge2")]
    assert (await store.get_history("edge2")).paths == [change(3, "edge1")]


async def test_unknown_nodes_are_skipped_on_append_and_not_found_on_read(store: AnyStore) -> None:
    await store.append_history("ghost", throughput=[sample(1)], limit=5)
    with pytest.raises(NotFound, match='Node "ghost" not found'):
        await store.get_history("ghost")


async def test_deleting_a_node_deletes_its_history(store: AnyStore) -> None:
    await store.create_node(node("edge1"))
    await store.append_history("edge1", throughput=[sample(1)], paths=[change(1)], limit=5)
    await store.delete_node("edge1")
    await store.create_node(node("edge1"))
    history = await store.get_history("edge1")
    assert (history.throughput, history.paths) == ([], [])


async def test_concurrent_appends_of_many_nodes_are_kept_trimmed_and_skip_a_deleted_node(store: AnyStore) -> None:
    """A fleet's first beats: many Nodes append at once (PostgreSQL writes them in batches) while one is deleted;
    each Node keeps its own newest entries, and the deleted one none."""
    names = [f"n{i:02d}" for i in range(40)]
    for name in names:
        await store.create_node(node(name))

    async def beats(i: int) -> None:
        for round_ in range(3):
            await store.append_history(names[i], throughput=[sample(10 * round_ + i)], paths=[change(i)], limit=2)

    await asyncio.gather(*(beats(i) for i in range(len(names))), store.delete_node("n07"))
    for i, name in enumerate(names):
        if name == "n07":
            with pytest.raises(NotFound):
                await store.get_history(name)
            continue
        history = await store.get_history(name)
        assert [s.bytes_used for s in history.throughput] == [10 + i, 20 + i]
        assert history.paths == [change(i), change(i)]


async def test_history_survives_reopening(store_url: StoreUrlFactory) -> None:
    url = store_url()
    first = await open_store(url)
    try:
        await first.create_node(node("edge1"))
        await first.append_history("edge1", throughput=[sample(1)], paths=[change(1)], limit=5)
    finally:
        await first.close()
    second = await open_store(url)
    try:
        history = await second.get_history("edge1")
    finally:
        await second.close()
    assert (history.throughput, history.paths) == ([sample(1)], [change(1)])
