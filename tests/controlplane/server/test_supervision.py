"""Issue 11 item 2, server side: a leader whose controller keeps raising stops renewing its lease, its loop is
logged, restarted, counted in /metrics and named by /healthz; a loop that cannot be restarted ends the process
non-zero."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from controlplane.api import Project
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import ControllersStalled
from controlplane.server.app import create_app
from controlplane.server.identity import DevIdentity
from controlplane.server.main import ReplicaSettings, controllers_loop, supervise_server
from controlplane.server.settings import Settings
from controlplane.store.base import Store
from controlplane.supervision import EXIT_LOOP_FAILED, Supervisor
from tests.conftest import API_URL, FakeClock

PASS_BOUND = timedelta(milliseconds=400)
#: Every controller passes every 0.1 s, well inside the pass bound.
FAST = ControllerConfig(
    lifecycle_period=timedelta(milliseconds=100),
    draining_period=timedelta(milliseconds=100),
    scheduler_period=timedelta(milliseconds=100),
    rescheduler_period=timedelta(milliseconds=100),
)
REPLICA = ReplicaSettings(replica_id="r1", leader_ttl=timedelta(milliseconds=300), replicated=False)


class BrokenScheduling:
    """BrokenScheduling is a store whose project listing raises (a bug in the scheduler's reads, say): every pass
    of the controllers that list Projects raises, while the lease renewals still succeed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.renewals = 0

    async def list_projects(self, **_: Any) -> Sequence[Project]:
        raise ValueError("unexpected phase 'Sideways' in a stored project")

    async def try_acquire_leadership(self, holder: str, ttl_s: float, now: datetime) -> bool:
        self.renewals += 1
        won: bool = await self.store.try_acquire_leadership(holder, ttl_s, now)
        return won

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_a_raising_controller_stops_the_leader_renewing_and_is_restarted_counted_and_named(
    memory_store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="cara.supervision")
    broken = BrokenScheduling(memory_store)
    supervisor = Supervisor(  # as main.py wires it: restarts counted in the app's /metrics, health from here
        restart_base=1.0, restart_cap=1.0, on_restart=lambda name: context.metrics.loop_restarts.labels(name).inc()
    )
    app = create_app(
        store=broken,  # type: ignore[arg-type]
        now=clock.now,
        identity=DevIdentity(),
        settings=Settings(),
        health=supervisor.problems,
    )
    context = app.state.context
    supervise_server(
        context,
        supervisor,
        http=None,
        controllers=controllers_loop(context, REPLICA, pass_bound=PASS_BOUND, config=FAST),
        pass_bound=PASS_BOUND,
        renew_every=REPLICA.renew_every,
        leader_ttl=REPLICA.leader_ttl,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API_URL) as api:
        assert (await api.get("/api/healthz")).text == "OK"
        async with asyncio.timeout(10):
            while True:
                answer = await api.get("/api/healthz")
                if answer.status_code == 503:
                    break
                await asyncio.sleep(0.02)
        renewals = broken.renewals
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert "controllers" in problem["detail"], problem
        assert any(e.startswith("controllers: restarting") and "scheduler" in e for e in problem["errors"]), problem
        assert (await api.get("/healthz")).status_code == 503, "the same answer on /healthz"
        metrics = (await api.get("/metrics")).text
        assert 'cara_loop_restarts_total{loop="controllers"} 1.0' in metrics
        assert "cara_leader 0.0" in metrics, "a stalled leader says it no longer leads"
        await asyncio.sleep(0.5)  # while the loop waits to restart, the leader lease is not renewed
        assert broken.renewals == renewals
    logged = [r for r in caplog.records if r.exc_info and "controllers" in r.getMessage()]
    assert logged and isinstance(logged[0].exc_info[1], ControllersStalled)  # type: ignore[index]
    stop.set()
    assert await asyncio.wait_for(running, 5) == 0


async def test_a_controller_loop_that_cannot_be_restarted_ends_the_server_non_zero(
    memory_store: Store, clock: FakeClock
) -> None:
    broken = BrokenScheduling(memory_store)
    app = create_app(store=broken, now=clock.now, identity=DevIdentity(), settings=Settings())  # type: ignore[arg-type]
    supervisor = Supervisor(restart_base=0.01, max_failures=2, window=60)
    supervise_server(
        app.state.context,
        supervisor,
        http=None,
        controllers=controllers_loop(app.state.context, REPLICA, pass_bound=PASS_BOUND, config=FAST),
        pass_bound=PASS_BOUND,
        renew_every=REPLICA.renew_every,
        leader_ttl=REPLICA.leader_ttl,
    )
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 10) == EXIT_LOOP_FAILED
    assert supervisor.fatal == "controllers"


async def test_a_healthy_leader_keeps_answering_ok(memory_store: Store, clock: FakeClock) -> None:
    supervisor = Supervisor()
    app = create_app(
        store=memory_store, now=clock.now, identity=DevIdentity(), settings=Settings(), health=supervisor.problems
    )
    supervise_server(
        app.state.context,
        supervisor,
        http=None,
        controllers=controllers_loop(app.state.context, REPLICA, pass_bound=PASS_BOUND, config=FAST),
        pass_bound=PASS_BOUND,
        renew_every=REPLICA.renew_every,
        leader_ttl=REPLICA.leader_ttl,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    await asyncio.sleep(1.5)  # several pass bounds
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API_URL) as api:
        answer = await api.get("/api/healthz")
        assert answer.status_code == 200 and answer.text == "OK", answer.text
    stop.set()
    assert await asyncio.wait_for(running, 5) == 0
