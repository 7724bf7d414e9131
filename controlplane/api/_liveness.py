"""Liveness and freshness: why a Node is not Ready, and the one rule for whether its reported facts are current.

Every accepted beat, an empty one included, reconfirms the facts the agent last sent (design §4 "Facts age"), so a
Node's facts were last confirmed at its last accepted heartbeat; a beat whose facts were rejected renews the lease
but confirms nothing, and the served status.factsConfirmedAt says when they were last confirmed. Once the control
plane has judged the Node silent (its lease older than the grace: the Ready condition says so with one of
`SILENT_REASONS`), or their confirmation is older than the grace, the facts are stale: the CLI, the fleet page and
/metrics show them as last known values with their age, never as current.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ._conditions import ConditionStatus, NodeConditionType, find_condition
from ._node import NodeStatus

# Reasons of the Ready condition (design §4).
AGENT_READY: Final = "AgentReady"
#: Silent past the grace and no fellow agent reached it since.
HEARTBEAT_TIMEOUT: Final = "HeartbeatTimeout"
#: Silent to the control plane, but a fellow agent reached its agent over the tailnet within the grace.
CONTROL_LINK_DOWN: Final = "ControlLinkDown"
#: Most Nodes went silent within one grace window: the control plane assumes the fault is its own.
CONTROL_PLANE_ISOLATED: Final = "ControlPlaneIsolated"
AGENT_SHUTDOWN: Final = "AgentShutdown"
NODE_STATUS_NEVER_UPDATED: Final = "NodeStatusNeverUpdated"

#: The Ready reasons that mean "the control plane has not heard from the Node within the grace".
SILENT_REASONS: Final = frozenset(
    {HEARTBEAT_TIMEOUT, CONTROL_LINK_DOWN, CONTROL_PLANE_ISOLATED, AGENT_SHUTDOWN, NODE_STATUS_NEVER_UPDATED}
)

#: The heartbeat response header naming the silent Nodes the control plane asks this agent to look at
#: (comma-separated Node names); agents that do not know it ignore it.
WITNESS_HEADER: Final = "Cara-Witness"


@dataclass(frozen=True, slots=True)
class Freshness:
    """Freshness is whether a Node's reported facts are current at one moment, and how old their confirmation is."""

    # Stale: the Node has not reconfirmed its facts within the grace (or never reported any).
    stale: bool
    # ConfirmedAt: the Node's last accepted beat (factsConfirmedAt); None when it never beat.
    confirmed_at: datetime | None
    # Age: now - confirmed_at (never negative); None when it never beat.
    age: timedelta | None
    # Reason: the Ready condition's reason when stale because the Node is silent, else None.
    reason: str | None


def silent_reason(status: NodeStatus) -> str | None:
    """silent_reason is the Ready condition's reason when it says the control plane has not heard from the Node."""
    ready = find_condition(status.conditions, NodeConditionType.READY)
    return None if ready is None else silent_ready_reason(ready.status, ready.reason)


def silent_ready_reason(ready_status: str | None, ready_reason: str | None) -> str | None:
    """silent_ready_reason is silent_reason from the Ready condition's status and reason (also read from a stored
    document, without the model)."""
    if ready_status == ConditionStatus.TRUE or ready_reason not in SILENT_REASONS:
        return None
    return ready_reason


def facts_stale(confirmed_at: datetime | None, silent: str | None, now: datetime, grace: timedelta | None) -> bool:
    """facts_stale is THE freshness rule: a Node's facts are stale at now when it never beat (confirmed_at None),
    when the control plane judged it silent (`silent`: the Ready reason from `silent_reason`, which the lifecycle
    controller writes once the lease is older than the grace), or, where the grace is known (the server), when the
    last confirmation is older than the grace already, before the controller's next pass says so."""
    if confirmed_at is None or silent is not None:
        return True
    return grace is not None and now - confirmed_at > grace


def fact_freshness(status: NodeStatus, now: datetime, grace: timedelta | None = None) -> Freshness:
    """fact_freshness applies `facts_stale` to a Node's status: its last confirmation is the served
    status.factsConfirmedAt, else (a stored Node) status.lastHeartbeat."""
    confirmed = status.facts_confirmed_at if status.facts_confirmed_at is not None else status.last_heartbeat
    age = max(now - confirmed, timedelta(0)) if confirmed is not None else None
    reason = silent_reason(status)
    stale = facts_stale(confirmed, reason, now, grace)
    return Freshness(stale=stale, confirmed_at=confirmed, age=age, reason=reason)


def format_age(age: timedelta | None) -> str:
    """format_age renders an age for people, kubectl style: `42s`, `6m`, `3h`, `2d`; `never` when None."""
    if age is None:
        return "never"
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
