"""What both backends store per kind (table, model, indexed columns), and the Store methods built on that."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from controlplane.api import Node, NodeHistory, PathChange, Project, ProjectPhase, ThroughputSample

from .base import NodeChanges, NodeMutator, ProjectedChanges, ProjectMutator, WriteObserver

M = TypeVar("M", Node, Project)

#: Documents decoded between two yields to the event loop (~20 ms of work) when many are read at once.
DECODE_CHUNK = 500
H = TypeVar("H", ThroughputSample, PathChange)
T = TypeVar("T")


def _as_is(node: Node) -> Node:
    return node


@dataclass(frozen=True, slots=True)
class Kind(Generic[M]):
    """Kind is one stored kind: its name in errors, its table, its model and its indexed columns."""

    # Name: the kind as errors name it ("Node").
    name: str
    # Table: the SQL table holding one row per object: name, the indexed columns, doc (wire JSON).
    table: str
    model: type[M]
    # Columns: the indexed columns besides name and doc, in the order values() returns them.
    columns: tuple[str, ...]
    values: Callable[[M], tuple[Any, ...]]
    # Revisioned: the table has a `revision` column that every write of a row sets anew (list_nodes_changed).
    revisioned: bool = False

    def load(self, doc: str | bytes | dict[str, Any]) -> M:
        """load rebuilds the object from its stored wire JSON (text or an already-decoded dict)."""
        if isinstance(doc, dict):
            return self.model.model_validate(doc)
        return self.model.model_validate_json(doc)

    def check_mutated(self, name: str, obj: M) -> M:
        """check_mutated returns obj if a mutator kept the name; renaming is a programming error."""
        if not isinstance(obj, self.model):
            raise TypeError(f"{self.name} mutator returned {type(obj).__name__}, not {self.model.__name__}")
        if obj.name != name:
            raise ValueError(f'{self.name} mutator renamed "{name}" to "{obj.name}"; names never change')
        return obj


NODES: Kind[Node] = Kind("Node", "nodes", Node, (), lambda node: (), revisioned=True)
PROJECTS: Kind[Project] = Kind(
    "Project",
    "projects",
    Project,
    ("phase", "node_ref"),
    lambda project: (project.status.phase.value, project.status.node_ref),
)


def prefix_end(prefix: str) -> str:
    """prefix_end is the smallest string above every string starting with prefix (for a range scan)."""
    return prefix + "\U0010ffff"


def require_utc(value: datetime, what: str) -> datetime:
    """require_utc returns value in UTC; a naive datetime is a caller bug (design §3.3: never a naive time)."""
    if value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class KindStore(ABC):
    """KindStore is the Node and Project half of Store, built on five row operations each backend writes once."""

    #: Told of every create and update (add_observer); none by default, and then a write costs nothing extra.
    _observers: tuple[WriteObserver, ...] = ()

    @abstractmethod
    async def _create(self, kind: Kind[M], obj: M) -> M:
        """_create inserts obj; raises AlreadyExists."""

    @abstractmethod
    async def _get(self, kind: Kind[M], name: str) -> M:
        """_get reads one object; raises NotFound."""

    @abstractmethod
    async def _list_docs(
        self,
        kind: Kind[M],
        *,
        labels: Mapping[str, str] | None,
        phases: Sequence[ProjectPhase] | None = None,
        node_ref: str | None = None,
    ) -> list[str]:
        """_list_docs reads the stored wire JSON of the objects matching every filter given (phases OR-ed),
        ordered by name."""

    async def _list(
        self,
        kind: Kind[M],
        *,
        labels: Mapping[str, str] | None,
        phases: Sequence[ProjectPhase] | None = None,
        node_ref: str | None = None,
    ) -> list[M]:
        """_list reads and decodes the objects matching every filter given (phases OR-ed), ordered by name."""
        return [kind.load(doc) for doc in await self._list_docs(kind, labels=labels, phases=phases, node_ref=node_ref)]

    @abstractmethod
    async def _revisions(self, kind: Kind[M]) -> dict[str, int]:
        """_revisions reads name → revision of every object (a light projection: no documents)."""

    @abstractmethod
    async def _get_revisioned(self, kind: Kind[M], names: Sequence[str] | None) -> list[tuple[str, int]]:
        """_get_revisioned reads the named objects' documents (None: all) with their revisions, undecoded;
        missing names are left out."""

    @abstractmethod
    async def _update(self, kind: Kind[M], name: str, mutate: Callable[[M], M]) -> M:
        """_update reads, mutates and writes one object in one transaction; raises NotFound."""

    @abstractmethod
    async def _delete(self, kind: Kind[M], name: str) -> None:
        """_delete removes one object; raises NotFound."""

    def add_observer(self, observer: WriteObserver) -> None:
        """add_observer has observer told of every Node and Project create and update made through this instance."""
        self._observers = (*self._observers, observer)

    async def _observed_create(self, kind: Kind[M], obj: M) -> M:
        created = await self._create(kind, obj)
        for observer in self._observers:
            await observer(None, created)
        return created

    async def _observed_update(self, kind: Kind[M], name: str, mutate: Callable[[M], M]) -> M:
        observers = self._observers
        if not observers:
            return await self._update(kind, name, mutate)
        seen: list[M] = []

        def spy(current: M) -> M:
            seen.append(current)  # the last call is the one stored (a backend may retry a transaction)
            return mutate(current)

        after = await self._update(kind, name, spy)
        for observer in observers:
            await observer(seen[-1] if seen else None, after)
        return after

    async def create_node(self, node: Node) -> Node:
        """create_node stores a new Node; raises AlreadyExists."""
        return await self._observed_create(NODES, node)

    async def get_node(self, name: str) -> Node:
        """get_node returns the Node; raises NotFound."""
        return await self._get(NODES, name)

    async def list_nodes(self, *, labels: Mapping[str, str] | None = None) -> list[Node]:
        """list_nodes returns Nodes whose labels include all of labels, ordered by name."""
        return await self._list(NODES, labels=labels)

    async def list_node_docs(self, *, labels: Mapping[str, str] | None = None) -> list[str]:
        """list_node_docs is list_nodes undecoded: each Node's stored wire JSON text, ordered by name."""
        return await self._list_docs(NODES, labels=labels)

    async def list_nodes_changed(self, known: Mapping[str, int]) -> NodeChanges:
        """list_nodes_changed returns the Nodes whose revision differs from known, and the known names now gone."""
        changes = await self.project_nodes_changed(known, _as_is)
        return NodeChanges(changed=list(changes.changed.values()), deleted=changes.deleted, revisions=changes.revisions)

    async def project_nodes_changed(
        self, known: Mapping[str, int], project: Callable[[Node], T]
    ) -> ProjectedChanges[T]:
        """project_nodes_changed is list_nodes_changed with each changed Node reduced by project as it is decoded,
        so no more than one chunk of full Nodes is alive at once.

        Two reads: every (name, revision), then the documents of the changed ones only. A Node written between
        the two comes back with its newer revision; one created in between waits for the next call.
        """
        revisions = await self._revisions(NODES)
        wanted = [name for name, revision in revisions.items() if known.get(name) != revision]
        # Fetching most of the table by name costs more than reading it all (the first call, a busy fleet).
        everything = len(wanted) * 2 > len(revisions)
        read = await self._get_revisioned(NODES, None if everything else wanted) if wanted else []
        found: dict[str, tuple[T, int]] = {}
        keep = set(wanted)
        for start in range(0, len(read), DECODE_CHUNK):
            if start:
                await asyncio.sleep(0)  # decoding 20k Nodes takes ~1 s: let requests in between chunks
            for doc, revision in read[start : start + DECODE_CHUNK]:
                node = NODES.load(doc)
                if node.name in keep:  # a read of everything also returns the unchanged Nodes
                    found[node.name] = (project(node), revision)
        del read
        for name in wanted:
            if name not in found:
                revisions.pop(name, None)  # deleted between the two reads
        changed: dict[str, T] = {}
        for name in sorted(wanted):
            if name in found:
                changed[name], revisions[name] = found[name]
        deleted = [name for name in known if name not in revisions]
        return ProjectedChanges(changed=changed, deleted=deleted, revisions=revisions)

    async def update_node(self, name: str, mutate: NodeMutator) -> Node:
        """update_node applies mutate to the stored Node in one transaction; raises NotFound."""
        return await self._observed_update(NODES, name, mutate)

    async def delete_node(self, name: str) -> None:
        """delete_node removes the Node and its lease; raises NotFound."""
        await self._delete(NODES, name)

    async def create_project(self, project: Project) -> Project:
        """create_project stores a new Project; raises AlreadyExists."""
        return await self._observed_create(PROJECTS, project)

    async def get_project(self, name: str) -> Project:
        """get_project returns the Project; raises NotFound."""
        return await self._get(PROJECTS, name)

    async def list_projects(
        self,
        *,
        phases: Sequence[ProjectPhase] | None = None,
        node_ref: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Project]:
        """list_projects returns Projects in any of phases, on node_ref, with all labels; ordered by name."""
        return await self._list(PROJECTS, labels=labels, phases=phases, node_ref=node_ref)

    async def update_project(self, name: str, mutate: ProjectMutator) -> Project:
        """update_project applies mutate to the stored Project in one transaction; raises NotFound."""
        return await self._observed_update(PROJECTS, name, mutate)

    async def delete_project(self, name: str) -> None:
        """delete_project removes the Project; raises NotFound."""
        await self._delete(PROJECTS, name)


#: The kinds of node_history rows: one list each in NodeHistory.
HISTORY_THROUGHPUT: Final = "throughput"
HISTORY_PATH: Final = "path"


def history_batches(
    throughput: Sequence[ThroughputSample], paths: Sequence[PathChange]
) -> list[tuple[str, Sequence[ThroughputSample] | Sequence[PathChange]]]:
    """history_batches pairs each list of new history entries with the kind its rows are stored under."""
    return [(HISTORY_THROUGHPUT, throughput), (HISTORY_PATH, paths)]


def history_of(name: str, rows: Iterable[tuple[str, str | dict[str, Any]]]) -> NodeHistory:
    """history_of rebuilds a NodeHistory from (kind, doc) rows in insertion order."""
    history = NodeHistory(name=name)
    for kind, doc in rows:
        if kind == HISTORY_THROUGHPUT:
            history.throughput.append(_load(ThroughputSample, doc))
        elif kind == HISTORY_PATH:
            history.paths.append(_load(PathChange, doc))
    return history


def _load(model: type[H], doc: str | dict[str, Any]) -> H:
    return model.model_validate(doc) if isinstance(doc, dict) else model.model_validate_json(doc)
