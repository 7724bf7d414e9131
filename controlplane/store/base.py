"""The Store protocol every persistence backend implements, and the store's own errors.

Exception tree::

    StoreError
     ├── NotFound        the named object does not exist
     ├── AlreadyExists   create of a name that is taken
     └── Conflict        a write that the object's current state forbids (raised by mutators)

No HTTP here: the server maps these to problem documents in one table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from controlplane.api import Event, Node, NodeHistory, PathChange, Project, ProjectPhase, ThroughputSample, Transition


class StoreError(Exception):
    """StoreError is the base of every store error."""


class NotFound(StoreError):
    """NotFound is raised when the named object does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f'{kind} "{name}" not found')


class AlreadyExists(StoreError):
    """AlreadyExists is raised when creating an object whose name is taken."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f'{kind} "{name}" already exists')


class Conflict(StoreError):
    """Conflict is raised (by a mutator, or by the store) when a write is not allowed in the current state."""


#: A mutator gets the current object and returns the object to store; it may raise Conflict to abort.
NodeMutator = Callable[[Node], Node]
ProjectMutator = Callable[[Project], Project]
#: Told of every Node and Project create or update once it is stored: (before, after); before is None on create.
#: Called in the writer's task, so context variables of the request that wrote are visible.
WriteObserver = Callable[[Node | Project | None, Node | Project], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NodeChanges:
    """NodeChanges is how the stored Nodes differ from a caller's snapshot of their revisions."""

    # Changed: the Nodes created or written since the snapshot, ordered by name.
    changed: list[Node] = field(default_factory=list)
    # Deleted: names in the snapshot that are no longer stored.
    deleted: list[str] = field(default_factory=list)
    # Revisions: name → revision of every stored Node, the snapshot to pass next time.
    revisions: dict[str, int] = field(default_factory=dict)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProjectedChanges(Generic[T]):
    """ProjectedChanges is NodeChanges with each changed Node reduced to a projection of the caller's."""

    # Changed: name → projection of each Node created or written since the snapshot, in name order.
    changed: dict[str, T] = field(default_factory=dict)
    # Deleted: names in the snapshot that are no longer stored.
    deleted: list[str] = field(default_factory=list)
    # Revisions: name → revision of every stored Node, the snapshot to pass next time.
    revisions: dict[str, int] = field(default_factory=dict)


