"""The Node and Project builders the tests share: one node factory for every test that needs a Node model."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from controlplane.api import Node, ObjectMeta, Project, ProjectPhase, ProjectSpec, ProjectStatus, ServiceDef

Obj = TypeVar("Obj", Node, Project)


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    created: datetime | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> Node:
    """node builds a Node with the given name, labels and createdAt, spec fields and wire-form status."""
    metadata = ObjectMeta(name=name, labels=labels, created_at=created)
    return Node.model_validate({"metadata": metadata, "spec": spec, "status": status or {}})


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
