"""Conditions: the observed aspects of an object's state, and the one rule for upserting them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import Field, StrictStr

from ._meta import Timestamp, WireModel


class ConditionStatus(StrEnum):
    """ConditionStatus is whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class NodeConditionType(StrEnum):
    """NodeConditionType names the Node conditions Caravanserai knows (design §4)."""

    READY = "Ready"
    MEMORY_PRESSURE = "MemoryPressure"
    DISK_PRESSURE = "DiskPressure"
    PATH_RELAYED = "PathRelayed"
    TAILNET_OFFLINE = "TailnetOffline"
    # Reported by the agent when its tailscaled is not Running; blocks Ready.
    NETWORK_UNAVAILABLE = "NetworkUnavailable"


#: The Node condition types the control plane computes, in the order it judges them; an agent's value for them
#: is ignored.
CONTROL_PLANE_CONDITIONS: Final = (
    NodeConditionType.READY,
    NodeConditionType.MEMORY_PRESSURE,
    NodeConditionType.DISK_PRESSURE,
    NodeConditionType.PATH_RELAYED,
    NodeConditionType.TAILNET_OFFLINE,
)


class ProjectConditionType(StrEnum):
    """ProjectConditionType names the Project conditions Caravanserai sets."""

    # Scheduled: owned by the scheduler; draining and rescheduling set it False when they unbind.
    SCHEDULED = "Scheduled"
    # Phase: the phase a node last reported, with its reason and message.
    PHASE = "Phase"


class Condition(WireModel):
    """Condition is one observed aspect of an object, upserted by type."""

    # Type: what is observed, e.g. "Ready", "MemoryPressure", "PathRelayed", "Scheduled".
    type: StrictStr
    # Status: True, False or Unknown.
    status: ConditionStatus
    # LastHeartbeatTime: when this condition was last sampled; unset means never.
    last_heartbeat_time: Timestamp = Field(default=None, alias="lastHeartbeatTime")
    # LastTransitionTime: when status last changed; unset means never.
    last_transition_time: Timestamp = Field(default=None, alias="lastTransitionTime")
    # Reason: one CamelCase word for why, e.g. "HeartbeatTimeout"; empty when not given.
    reason: StrictStr | None = None
    # Message: a sentence for people; empty when not given.
    message: StrictStr | None = None


def find_condition(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    """find_condition returns the condition of that type, or None."""
    for condition in conditions or ():
        if condition.type == type_:
            return condition
    return None


def set_condition(
    conditions: Sequence[Condition] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
) -> list[Condition]:
    """set_condition returns conditions with type_ upserted.

    lastHeartbeatTime becomes now; lastTransitionTime moves to now only when status changes
    (or the condition is new). The input is not modified; order is kept, new types go last.
    """
    result: list[Condition] = []
    found = False
    for condition in conditions or ():
        if condition.type != type_:
            result.append(condition)
            continue
        found = True
        transitioned = condition.status != status or condition.last_transition_time is None
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_heartbeat_time=now,
                last_transition_time=now if transitioned else condition.last_transition_time,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_heartbeat_time=now,
                last_transition_time=now,
            )
        )
    return result
