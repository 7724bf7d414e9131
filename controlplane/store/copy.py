"""Copying a whole store into an empty one, e.g. from SQLite to PostgreSQL (`cara-server --copy-store-to URL`):
every Node with its status and binding, every Project, the persisted node leases and each Node's history."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Store, StoreError


@dataclass(frozen=True, slots=True)
class Copied:
    """Copied counts what copy_store wrote."""

    nodes: int
    projects: int
    leases: int
    history_entries: int


async def copy_store(source: Store, target: Store) -> Copied:
    """copy_store copies everything of source into target; raises StoreError when target holds anything already
    (a copy never merges). The source should be idle (its server stopped), or later writes are not copied."""
    if await target.list_nodes() or await target.list_projects():
        raise StoreError("the target store is not empty; a copy goes only into a new, empty store")
    nodes = await source.list_nodes()
    entries = 0
    for node in nodes:
        await target.create_node(node)
        history = await source.get_history(node.name)
        kept = max(len(history.throughput), len(history.paths))
        if kept:
            await target.append_history(node.name, throughput=history.throughput, paths=history.paths, limit=kept)
            entries += len(history.throughput) + len(history.paths)
    projects = await source.list_projects()
    for project in projects:
        await target.create_project(project)
    leases = await source.load_leases()
    await target.save_leases(leases)
    return Copied(nodes=len(nodes), projects=len(projects), leases=len(leases), history_entries=entries)
