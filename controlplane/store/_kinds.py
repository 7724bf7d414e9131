"""What both backends store per kind: the table, the model, and the indexed columns taken from an object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from controlplane.api import Node, Project

M = TypeVar("M", Node, Project)


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


NODES: Kind[Node] = Kind("Node", "nodes", Node, (), lambda node: ())
PROJECTS: Kind[Project] = Kind(
    "Project",
    "projects",
    Project,
    ("phase", "node_ref"),
    lambda project: (project.status.phase.value, project.status.node_ref),
)


def require_utc(value: datetime, what: str) -> datetime:
    """require_utc returns value in UTC; a naive datetime is a caller bug (design §3.3: never a naive time)."""
    if value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)
