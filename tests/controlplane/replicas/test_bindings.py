"""Issue 11 item 3: two replicas on one store; a binding released and taken on A is enforced on B.

Full beats are checked inside the store transaction, so B refuses the old machine's at once. Empty beats are
answered from B's cache of bindings, which B's lease flusher brings up to date by revision: the old machine's
are refused within one flush interval. The new machine is accepted on B at once (a cache entry that does not
name the caller is never trusted: the store is asked).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from controlplane.server.app import create_app
from controlplane.server.identity import Caller, Role
from controlplane.server.main import supervise_server
from controlplane.server.settings import Settings
from controlplane.store import open_store
from controlplane.supervision import Supervisor
from tests.conftest import FakeClock
from tests.controlplane.conftest import StoreUrlFactory
from tests.helpers import HeaderIdentity, caller_client

NODES = "/api/v1/nodes"
FLUSH = timedelta(milliseconds=300)
FULL = {"network": {"ip": "100.64.0.5", "dnsName": "edge1.tailnet.test"}}


CALLERS = {
    "admin": Caller("ops@", Role.ADMIN, "n-ops"),
    "old": Caller("edge1-old.tailnet.test", Role.NODE, "n-old"),
    "new": Caller("edge1-new.tailnet.test", Role.NODE, "n-new"),
}


class Replica:
    """Replica is one app (its lease flusher running, as in the process root) and a client per caller."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        transport = httpx.ASGITransport(app=app)
        self.clients = {who: caller_client(app, who, transport) for who in CALLERS}

    async def beat(self, who: str, body: Mapping[str, object] | None = None) -> int:
        answer = await self.clients[who].post(f"{NODES}/edge1/heartbeat", json=body)
        return answer.status_code


@pytest.fixture
async def replicas(store_url: StoreUrlFactory) -> AsyncIterator[tuple[Replica, Replica]]:
    url = store_url()
    clock = FakeClock()
    settings = Settings(lease_flush_interval=FLUSH)
    async with AsyncExitStack() as stack:
        pair = []
        for _ in range(2):
            store = await open_store(url)
            stack.push_async_callback(store.close)
            app = create_app(store=store, now=clock.now, identity=HeaderIdentity(CALLERS), settings=settings)
            supervisor = Supervisor()
            supervise_server(app.state.context, supervisor, http=None, controllers=None)  # the lease flusher
            stop = asyncio.Event()
            running = asyncio.create_task(supervisor.run(stop))
            stack.push_async_callback(asyncio.wait_for, running, 5)
            stack.callback(stop.set)
            replica = Replica(app)
            for client in replica.clients.values():
                stack.push_async_callback(client.aclose)
            pair.append(replica)
        yield pair[0], pair[1]


async def rebind(a: Replica, b: Replica) -> None:
    """rebind registers edge1 from the old machine on A, lets B see it write (B's cache says "old"), then releases
    the binding on A and lets the new machine bind through A."""
    assert (await a.clients["old"].post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
    assert await b.beat("old", FULL) == 204
    assert await b.beat("old") == 204
    assert (await a.clients["admin"].post(f"{NODES}/edge1/release")).status_code == 200
    assert await a.beat("new", FULL) == 204, "the rebuilt machine binds through A"


async def test_a_released_machine_is_refused_on_every_replica_within_one_flush(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    await rebind(a, b)
    released = time.monotonic()
    assert await b.beat("old", FULL) == 403, "a full beat is checked in the store transaction: refused at once"
    while await b.beat("old") != 403:  # B's cache still says "old" until its next lease flush
        assert time.monotonic() - released < FLUSH.total_seconds() * 2 + 1.0, "old machine still accepted on B"
        await asyncio.sleep(0.02)
    refused_after = time.monotonic() - released
    print(f"old machine's empty beats refused on B {refused_after:.2f}s after the rebind (flush interval {FLUSH})")
    # One flush interval, plus the flush's own time and the test's polling on a shared machine.
    assert refused_after <= FLUSH.total_seconds() + 0.5
    assert await b.beat("old") == 403 and await a.beat("old") == 403
    assert await b.beat("new") == 204 and await b.beat("new", FULL) == 204 and await a.beat("new") == 204


async def test_the_new_machine_is_accepted_on_every_replica_at_once(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    await rebind(a, b)
    # B's cache still names the old machine: a cache entry that does not name the caller is checked in the store.
    assert await b.beat("new") == 204
    assert await b.beat("new", FULL) == 204


async def test_a_node_deleted_on_one_replica_is_not_found_on_the_other_after_a_flush(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert (await a.clients["old"].post(NODES, json={"metadata": {"name": "edge1"}})).status_code == 201
    assert await b.beat("old") == 204
    assert (await a.clients["admin"].delete(f"{NODES}/edge1")).status_code == 204
    await asyncio.sleep(FLUSH.total_seconds() + 0.3)
    assert await b.beat("old") == 404, "the agent is told to register again"
