"""A lease's marks cross replicas: two replicas (lease flusher and controllers running, as in the process root) on one
PostgreSQL. A goodbye beat received by the follower turns the Node NotReady (AgentShutdown) at the leader within one
lease flush plus one leader renewal; a beat whose facts were rejected keeps the facts unconfirmed at the leader, and
after both replicas restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from controlplane.server.app import create_app
from controlplane.server.identity import Caller, Role
from controlplane.server.main import ReplicaSettings, controllers_loop, supervise_server, utc_now
from controlplane.server.settings import Settings
from controlplane.store import LeaseTable, open_store
from controlplane.supervision import Supervisor
from tests.factories import node
from tests.helpers import HeaderIdentity, caller_client

pytestmark = pytest.mark.postgres

NODES = "/api/v1/nodes"
FLUSH = timedelta(milliseconds=300)
LEADER_TTL = timedelta(milliseconds=1500)
RENEW = LEADER_TTL / 3
#: Beyond flush + renewal: the lifecycle pass and its store write, and the test's polling, on a loaded machine.
SLACK_S = 1.0
FULL = {"network": {"ip": "100.64.0.5", "dnsName": "edge1.tailnet.test"}}
GOODBYE = {"state": "NotReady"}


CALLERS = {
    "admin": Caller("ops@", Role.ADMIN, "n-ops"),
    "edge1": Caller("edge1.tailnet.test", Role.NODE, "n-edge1"),
}


class Replica:
    """Replica is one running app (lease flusher and controllers) and a client per caller."""

    def __init__(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        self.clients = {who: caller_client(app, who, transport) for who in CALLERS}

    async def beat(self, body: dict[str, Any] | None = None) -> int:
        return (await self.clients["edge1"].post(f"{NODES}/edge1/heartbeat", json=body)).status_code

    async def status(self) -> dict[str, Any]:
        answer = await self.clients["admin"].get(f"{NODES}/edge1")
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()["status"]
        return status

    async def leads(self) -> bool:
        text = (await self.clients["admin"].get("/metrics")).text
        return "cara_leader 1.0" in text.splitlines()


#: Starts one replica on the shared store; the callable's stack stops it (a restart: a new one after).
StartReplica = Callable[[AsyncExitStack, str], Awaitable[Replica]]


@pytest.fixture
def start_replica(postgres_schema: str) -> StartReplica:
    settings = Settings(lease_flush_interval=FLUSH)

    async def start(stack: AsyncExitStack, replica_id: str) -> Replica:
        store = await open_store(postgres_schema)
        stack.push_async_callback(store.close)
        leases = LeaseTable()
        await leases.load(store)  # as the process root does at start
        stack.push_async_callback(leases.flush, store)  # ... and at its end
        app = create_app(store=store, now=utc_now, identity=HeaderIdentity(CALLERS), settings=settings, leases=leases)
        replica = ReplicaSettings(replica_id=replica_id, leader_ttl=LEADER_TTL, replicated=True)
        supervisor = Supervisor()
        supervise_server(
            app.state.context,
            supervisor,
            http=None,
            controllers=controllers_loop(app.state.context, replica),
            renew_every=RENEW,
            leader_ttl=LEADER_TTL,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(supervisor.run(stop))
        stack.push_async_callback(asyncio.wait_for, running, 10)
        stack.callback(stop.set)
        started = Replica(app)
        for client in started.clients.values():
            stack.push_async_callback(client.aclose)
        return started

    return start


async def leader_and_follower(a: Replica, b: Replica) -> tuple[Replica, Replica]:
    """leader_and_follower waits until exactly one of a and b leads and returns (leader, follower)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leading = (await a.leads(), await b.leads())
        if leading == (True, False):
            return a, b
        if leading == (False, True):
            return b, a
        await asyncio.sleep(0.05)
    raise AssertionError("no single leader within 10 s")


async def eventually(what: str, check: Callable[[], Awaitable[bool]], within_s: float) -> float:
    """eventually polls check until it holds and returns how long that took; fails naming what after within_s."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within_s, f"{what}: not within {within_s:g} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_goodbye_at_the_follower_turns_the_node_not_ready_at_the_leader(
    start_replica: StartReplica, postgres_schema: str
) -> None:
    store = await open_store(postgres_schema)
    try:  # registered before the replicas start, so the leader's first list holds it (no wait for a relist)
        await store.create_node(node("edge1"))
    finally:
        await store.close()
    async with AsyncExitStack() as stack:
        a, b = await start_replica(stack, "r-a"), await start_replica(stack, "r-b")
        leader, follower = await leader_and_follower(a, b)
        assert await follower.beat(FULL) == 204  # binds the machine to the registered Node

        async def ready() -> bool:
            await follower.beat()  # the agent keeps beating, at the follower only
            return (await leader.status()).get("state") == "Ready"

        await eventually("Ready at the leader from the follower's beats", ready, 10)
        assert await follower.beat(GOODBYE) == 204
        said = time.monotonic()

        async def shut_down() -> bool:
            status = await leader.status()
            reasons = [c.get("reason") for c in status.get("conditions", []) if c.get("type") == "Ready"]
            return status.get("state") == "NotReady" and reasons == ["AgentShutdown"]

        took = await eventually("NotReady (AgentShutdown) at the leader", shut_down, 10)
        assert await leader.leads(), "the leader did not change meanwhile"
        print(f"goodbye at the follower → AgentShutdown at the leader in {took:.2f}s (flush {FLUSH}, renewal {RENEW})")
        budget = (FLUSH + RENEW).total_seconds() + SLACK_S
        assert time.monotonic() - said <= budget, f"took {took:.2f}s, more than flush + renewal + {SLACK_S} s"


async def test_a_rejected_beat_at_the_follower_stays_unconfirmed_at_the_leader_and_after_a_restart(
    start_replica: StartReplica,
) -> None:
    async with AsyncExitStack() as first:
        a, b = await start_replica(first, "r-a"), await start_replica(first, "r-b")
        leader, follower = await leader_and_follower(a, b)
        assert (await follower.clients["edge1"].post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
        assert await follower.beat(FULL) == 204
        confirmed = (await follower.status())["factsConfirmedAt"]
        await asyncio.sleep(0.01)
        assert await follower.beat({"network": {"ip": "bad"}}) == 400, "facts rejected: the lease renews only"
        await asyncio.sleep(0.01)
        assert await follower.beat() == 204  # "nothing changed" since the rejected facts: confirms nothing
        beat_at = (await follower.status())["lastHeartbeat"]
        assert beat_at != confirmed

        async def merged() -> bool:
            return bool((await leader.status())["lastHeartbeat"] == beat_at)

        await eventually("the follower's lease at the leader", merged, 10)
        assert (await leader.status())["factsConfirmedAt"] == confirmed, "the leader merged the rejected mark"
    async with AsyncExitStack() as second:  # both replicas restarted: the mark comes back from the store
        for replica in (await start_replica(second, "r-c"), await start_replica(second, "r-d")):
            status = await replica.status()
            assert (status["lastHeartbeat"], status["factsConfirmedAt"]) == (beat_at, confirmed)
