"""SIGKILL a real cara-server during a stream of writes: every acknowledged write survives the restart, and
nodes that keep beating are never NotReady while the restarted server has lost their recent leases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from tests.controlplane.conftest import StoreUrlFactory
from tests.controlplane.replicas._process import ServerProcess, start_server
from tests.helpers import wait_until

HEARTBEAT_S = 1.0
GRACE_S = 6.0
NODES = [f"edge-{i}" for i in range(4)]
WRITERS = 8
ENOUGH = 200


class Acks:
    """Acks records what the server acknowledged: created Projects, and the last label each writer PUT."""

    def __init__(self) -> None:
        self.projects: list[str] = []
        self.labels: dict[str, int] = {}
        # Enough: set once ENOUGH Projects were acknowledged; the server is killed then (or after 3 s).
        self.enough = asyncio.Event()


async def write_stream(url: str, acks: Acks, writer: int, stop: asyncio.Event) -> None:
    """write_stream alternates POST of a new Project and PUT of its own Node's counter label until stop
    (or until the server dies), recording each write only once it was answered with success."""
    node = f"w{writer}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        assert (await client.post("/api/v1/nodes", json={"metadata": {"name": node}})).status_code == 201
        count = 0
        while not stop.is_set():
            name = f"p{writer}-{count}"
            project = {"metadata": {"name": name}, "spec": {"services": [{"name": "web", "image": "nginx"}]}}
            count += 1
            try:
                created = await client.post("/api/v1/projects", json=project)
                assert created.status_code == 201, created.text
                acks.projects.append(name)
                if len(acks.projects) >= ENOUGH:
                    acks.enough.set()
                put = {"metadata": {"name": node, "labels": {"count": str(count)}}, "spec": {}}
                replaced = await client.put(f"/api/v1/nodes/{node}", json=put)
                assert replaced.status_code == 200, replaced.text
                acks.labels[node] = count
            except httpx.TransportError:
                return  # killed mid-request: that write was never acknowledged


async def write_then_kill(server: ServerProcess, acks: Acks) -> None:
    stop = asyncio.Event()
    writers = [asyncio.create_task(write_stream(server.url, acks, i, stop)) for i in range(WRITERS)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(acks.enough.wait(), timeout=3)
    server.kill()  # mid-stream: writers have requests in flight
    stop.set()
    await asyncio.gather(*writers)


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill_and_beating_nodes_stay_ready(
    store_url: StoreUrlFactory, tmp_path: Path
) -> None:
    url = store_url()
    args = ("--heartbeat-interval", f"{HEARTBEAT_S:g}s", "--grace", f"{GRACE_S:g}s")
    server = start_server(url, tmp_path / "first.log", *args)
    try:
        for name in NODES:
            assert server.client.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
        due = dict.fromkeys(NODES, 0.0)

        def beat_due() -> None:
            for name in NODES:
                if due[name] <= time.monotonic():
                    server.beat(name)
                    due[name] = time.monotonic() + HEARTBEAT_S

        def all_ready() -> bool:
            states = server.states()
            return all(states[name] == "Ready" for name in NODES)

        wait_until("the beating nodes to be Ready", all_ready, 20, 0.1, every=beat_due)
        acks = Acks()
        asyncio.run(write_then_kill(server, acks))
        killed_at = time.monotonic()
    finally:
        server.stop()
    assert len(acks.projects) > 20, "the stream wrote too little to mean anything"

    server = start_server(url, tmp_path / "second.log", *args)
    try:
        # Every acknowledged write is there (a PUT in flight at the kill may have landed too: never less).
        stored = {item["metadata"]["name"] for item in server.client.get("/api/v1/projects").json()["items"]}
        assert set(acks.projects) <= stored
        for node, count in acks.labels.items():
            labels = server.client.get(f"/api/v1/nodes/{node}").json()["metadata"]["labels"]
            assert int(labels["count"]) >= count, (node, labels, count)

        # The agents resume beating; through and past a full grace after the restart nobody is NotReady,
        # though the server's in-memory leases (up to one flush period of them) died with it.
        samples = 0
        while time.monotonic() - killed_at < GRACE_S * 2:
            beat_due()
            states = server.states()
            assert {name: states[name] for name in NODES} == dict.fromkeys(NODES, "Ready"), states
            samples += 1
            time.sleep(0.2)
        assert samples > 10
    finally:
        server.stop()
