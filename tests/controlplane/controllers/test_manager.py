"""The loops and the composition root: config checks, gated passes, errors that do not stop a loop."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from controlplane.api import NodeState
from controlplane.controllers import ControllerConfig, run_controllers
from controlplane.controllers._loop import run_every
from controlplane.controllers.config import format_duration
from controlplane.store.base import NotFound, Store
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock
from tests.factories import node as make_node

from .conftest import make_project


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"grace": timedelta(seconds=5)}, "grace (0:00:05) must be at least heartbeat_interval (0:00:10)"),
        ({"lifecycle_period": timedelta(0)}, "lifecycle_period must be positive"),
        ({"terminating_timeout": timedelta(seconds=-1)}, "terminating_timeout must be positive"),
    ],
    ids=["grace-below-heartbeat", "zero-period", "negative-timeout"],
)
def test_config_rejects_contradictions(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ControllerConfig(**fields)


def test_config_defaults_are_design_4() -> None:
    config = ControllerConfig()
    assert (config.heartbeat_interval, config.grace) == (timedelta(seconds=10), timedelta(seconds=40))
    assert (config.reschedule_after, config.terminating_timeout) == (timedelta(minutes=3), timedelta(minutes=10))
    assert config.lifecycle_period <= timedelta(seconds=1), "NotReady must be seen within grace + 1 s"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(seconds=40), "40s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(minutes=3), "3m0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1, seconds=1), "1h0m1s"),
    ],
    ids=["seconds", "fraction", "minutes", "mixed", "hours"],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


class CountingGate:
    """CountingGate answers `leader` and sets stop once every controller has asked `calls_before_stop` times."""

    def __init__(self, stop: asyncio.Event, *, leader: bool, calls_before_stop: int) -> None:
        self.stop, self.leader, self.left, self.calls = stop, leader, calls_before_stop, 0

    async def __call__(self) -> bool:
        self.calls += 1
        if self.calls >= self.left:
            self.stop.set()
        return self.leader


async def seed(store: Store, leases: LeaseTable, clock: FakeClock) -> None:
    await store.create_node(make_node("edge1", status={"state": "NotReady"}))
    leases.renew("edge1", clock.now())
    await store.create_project(make_project("done", phase="Terminated"))


async def test_run_controllers_runs_every_controller_when_leader(
    memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    await seed(memory_store, leases, clock)
    stop = asyncio.Event()
    gate = CountingGate(stop, leader=True, calls_before_stop=4)
    await run_controllers(
        store=memory_store, leases=leases, now=clock.now, config=ControllerConfig(), stop=stop, is_leader=gate
    )
    assert gate.calls == 4, "one gated pass per controller"
    assert (await memory_store.get_node("edge1")).status.state == NodeState.READY
    with pytest.raises(NotFound):
        await memory_store.get_project("done")


async def test_run_controllers_skips_passes_when_not_leader(
    memory_store: Store, leases: LeaseTable, clock: FakeClock
) -> None:
    await seed(memory_store, leases, clock)
    stop = asyncio.Event()
    gate = CountingGate(stop, leader=False, calls_before_stop=4)
    await run_controllers(
        store=memory_store, leases=leases, now=clock.now, config=ControllerConfig(), stop=stop, is_leader=gate
    )
    assert gate.calls == 4
    assert (await memory_store.get_node("edge1")).status.state == NodeState.NOT_READY
    assert [p.name for p in await memory_store.list_projects()] == ["done"]


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    passes: list[int] = []

    async def sync_once() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("store hiccup")
        stop.set()

    with caplog.at_level(logging.ERROR, logger="controlplane.controllers"):
        await run_every("test", sync_once, timedelta(microseconds=1), stop)
    assert passes == [0, 1]
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [("test: pass failed", True)]


async def test_run_returns_at_once_when_already_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    passes: list[None] = []

    async def sync_once() -> None:
        passes.append(None)

    await run_every("test", sync_once, timedelta(seconds=1), stop)
    assert passes == []


async def test_wake_starts_the_next_pass_at_once_even_when_set_during_a_pass() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    passes: list[int] = []

    async def sync_once() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            wake.set()  # during the pass: the pass it asks for is still to come
        else:
            stop.set()

    # An hour's period: only the wake can bring the second pass within the test's bound.
    await asyncio.wait_for(run_every("test", sync_once, timedelta(hours=1), stop, wake=wake), timeout=30)
    assert passes == [0, 1]
    assert not wake.is_set()
