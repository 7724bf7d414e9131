"""Create, get, list, update and delete of Nodes and Projects, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controlplane.api import Node, NodeState, Project, ProjectPhase
from controlplane.store import AlreadyExists, Conflict, NotFound
from tests.factories import node, project

from .conftest import AnyStore

T0 = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)


async def test_create_then_get_returns_the_same_node(store: AnyStore) -> None:
    created = await store.create_node(node("edge-1", labels={"zone": "a"}, created=T0))
    fetched = await store.get_node("edge-1")
    assert fetched == created
    assert fetched.to_wire() == node("edge-1", labels={"zone": "a"}, created=T0).to_wire()


async def test_create_then_get_returns_the_same_project(store: AnyStore) -> None:
    want = project("shop", phase=ProjectPhase.SCHEDULED, node_ref="edge-1", labels={"team": "x"})
    await store.create_project(want)
    assert (await store.get_project("shop")).to_wire() == want.to_wire()


async def test_create_of_a_taken_name_raises_already_exists(store: AnyStore) -> None:
    await store.create_node(node("edge-1"))
    await store.create_project(project("shop"))
    with pytest.raises(AlreadyExists) as node_error:
        await store.create_node(node("edge-1", labels={"other": "x"}))
    with pytest.raises(AlreadyExists) as project_error:
        await store.create_project(project("shop"))
    assert (node_error.value.kind, node_error.value.name) == ("Node", "edge-1")
    assert (project_error.value.kind, project_error.value.name) == ("Project", "shop")
    assert (await store.get_node("edge-1")).metadata.labels is None  # the first one is untouched


async def test_a_node_and_a_project_may_share_a_name(store: AnyStore) -> None:
    await store.create_node(node("same"))
    await store.create_project(project("same"))
    assert (await store.get_node("same")).kind == "Node"
    assert (await store.get_project("same")).kind == "Project"


@pytest.mark.parametrize("operation", ["get_node", "delete_node", "get_project", "delete_project"])
async def test_missing_objects_raise_not_found(store: AnyStore, operation: str) -> None:
    with pytest.raises(NotFound) as error:
        await getattr(store, operation)("ghost")
    assert error.value.name == "ghost"
    assert error.value.kind == ("Node" if operation.endswith("node") else "Project")


async def test_update_of_a_missing_object_raises_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFound, match='Node "ghost" not found'):
        await store.update_node("ghost", lambda n: n)
    with pytest.raises(NotFound, match='Project "ghost" not found'):
        await store.update_project("ghost", lambda p: p)


async def test_delete_removes_only_the_named_object(store: AnyStore) -> None:
    for name in ("a", "b"):
        await store.create_node(node(name))
        await store.create_project(project(name))
    await store.delete_node("a")
    await store.delete_project("b")
    assert [n.name for n in await store.list_nodes()] == ["b"]
    assert [p.name for p in await store.list_projects()] == ["a"]
    with pytest.raises(NotFound):
        await store.get_node("a")
    await store.create_node(node("a"))  # the name is free again
    assert [n.name for n in await store.list_nodes()] == ["a", "b"]


async def test_update_applies_the_mutator_and_persists_the_result(store: AnyStore) -> None:
    await store.create_node(node("edge-1"))

    def cordon(n: Node) -> Node:
        n.spec.unschedulable = True
        n.status.state = NodeState.DRAINING
        n.metadata.updated_at = T0
        return n

    returned = await store.update_node("edge-1", cordon)
    stored = await store.get_node("edge-1")
    assert returned == stored
    assert (stored.spec.unschedulable, stored.status.state, stored.metadata.updated_at) == (
        True,
        NodeState.DRAINING,
        T0,
    )


async def test_update_project_moves_its_indexed_phase_and_node(store: AnyStore) -> None:
    await store.create_project(project("shop"))

    def bind(p: Project) -> Project:
        p.status.phase, p.status.node_ref = ProjectPhase.SCHEDULED, "edge-2"
        return p

    await store.update_project("shop", bind)
    assert await store.list_projects(phases=[ProjectPhase.PENDING]) == []
    assert [p.name for p in await store.list_projects(phases=[ProjectPhase.SCHEDULED], node_ref="edge-2")] == ["shop"]


async def test_a_mutator_that_raises_writes_nothing(store: AnyStore) -> None:
    await store.create_project(project("shop", phase=ProjectPhase.RUNNING, labels={"v": "1"}))

    def refuse(p: Project) -> Project:
        p.metadata.labels = {"v": "2"}  # changed in memory, then refused
        p.status.phase = ProjectPhase.PENDING
        raise Conflict("project is Running")

    with pytest.raises(Conflict, match="Running"):
        await store.update_project("shop", refuse)
    stored = await store.get_project("shop")
    assert (stored.metadata.labels, stored.status.phase) == ({"v": "1"}, ProjectPhase.RUNNING)
    assert await store.list_projects(phases=[ProjectPhase.PENDING]) == []


async def test_any_exception_from_a_mutator_propagates_and_writes_nothing(store: AnyStore) -> None:
    await store.create_node(node("edge-1", labels={"v": "1"}))

    def broken(n: Node) -> Node:
        n.metadata.labels = {"v": "2"}
        raise RuntimeError("bug in mutator")

    with pytest.raises(RuntimeError, match="bug in mutator"):
        await store.update_node("edge-1", broken)
    assert (await store.get_node("edge-1")).metadata.labels == {"v": "1"}


async def test_a_mutator_may_not_rename(store: AnyStore) -> None:
    await store.create_node(node("edge-1"))

    def rename(n: Node) -> Node:
        return node("edge-2")

    with pytest.raises(ValueError, match="renamed"):
        await store.update_node("edge-1", rename)
    assert [n.name for n in await store.list_nodes()] == ["edge-1"]


async def test_lists_are_ordered_by_name_bytewise(store: AnyStore) -> None:
    names = ["b", "a-b", "a.b", "ab", "a0", "a", "z9", "a-a"]
    for name in names:
        await store.create_node(node(name))
        await store.create_project(project(name))
    assert [n.name for n in await store.list_nodes()] == sorted(names)
    assert [p.name for p in await store.list_projects()] == sorted(names)


async def test_empty_store_lists_nothing(store: AnyStore) -> None:
    assert await store.list_nodes() == []
    assert await store.list_projects() == []
    assert await store.list_projects(phases=[]) == []


async def test_list_projects_ors_phases_and_ands_the_other_filters(store: AnyStore) -> None:
    rows = [
        ("p1", ProjectPhase.PENDING, None, {"team": "a"}),
        ("p2", ProjectPhase.SCHEDULED, "n1", {"team": "a"}),
        ("p3", ProjectPhase.RUNNING, "n1", {"team": "b"}),
        ("p4", ProjectPhase.RUNNING, "n2", {"team": "a", "tier": "web"}),
        ("p5", ProjectPhase.FAILED, "n2", None),
    ]
    for name, phase, node_ref, labels in rows:
        await store.create_project(project(name, phase=phase, node_ref=node_ref, labels=labels))

    async def names(**filters: object) -> list[str]:
        return [p.name for p in await store.list_projects(**filters)]  # type: ignore[arg-type]

    assert await names() == ["p1", "p2", "p3", "p4", "p5"]
    assert await names(phases=[ProjectPhase.RUNNING]) == ["p3", "p4"]
    assert await names(phases=[ProjectPhase.PENDING, ProjectPhase.FAILED]) == ["p1", "p5"]
    assert await names(phases=[]) == []
    assert await names(node_ref="n1") == ["p2", "p3"]
    assert await names(node_ref="n3") == []
    assert await names(phases=[ProjectPhase.RUNNING, ProjectPhase.FAILED], node_ref="n2") == ["p4", "p5"]
    assert await names(labels={"team": "a"}) == ["p1", "p2", "p4"]
    assert await names(labels={"team": "a", "tier": "web"}) == ["p4"]
    assert await names(labels={"team": "a"}, phases=[ProjectPhase.RUNNING, ProjectPhase.PENDING]) == ["p1", "p4"]
    assert await names(labels={"team": "c"}) == []
    assert await names(labels={}) == ["p1", "p2", "p3", "p4", "p5"]


async def test_list_nodes_matches_every_label_exactly(store: AnyStore) -> None:
    await store.create_node(node("n1", labels={"zone": "eu", "example.com/gpu": "true"}))
    await store.create_node(node("n2", labels={"zone": "eu"}))
    await store.create_node(node("n3", labels={"zone": "eu-west"}))
    await store.create_node(node("n4"))
    assert [n.name for n in await store.list_nodes(labels={"zone": "eu"})] == ["n1", "n2"]
    assert [n.name for n in await store.list_nodes(labels={"zone": "eu", "example.com/gpu": "true"})] == ["n1"]
    assert [n.name for n in await store.list_nodes(labels={"example.com/gpu": "false"})] == []
    assert [n.name for n in await store.list_nodes(labels={'we"ird': "'quote"})] == []
    assert len(await store.list_nodes()) == 4


async def test_timestamps_round_trip_as_utc(store: AnyStore) -> None:
    paris = timezone(timedelta(hours=1))
    local = datetime(2026, 11, 24, 13, 0, 0, 500000, tzinfo=paris)
    await store.create_node(node("edge-1", created=local))
    stored = await store.get_node("edge-1")
    assert stored.metadata.created_at == local
    assert stored.metadata.created_at is not None and stored.metadata.created_at.utcoffset() == timedelta(0)
    assert stored.to_wire()["metadata"]["createdAt"] == "2026-11-24T12:00:00.500000Z"


async def test_unicode_and_large_documents_round_trip(store: AnyStore) -> None:
    labels = {f"k{i}": "ü✓" * 20 for i in range(200)}
    await store.create_node(node("big", labels=labels))
    assert (await store.get_node("big")).metadata.labels == labels
