"""Rescheduler passes: NotReady for 3 min frees projects, Terminating for 10 min is forced, Terminated deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from controlplane.api import Condition, ConditionStatus, Project
from controlplane.controllers import rescheduler as rs
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.rescheduler import Rescheduler
from controlplane.store.base import NotFound, Store
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import make_project


@pytest.fixture
def rescheduler(memory_store: Store, clock: FakeClock, config: ControllerConfig) -> Rescheduler:
    return Rescheduler(store=memory_store, now=clock.now, config=config)


def ready_condition(status: str, since: datetime) -> dict[str, str]:
    return {"type": "Ready", "status": status, "lastTransitionTime": since.isoformat()}


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        (None, None),
        ("True", None),
        ("False", 0),
        ("Unknown", 0),
    ],
    ids=["no-ready-condition", "ready", "not-ready", "never-beat"],
)
def test_not_ready_since(ready: str | None, expected: int | None, clock: FakeClock) -> None:
    conditions = [ready_condition(ready, clock.now())] if ready else []
    node = make_node("n", status={"conditions": conditions})
    assert rs.not_ready_since(node) == (None if expected is None else clock.now())


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(None, False), (179, False), (180, False), (180.001, True), (181, True)],
    ids=["unset", "2m59s", "exactly-3m", "just-past", "3m01s"],
)
def test_overdue(elapsed: float | None, expected: bool, clock: FakeClock) -> None:
    since = None if elapsed is None else clock.now() - timedelta(seconds=elapsed)
    assert rs.overdue(since, clock.now(), timedelta(minutes=3)) is expected


def test_terminating_since_prefers_the_condition(clock: FakeClock) -> None:
    project = make_project("p", phase="Terminating")
    project.metadata.updated_at = clock.now()
    assert rs.terminating_since(project) == clock.now(), "no condition: updatedAt"
    started = clock.now() - timedelta(minutes=1)
    project.status.conditions = [
        Condition(type="Terminating", status=ConditionStatus.TRUE, last_transition_time=started)
    ]
    assert rs.terminating_since(project) == started


async def phase_and_node(store: Store, name: str) -> tuple[str, str | None]:
    project = await store.get_project(name)
    return project.status.phase.value, project.status.node_ref


async def test_projects_of_a_not_ready_node_go_back_to_pending_after_3_minutes(
    memory_store: Store, rescheduler: Rescheduler, clock: FakeClock
) -> None:
    since = clock.now()
    await memory_store.create_node(
        make_node("dead", status={"state": "NotReady", "conditions": [ready_condition("False", since)]})
    )
    await memory_store.create_node(
        make_node("live", status={"state": "Ready", "conditions": [ready_condition("True", since)]})
    )
    await memory_store.create_project(make_project("on-dead", phase="Running", nodeRef="dead"))
    await memory_store.create_project(make_project("on-live", phase="Running", nodeRef="live"))
    await memory_store.create_project(make_project("leaving", phase="Terminating", nodeRef="dead"))
    clock.step(179)
    assert await rescheduler.sync_once() == (0, 0, 0)
    assert await phase_and_node(memory_store, "on-dead") == ("Running", "dead")
    clock.step(2)
    assert await rescheduler.sync_once() == (1, 0, 0)
    project = await memory_store.get_project("on-dead")
    assert (project.status.phase, project.status.node_ref, project.status.conditions) == (
        "Pending",
        None,
        [
            Condition(
                type="Scheduled",
                status=ConditionStatus.FALSE,
                reason="NodeNotReady",
                message="node dead has been NotReady for more than 3m0s",
                last_heartbeat_time=clock.now(),
                last_transition_time=clock.now(),
            )
        ],
    )
    assert await phase_and_node(memory_store, "on-live") == ("Running", "live")
    assert await phase_and_node(memory_store, "leaving") == ("Terminating", "dead")


def terminating(name: str, since: datetime) -> Project:
    project = make_project(name, phase="Terminating", nodeRef="n")
    project.status.conditions = [
        Condition(
            type="Terminating",
            status=ConditionStatus.TRUE,
            reason="DeleteRequested",
            last_transition_time=since,
            last_heartbeat_time=since,
        )
    ]
    return project


async def test_terminating_forced_after_10_minutes_then_deleted(
    memory_store: Store, rescheduler: Rescheduler, clock: FakeClock
) -> None:
    await memory_store.create_project(terminating("stuck", clock.now()))
    await memory_store.create_project(terminating("recent", clock.now() + timedelta(minutes=5)))
    clock.step(600)
    assert await rescheduler.sync_once() == (0, 0, 0), "exactly 10 minutes is not yet more than 10"
    clock.step(1)
    assert await rescheduler.sync_once() == (0, 1, 0)
    stuck = await memory_store.get_project("stuck")
    assert stuck.status.phase == "Terminated"
    assert stuck.status.conditions == [
        Condition(
            type="Terminating",
            status=ConditionStatus.FALSE,
            reason="TerminationTimeout",
            message="forced to Terminated: still Terminating after 10m0s",
            last_heartbeat_time=clock.now(),
            last_transition_time=clock.now(),
        )
    ]
    assert await phase_and_node(memory_store, "recent") == ("Terminating", "n")
    clock.step(1)
    assert await rescheduler.sync_once() == (0, 0, 1)
    with pytest.raises(NotFound):
        await memory_store.get_project("stuck")
    assert [p.name for p in await memory_store.list_projects()] == ["recent"]


async def test_terminated_projects_are_deleted(memory_store: Store, rescheduler: Rescheduler) -> None:
    await memory_store.create_project(make_project("done", phase="Terminated"))
    await memory_store.create_project(make_project("failed", phase="Failed"))
    assert await rescheduler.sync_once() == (0, 0, 1)
    assert [p.name for p in await memory_store.list_projects()] == ["failed"]
