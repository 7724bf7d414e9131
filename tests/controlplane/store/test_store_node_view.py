"""NodeView: one projection per stored Node, refreshed from list_nodes_changed, decoding only what changed."""

from __future__ import annotations

from controlplane.api import Node
from controlplane.store.base import NodeView
from tests.factories import bump, node

from .conftest import AnyStore


async def test_a_view_follows_creations_writes_and_deletions(store: AnyStore) -> None:
    for name in ("a", "b", "c"):
        await store.create_node(node(name))
    projected: list[str] = []

    def project(n: Node) -> str | None:
        projected.append(n.name)
        return (n.metadata.labels or {}).get("count")

    view = NodeView(store, project)
    assert dict(await view.refresh()) == {"a": None, "b": None, "c": None}
    assert sorted(projected) == ["a", "b", "c"]

    projected.clear()
    assert dict(await view.refresh()) == {"a": None, "b": None, "c": None}
    assert projected == []  # nothing written: nothing decoded

    await store.update_node("a", bump)
    await store.delete_node("b")
    await store.create_node(node("d"))
    after = dict(await view.refresh())
    assert sorted(projected) == ["a", "d"]
    assert sorted(after) == ["a", "c", "d"]
    assert after["a"] == "1" and after["c"] is None
