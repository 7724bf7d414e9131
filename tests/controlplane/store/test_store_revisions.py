"""Node revisions: list_nodes_changed returns only what was created, written or deleted since a snapshot."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from controlplane.store import open_store, sqlite
from tests.factories import bump, node

from .conftest import AnyStore, StoreUrlFactory

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def test_an_empty_snapshot_gets_every_node_in_name_order(store: AnyStore) -> None:
    for name in ("b", "a", "c"):
        await store.create_node(node(name))
    changes = await store.list_nodes_changed({})
    assert [n.name for n in changes.changed] == ["a", "b", "c"]
    assert changes.deleted == []
    assert sorted(changes.revisions) == ["a", "b", "c"]
    assert len(set(changes.revisions.values())) == 3


async def test_nothing_changed_reads_no_document(store: AnyStore) -> None:
    await store.create_node(node("a"))
    first = await store.list_nodes_changed({})
    again = await store.list_nodes_changed(first.revisions)
    assert again.changed == [] and again.deleted == []
    assert again.revisions == first.revisions


async def test_writes_creations_and_deletions_are_reported(store: AnyStore) -> None:
    for name in ("a", "b", "c"):
        await store.create_node(node(name))
    snapshot = (await store.list_nodes_changed({})).revisions
    await store.update_node("a", bump)
    await store.delete_node("b")
    await store.create_node(node("d"))
    changes = await store.list_nodes_changed(snapshot)
    assert [(n.name, (n.metadata.labels or {}).get("count")) for n in changes.changed] == [("a", "1"), ("d", None)]
    assert changes.deleted == ["b"]
    assert sorted(changes.revisions) == ["a", "c", "d"]
    assert changes.revisions["c"] == snapshot["c"]
    assert changes.revisions["a"] != snapshot["a"]


async def test_lease_saves_do_not_count_as_node_writes(store: AnyStore) -> None:
    await store.create_node(node("a"))
    snapshot = (await store.list_nodes_changed({})).revisions
    await store.save_leases({"a": T0})
    assert (await store.list_nodes_changed(snapshot)).changed == []


async def test_a_node_deleted_and_created_again_never_reuses_a_revision(store: AnyStore) -> None:
    await store.create_node(node("a"))
    await store.create_node(node("z"))
    snapshot = (await store.list_nodes_changed({})).revisions
    await store.delete_node("z")  # the highest revision goes away ...
    await store.delete_node("a")
    await store.create_node(node("a", labels={"generation": "2"}))  # ... and "a" must not get an old one back
    changes = await store.list_nodes_changed(snapshot)
    assert [(n.name, n.metadata.labels) for n in changes.changed] == [("a", {"generation": "2"})]
    assert changes.deleted == ["z"]


async def test_many_changed_nodes_are_read_by_name_in_chunks(store: AnyStore) -> None:
    names = [f"n{i:04}" for i in range(1200)]
    for name in names:
        await store.create_node(node(name))
    snapshot = (await store.list_nodes_changed({})).revisions
    written = names[::3]  # a third: fetched by name (more than one chunk of 500), not by reading the table
    for name in written:
        await store.update_node(name, bump)
    changes = await store.list_nodes_changed(snapshot)
    assert [n.name for n in changes.changed] == written
    assert all((n.metadata.labels or {}).get("count") == "1" for n in changes.changed)


async def test_revisions_survive_reopening(store_url: StoreUrlFactory) -> None:
    url = store_url()
    store = await open_store(url)
    try:
        await store.create_node(node("a"))
        snapshot = (await store.list_nodes_changed({})).revisions
    finally:
        await store.close()
    store = await open_store(url)
    try:
        assert (await store.list_nodes_changed(snapshot)).changed == []
        await store.update_node("a", bump)
        assert [n.name for n in (await store.list_nodes_changed(snapshot)).changed] == ["a"]
    finally:
        await store.close()


async def test_a_file_of_schema_four_keeps_its_revisions_without_the_triggers(tmp_path: Path) -> None:
    """Schema 5 drops the revision triggers: the statements that write a Node set its revision. A file written by
    schema 4 (triggers) keeps its revisions, and every write after the upgrade still gets a new, higher one."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    for statements in sqlite._MIGRATIONS[:4]:
        for statement in statements:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    raw.execute("INSERT INTO nodes (name, doc) VALUES ('a', ?)", (node("a").to_wire_json(),))
    raw.commit()
    (old,) = raw.execute("SELECT revision FROM nodes WHERE name = 'a'").fetchone()
    raw.close()
    assert old > 0  # the trigger set it
    store = await open_store(f"sqlite://{path}")
    try:
        before = (await store.list_nodes_changed({})).revisions
        assert before == {"a": old}
        await store.update_node("a", bump)
        await store.create_node(node("b"))
        after = (await store.list_nodes_changed(before)).revisions
        assert after["a"] > old and after["b"] > after["a"]
    finally:
        await store.close()
    raw = sqlite3.connect(path)
    triggers = raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    raw.close()
    assert triggers == []