class Store(Protocol):
    """Store persists Nodes, Projects and node leases.

    Every write is durable when the call returns. `update_*` runs the mutator inside one
    transaction (read, mutate, write), so concurrent updates never lose each other's changes.
    The store stamps nothing itself: callers set createdAt/updatedAt.
    """

    async def create_node(self, node: Node) -> Node:
        """create_node stores a new Node; raises AlreadyExists."""
        ...

    async def get_node(self, name: str) -> Node:
        """get_node returns the Node; raises NotFound."""
        ...

    async def list_nodes(self, *, labels: Mapping[str, str] | None = None) -> list[Node]:
        """list_nodes returns Nodes whose labels include all of labels, ordered by name."""
        ...

    async def list_node_docs(self, *, labels: Mapping[str, str] | None = None) -> list[str]:
        """list_node_docs is list_nodes undecoded: each Node's stored wire JSON text (as to_wire_json wrote it;
        PostgreSQL gives back its jsonb's text, keys in its own order), ordered by name."""
        ...

    async def list_nodes_changed(self, known: Mapping[str, int]) -> NodeChanges:
        """list_nodes_changed returns the Nodes whose revision differs from known (name → revision), and the
        names in known that are gone; pass {} to get every Node. Every write of a Node gives it a new
        revision, never reused (not even by a Node deleted and created again), so a cache kept this way
        reads and decodes only what changed."""
        ...

    async def project_nodes_changed(
        self, known: Mapping[str, int], project: Callable[[Node], T]
    ) -> ProjectedChanges[T]:
        """project_nodes_changed is list_nodes_changed with each changed Node reduced by project as soon as it is
        decoded, so a caller that keeps a few fields never holds every changed Node at once."""
        ...

    async def update_node(self, name: str, mutate: NodeMutator) -> Node:
        """update_node applies mutate to the stored Node atomically and returns the result; raises NotFound."""
        ...

    async def delete_node(self, name: str) -> None:
        """delete_node removes the Node; raises NotFound."""
        ...

    async def create_project(self, project: Project) -> Project:
        """create_project stores a new Project; raises AlreadyExists."""
        ...

    async def get_project(self, name: str) -> Project:
        """get_project returns the Project; raises NotFound."""
        ...

    async def list_projects(
        self,
        *,
        phases: Sequence[ProjectPhase] | None = None,
        node_ref: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Project]:
        """list_projects returns Projects in any of phases, on node_ref, with all labels; ordered by name."""
        ...

    async def update_project(self, name: str, mutate: ProjectMutator) -> Project:
        """update_project applies mutate to the stored Project atomically; raises NotFound."""
        ...

    async def delete_project(self, name: str) -> None:
        """delete_project removes the Project; raises NotFound."""
        ...

    async def save_leases(self, leases: Mapping[str, datetime]) -> None:
        """save_leases persists name → last heartbeat time in one batch; unknown names are skipped."""
        ...

    async def load_leases(self) -> dict[str, datetime]:
        """load_leases returns every persisted node lease."""
        ...

    async def append_history(
        self,
        name: str,
        *,
        throughput: Sequence[ThroughputSample] = (),
        paths: Sequence[PathChange] = (),
        limit: int,
    ) -> None:
        """append_history adds entries to the Node's history, keeping only the newest limit of each list.

        One transaction; an unknown (e.g. just deleted) name is skipped. Deleting a Node deletes its history.
        """
        ...

    async def get_history(self, name: str) -> NodeHistory:
        """get_history returns the Node's kept throughput samples and path changes, oldest first; raises NotFound."""
        ...

    async def count_projects(self) -> dict[str, int]:
        """count_projects returns phase → number of Projects in it (phases without Projects left out); no document
        is decoded."""
        ...

    def add_observer(self, observer: WriteObserver) -> None:
        """add_observer has observer told of every Node and Project create and update this store instance makes."""
        ...

    async def append_events(self, events: Sequence[Event], *, limit: int) -> None:
        """append_events stores events and keeps only the newest limit of all events (one transaction)."""
        ...

    async def list_events(
        self, *, kind: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """list_events returns the kept events about kind/name (each filter optional), the newest `limit` of
        them (all when None), oldest first."""
        ...

    async def events_after(
        self, cursor: int | None, *, kind: str | None = None, name: str | None = None
    ) -> tuple[list[Event], int]:
        """events_after is the change feed of events: the events about kind/name stored after cursor, oldest first,
        and the cursor to pass next. With cursor None it returns no events and where the feed stands now. Each event
        comes in exactly one answer of a chain of cursors (unless trimmed before it is read), whatever the order
        in which concurrent writers commit."""
        ...

    async def append_transitions(self, transitions: Sequence[Transition]) -> None:
        """append_transitions stores transitions (their retention is prune_transitions', not the events')."""
        ...

    async def list_transitions(self, prefix: str, since: datetime) -> list[Transition]:
        """list_transitions returns, for every subject starting with prefix, its transitions at or after since and
        the last one before since (the state the window starts in); ordered by subject, then time."""
        ...

    async def prune_transitions(self, before: datetime) -> int:
        """prune_transitions deletes transitions older than before, except each subject's last one; returns how
        many it deleted."""
        ...

    async def try_acquire_leadership(self, holder: str, ttl_s: float, now: datetime) -> bool:
        """try_acquire_leadership takes or renews the controllers' leader lease until now + ttl_s for holder.

        Returns whether holder leads. Replicas on one database call it before every controller pass.
        """
        ...

    async def close(self) -> None:
        """close releases connections; the store is unusable afterwards."""
        ...


class NodeView(Generic[T]):
    """NodeView keeps one small projection per stored Node, current through `project_nodes_changed`.

    Each `refresh` reads the light name/revision projection and decodes only the Nodes written since the last
    one, so a periodic reader of a quiet 20k-Node fleet pays no decodes and keeps no pydantic Node.
    """

    def __init__(self, store: Store, project: Callable[[Node], T]) -> None:
        self._store = store
        self._project = project
        self._items: dict[str, T] = {}
        self._revisions: dict[str, int] = {}

    async def refresh(self) -> Mapping[str, T]:
        """refresh brings the projections up to date with the store and returns them (name → projection)."""
        changes = await self._store.project_nodes_changed(self._revisions, self._project)
        for name in changes.deleted:
            self._items.pop(name, None)
        self._items.update(changes.changed)
        self._revisions = changes.revisions
        return self._items
