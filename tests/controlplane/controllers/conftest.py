"""Fixtures of the controller tests: one config, stored nodes and projects, and a compact view of a Node."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from controlplane.api import Node, Project
from controlplane.controllers.config import ControllerConfig
from controlplane.store.base import Store

#: One condition as tests compare it: (status, reason, lastTransitionTime).
Seen = tuple[str, str | None, datetime | None]


@pytest.fixture
def config() -> ControllerConfig:
    return ControllerConfig()


def make_project(
    name: str, *, cpu: str | None = None, memory: str | None = None, created: datetime | None = None, **status: Any
) -> Project:
    resources = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return Project.model_validate(
        {
            "metadata": {"name": name, "createdAt": created},
            "spec": {"services": [{"name": "web", "image": "nginx"}], "resources": resources},
            "status": status,
        }
    )


async def put_status(store: Store, name: str, **fields: Any) -> Node:
    """put_status stands in for the server's full heartbeat: it replaces the given status fields."""

    def merge(node: Node) -> Node:
        wire = node.to_wire()
        wire["status"].update(fields)
        return Node.model_validate(wire)

    return await store.update_node(name, merge)


def conditions_of(node: Node) -> dict[str, Seen]:
    return {c.type: (c.status.value, c.reason, c.last_transition_time) for c in node.status.conditions or ()}
