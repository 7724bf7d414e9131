"""Project status edits shared by the controllers: one way to move a phase, a nodeRef and a condition."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Final

from controlplane.api import (
    EVICTABLE_PHASES,
    ConditionStatus,
    Project,
    ProjectConditionType,
    ProjectPhase,
    find_condition,
    set_condition,
)
from controlplane.store.base import Conflict, NotFound, Store

# The Project condition the scheduler owns; draining and rescheduling set it False when they unbind.
SCHEDULED: Final = ProjectConditionType.SCHEDULED


def has_condition(project: Project, type_: str, status: ConditionStatus, reason: str, message: str) -> bool:
    """has_condition reports whether project already carries that condition with that status, reason and message."""
    found = find_condition(project.status.conditions, type_)
    return found is not None and (found.status, found.reason, found.message) == (status, reason, message)


def require_phase(project: Project, phases: Collection[ProjectPhase]) -> None:
    """require_phase raises Conflict unless project is in one of phases (used inside store mutators)."""
    if project.status.phase not in phases:
        raise Conflict(f"project {project.name} is {project.status.phase}, not {'/'.join(phases)}")


def with_condition(
    project: Project,
    now: datetime,
    *,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    phase: ProjectPhase | None = None,
    node_ref: str | None = None,
    unbind: bool = False,
) -> Project:
    """with_condition returns project with the condition upserted, phase/nodeRef set if given, and
    updatedAt stamped; unbind clears nodeRef."""
    update: dict[str, object] = {
        "conditions": set_condition(project.status.conditions, type_, status, reason, message, now)
    }
    if phase is not None:
        update["phase"] = phase
    if node_ref is not None:
        update["node_ref"] = node_ref
    if unbind:
        update["node_ref"] = None
    status_ = project.status.model_copy(update=update)
    metadata = project.metadata.model_copy(update={"updated_at": now})
    return project.model_copy(update={"status": status_, "metadata": metadata})


def return_to_pending(project: Project, now: datetime, *, reason: str, message: str) -> Project:
    """return_to_pending unbinds project: phase Pending, no nodeRef, Scheduled False with reason."""
    return with_condition(
        project,
        now,
        type_=SCHEDULED,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        phase=ProjectPhase.PENDING,
        unbind=True,
    )


async def evict(
    store: Store, name: str, node: str, now: datetime, edit: Callable[[Project, datetime], Project]
) -> bool:
    """evict applies edit to the Project if it is still Scheduled or Running on node; False when it is not
    (moved, finished or deleted since the list: the next pass sees the truth)."""

    def mutate(current: Project) -> Project:
        require_phase(current, EVICTABLE_PHASES)
        if current.status.node_ref != node:
            raise Conflict(f"project {name} is on {current.status.node_ref}, not {node}")
        return edit(current, now)

    try:
        await store.update_project(name, mutate)
    except (Conflict, NotFound):
        return False
    return True
