"""Draining passes: a Draining node's Scheduled and Running projects go back to Pending; nothing else moves."""

from __future__ import annotations

import pytest

from controlplane.api import Condition, ConditionStatus
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.draining import DrainingController
from controlplane.store.base import Store
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import make_project


@pytest.fixture
def draining(memory_store: Store, clock: FakeClock, config: ControllerConfig) -> DrainingController:
    return DrainingController(store=memory_store, now=clock.now, config=config)


async def test_draining_node_projects_back_to_pending(
    memory_store: Store, draining: DrainingController, clock: FakeClock
) -> None:
    await memory_store.create_node(make_node("drained", unschedulable=True, status={"state": "Draining"}))
    await memory_store.create_node(make_node("fine", status={"state": "Ready"}))
    await memory_store.create_project(make_project("running", phase="Running", nodeRef="drained"))
    await memory_store.create_project(make_project("scheduled", phase="Scheduled", nodeRef="drained"))
    await memory_store.create_project(make_project("leaving", phase="Terminating", nodeRef="drained"))
    await memory_store.create_project(make_project("elsewhere", phase="Running", nodeRef="fine"))
    clock.step(7)
    assert await draining.sync_once() == 2
    now = clock.now()
    expected = Condition(
        type="Scheduled",
        status=ConditionStatus.FALSE,
        reason="NodeDraining",
        message="node drained is draining",
        last_heartbeat_time=now,
        last_transition_time=now,
    )
    for name in ("running", "scheduled"):
        project = await memory_store.get_project(name)
        assert (project.status.phase, project.status.node_ref, project.status.conditions) == (
            "Pending",
            None,
            [expected],
        )
        assert project.metadata.updated_at == now
    assert (await memory_store.get_project("leaving")).status.phase == "Terminating"
    assert (await memory_store.get_project("elsewhere")).status.node_ref == "fine"
    assert await draining.sync_once() == 0
    node = await memory_store.get_node("drained")
    assert node.status.state == "Draining", "the controller never changes the node itself"


async def test_node_without_draining_is_left_alone(memory_store: Store, draining: DrainingController) -> None:
    await memory_store.create_node(make_node("cordoned", unschedulable=True, status={"state": "Ready"}))
    await memory_store.create_project(make_project("running", phase="Running", nodeRef="cordoned"))
    assert await draining.sync_once() == 0
    assert (await memory_store.get_project("running")).status.node_ref == "cordoned"
