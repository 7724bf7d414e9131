"""The builders the tests share: one node factory for every test that needs a Node, as a model (`node`) or as
the API's JSON (`node_wire`: a request body, a canned server answer); Projects; an agent's live status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from agent.collectors.tailnet import TailnetView, network_condition
from agent.settings import Reservation
from agent.status import AgentStatus
from agent.throughput import Measurement
from controlplane.api import (
    Condition,
    ConditionStatus,
    NetworkMode,
    Node,
    NodeInfo,
    NodeNetworkStatus,
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


def agent_status(now: datetime, *, ip: str | None = None) -> AgentStatus:
    """agent_status is an agent's live status at `now` with a tailnet view (tailscaled Running, at `ip`), a DERP
    path and a throughput measurement: what /metrics and the status page read (no collectors behind it)."""
    return AgentStatus(
        tailnet=None,  # type: ignore[arg-type]
        resources=None,  # type: ignore[arg-type]
        info=NodeInfo(),
        data_dir=Path("/"),
        reserved=Reservation(),
        now=lambda: now,
        measurement=Measurement(94.1e6, 41e6, 1234, now),
        last_view=TailnetView(
            None, network_condition(ConditionStatus.FALSE, "TailscaledRunning", "ok", now), ip, "Running"
        ),
        last_network=NodeNetworkStatus(mode=NetworkMode.DERP, latency_ms=3.5),
    )
