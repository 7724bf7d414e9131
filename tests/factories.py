"""The Node and Project builders the tests share: one node factory for every test that needs a Node, as a model
(`node`) or as the API's JSON (`node_wire`: a request body, a canned server answer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from controlplane.api import (
    Condition,
    Node,
    NodeState,
    ObjectMeta,
    Project,
    ProjectPhase,
    ProjectSpec,
    ProjectStatus,
    ServiceDef,
)

Obj = TypeVar("Obj", Node, Project)


def node(
    name: str = "edge1",
    *,
    labels: dict[str, str] | None = None,
    created: datetime | None = None,
    state: NodeState | None = None,
    conditions: Sequence[Condition] = (),
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> Node:
    """node builds a Node with the given name (edge1 when not said), labels and createdAt, spec fields (wire
    names) and status: the wire-form `status` mapping, with `state` and `conditions` set over it when given."""
    wire_status = dict(status or {})
    if state is not None:
        wire_status["state"] = state
    if conditions:
        wire_status["conditions"] = [condition.to_wire() for condition in conditions]
    metadata = ObjectMeta(name=name, labels=labels, created_at=created)
    return Node.model_validate({"metadata": metadata, "spec": spec, "status": wire_status})


def node_wire(name: str = "edge1", **fields: Any) -> dict[str, Any]:
    """node_wire is `node(name, **fields)` as the API's JSON (apiVersion, kind, metadata, spec, status), with
    spec.hostname the name unless given, as an agent registers."""
    fields.setdefault("hostname", name)
    return node(name, **fields).to_wire()


def project(
    name: str,
    *,
    phase: ProjectPhase = ProjectPhase.PENDING,
    node_ref: str | None = None,
    labels: dict[str, str] | None = None,
) -> Project:
    """project builds a one-service Project in phase, bound to node_ref."""
    return Project(
        metadata=ObjectMeta(name=name, labels=labels),
        spec=ProjectSpec(services=[ServiceDef(name="web", image="nginx:1.27")]),
        status=ProjectStatus(phase=phase, node_ref=node_ref),
    )


def bump(obj: Obj) -> Obj:
    """bump adds one to the integer label "count" of obj: a read-modify-write that loses updates if not atomic."""
    labels = dict(obj.metadata.labels or {})
    labels["count"] = str(int(labels.get("count", "0")) + 1)
    obj.metadata.labels = labels
    return obj
