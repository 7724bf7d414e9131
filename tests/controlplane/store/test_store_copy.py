"""copy_store: a SQLite store copied into an empty store of each backend holds the same Nodes (status and binding
included), Projects, leases and history; a target that holds anything is refused untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controlplane.api import NetworkMode, NodeBinding, NodeState, NodeStatus, PathChange, ThroughputSample
from controlplane.store import StoreError, open_store
from controlplane.store.copy import copy_store
from tests.controlplane.store.conftest import AnyStore
from tests.factories import node, project

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


async def _source(tmp_path: Path) -> AnyStore:
    source = await open_store(f"sqlite://{tmp_path}/source.db")
    bound = node("edge1", labels={"zone": "a"})
    bound.status = NodeStatus(state=NodeState.READY, binding=NodeBinding(node_id="n-1", name="edge1", bound_at=T0))
    await source.create_node(bound)
    await source.create_node(node("edge2"))
    await source.create_project(project("shop", node_ref="edge1"))
    await source.save_leases({"edge1": T0, "edge2": T0 - timedelta(seconds=5)})
    sample = ThroughputSample(time=T0, download="94.1Mbps", upload="41.0Mbps", bytes_used=1000)
    change = PathChange(time=T0, peer="cara-server", to_mode=NetworkMode.DIRECT)
    await source.append_history("edge1", throughput=[sample], paths=[change], limit=50)
    return source  # type: ignore[return-value]


async def test_a_copy_holds_everything_of_the_source(tmp_path: Path, store: AnyStore) -> None:
    source = await _source(tmp_path)
    try:
        copied = await copy_store(source, store)
        assert (copied.nodes, copied.projects, copied.leases, copied.history_entries) == (2, 1, 2, 2)
        for name in ("edge1", "edge2"):
            a, b = await source.get_node(name), await store.get_node(name)
            assert (b.metadata.labels, b.status) == (a.metadata.labels, a.status)
        assert (await store.get_node("edge1")).status.binding.node_id == "n-1"  # type: ignore[union-attr]
        assert (await store.get_project("shop")).status.node_ref == "edge1"
        assert await store.load_leases() == await source.load_leases()
        assert await store.get_history("edge1") == await source.get_history("edge1")
    finally:
        await source.close()


async def test_a_target_that_holds_anything_is_refused_untouched(tmp_path: Path, store: AnyStore) -> None:
    source = await _source(tmp_path)
    try:
        await store.create_node(node("other"))
        with pytest.raises(StoreError, match="not empty"):
            await copy_store(source, store)
        assert [n.name for n in await store.list_nodes()] == ["other"]
    finally:
        await source.close()
