"""Issue 11 item 2, agent side: a loop that raises is logged, restarted, counted and named by /healthz; one that
cannot be restarted ends the agent non-zero; an unreachable control plane keeps it healthy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.collectors.resources import Usage
from agent.main import run_agent
from agent.settings import Settings
from controlplane.supervision import Supervisor
from mesh import LocalClient
from tests.conftest import FakeClock
from tests.helpers import free_port
from tests.mesh.captured import FakeDaemon


class Machine:
    """Machine is a ResourceSource whose memory reading raises `error` for its first `failures` calls."""

    def __init__(self, error: Exception | None = None, failures: int = 0) -> None:
        self.error, self.failures = error, failures

    def cpu_count(self) -> int:
        return 2

    def memory(self) -> Usage:
        if self.error is not None and self.failures > 0:
            self.failures -= 1
            raise self.error
        return Usage(4 * 2**30, 2 * 2**30)

    def disk(self, path: Path) -> Usage:
        return Usage(100 * 2**30, 50 * 2**30)


@dataclass
class Running:
    """Running is an agent started by the `agent` fixture: its stop event, its task and its own HTTP port."""

    stop: asyncio.Event
    task: asyncio.Task[int]
    port: int

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(f"http://127.0.0.1:{self.port}{path}")

    async def until(self, path: str, check: Callable[[httpx.Response], bool], within: float = 10.0) -> httpx.Response:
        async with asyncio.timeout(within):
            while True:
                try:
                    answer = await self.get(path)
                    if check(answer):
                        return answer
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.02)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def agent(api_transport: httpx.ASGITransport, clock: FakeClock) -> AsyncIterator[Start]:
    started: list[Running] = []

    class ToApp(httpx.AsyncBaseTransport):  # the agent dials 100.64.0.4; the app answers in-process
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_with(scheme="http", host="cara-server.test", port=None)
            return await api_transport.handle_async_request(request)

    async def start(
        *,
        resources: Machine,
        supervisor: Supervisor,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Running:
        daemon = FakeDaemon(
            {
                "GET status": (200, "edge1-status-direct.json"),
                "POST ping": (200, "edge1-ping-edge2-direct.json"),
                # /metrics asks who the caller is: the captured answer names the operator `ops`, a metrics caller.
                "GET whois": (200, "edge1-whois-operator.json"),
            }
        )
        port = free_port()
        settings = Settings(
            node_name="edge1",
            hostname="edge1",
            server_url="http://100.64.0.4:8080",
            heartbeat_interval=0.05,
            status_interval=60,
            listen_address="127.0.0.1",
            listen_port=port,
            throughput_backend="off",
            peer_probes_per_round=0,
            metrics_callers=("ops",),
            runtime_socket="",
            ingress_port=0,  # not the default 8081 on loopback: parallel test runs share it
        )
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_agent(
                settings,
                stop=stop,
                local=LocalClient("/x.sock", transport=httpx.MockTransport(daemon)),
                transport=transport or ToApp(),
                resources=resources,
                now=clock.now,
                sleep=sleep,
                supervisor=supervisor,
            )
        )
        running = Running(stop, task, port)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop.set()
        await asyncio.wait_for(asyncio.gather(running.task, return_exceptions=True), 10)


def restarts(metrics: str, loop: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f'cara_agent_loop_restarts_total{{loop="{loop}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_raising_collector_is_logged_restarted_counted_and_named_by_healthz(
    agent: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="cara.supervision")
    # The first two readings raise (a PermissionError is no client error: it used to end the beat task for good).
    machine = Machine(PermissionError(13, "Permission denied", "/proc/meminfo"), failures=2)
    running = await agent(resources=machine, supervisor=Supervisor(restart_base=0.5, restart_cap=0.5))

    sick = await running.until("/healthz", lambda r: r.status_code == 503)
    doc = sick.json()
    assert doc["status"] == "unhealthy" and "heartbeat" in doc["loops"], doc
    assert "PermissionError" in doc["loops"]["heartbeat"]

    logged = [r for r in caplog.records if r.exc_info and "heartbeat" in r.getMessage()]
    assert logged and isinstance(logged[0].exc_info[1], PermissionError)  # type: ignore[index]

    await running.until("/metrics", lambda r: restarts(r.text, "heartbeat") >= 2)
    healthy = await running.until("/healthz", lambda r: r.status_code == 200)
    assert healthy.json()["status"] == "ok" and healthy.json()["loops"] == {}
    running.stop.set()
    assert await asyncio.wait_for(running.task, 5) == 0


async def test_a_loop_that_cannot_be_restarted_ends_the_agent_non_zero(agent: Start) -> None:
    machine = Machine(ValueError("could not parse /proc/meminfo"), failures=10**6)
    running = await agent(resources=machine, supervisor=Supervisor(restart_base=0.01, max_failures=3, window=60))
    assert await asyncio.wait_for(running.task, 10) != 0


async def test_an_unreachable_control_plane_keeps_the_agent_healthy(agent: Start) -> None:
    class Unreachable(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

    running = await agent(resources=Machine(), supervisor=Supervisor(), transport=Unreachable())
    answer = await running.until("/healthz", lambda r: r.json()["lastError"] is not None)
    assert answer.status_code == 200 and answer.json()["serverReachable"] is False
    await asyncio.sleep(1.0)  # the agent backs off (seconds) while the server is away: no stall, no restart
    answer = await running.get("/healthz")
    assert answer.status_code == 200, answer.text
    assert restarts((await running.get("/metrics")).text, "heartbeat") == 0


async def test_a_beat_loop_that_stops_attempting_is_named_stalled(agent: Start) -> None:
    now = [1000.0]
    supervisor = Supervisor(clock=lambda: now[0])
    hung = asyncio.Event()

    async def hang(seconds: float) -> Any:  # the wait between beats never ends: no further attempt
        await hung.wait()

    running = await agent(resources=Machine(), supervisor=supervisor, sleep=hang)
    await running.until("/healthz", lambda r: r.json()["registered"] and r.json()["lastHeartbeat"] is not None)
    assert (await running.get("/healthz")).status_code == 200
    now[0] += 30.0  # far past one interval (0.05 s) plus the beat's own bound (5 s)
    answer = await running.get("/healthz")
    assert answer.status_code == 503 and "no progress" in answer.json()["loops"]["heartbeat"], answer.text
    hung.set()
