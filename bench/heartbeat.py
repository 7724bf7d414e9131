"""Heartbeat ingest benchmark: register N simulated nodes, then drive empty and full beats with wrk."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench._server import BenchServer
from controlplane.api import Node, NodeSpec, NodeState, NodeStatus, ObjectMeta
from controlplane.store import open_store

LUA = Path(__file__).with_name("heartbeat.lua")
#: The offered load of the latency target: 20,000 nodes beating every 10 s.
TARGET_RATE = 2000
#: Seconds to let the controllers settle once the last node is Ready: one lifecycle resync (5 s) re-reads
#: the Nodes it just wrote.
SETTLE_S = 6

FULL_BEAT: dict[str, Any] = {
    "network": {
        "ip": "100.64.0.7",
        "dnsName": "node.tailnet.test",
        "mode": "Direct",
        "agentPort": 9090,
        "derpRegion": "headscale",
        "latencyMs": 1.2,
    },
    "capacity": {"cpu": "4000m", "memory": "7823Mi", "disk": "118Gi"},
    "allocatable": {"cpu": "3500m", "memory": "7311Mi", "disk": "108Gi"},
    "available": {"memory": "5120Mi", "disk": "90Gi"},
    "info": {"kernelVersion": "6.1.0-27-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)", "agentVersion": "0.1.0"},
    "conditions": [{"type": "NetworkUnavailable", "status": "False", "reason": "TailnetRunning"}],
}


@dataclass(frozen=True)
class WrkResult:
    """WrkResult is one wrk run's throughput and latency."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


async def register_nodes(url: str, count: int, concurrency: int = 32) -> None:
    """register_nodes POSTs node-0 .. node-(count-1), concurrency at a time (409 counts as done)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            answer = await client.post(
                "/api/v1/nodes", json={"metadata": {"name": f"node-{index}"}, "spec": {"hostname": f"node-{index}"}}
            )
            if answer.status_code not in (201, 409):
                raise RuntimeError(f"registering node-{index}: {answer.status_code} {answer.text}")

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def run_wrk(
    url: str, nodes: int, *, full: bool, seconds: int, rate: int = 0, connections: int = 64, cpu: int | None = 1
) -> WrkResult:
    """run_wrk drives heartbeats for `seconds` (at `rate` req/s, or flat out when 0); returns req/s and latency."""
    env = dict(os.environ, NODES=str(nodes), BODY_FILE="", RATE=str(rate), CONNECTIONS=str(connections))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
        if full:
            json.dump(FULL_BEAT, body)
            body.flush()
            env["BODY_FILE"] = body.name
        args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA), url]
        if cpu is not None and (os.cpu_count() or 1) > 1:
            args = ["taskset", "-c", str(cpu), *args]
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    errors = data["errors_status"] + data["errors_connect"] + data["errors_timeout"]
    return WrkResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


async def seed_nodes(store_url: str, count: int) -> None:
    """seed_nodes writes node-0 .. node-(count-1) straight into a store no server has open yet, as the API's
    POST would (NotReady, createdAt now): registering 20k Nodes through the API takes minutes, and is not
    what this benchmark measures."""
    store = await open_store(store_url)
    try:
        now = datetime.now(UTC)
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    store.create_node(
                        Node(
                            metadata=ObjectMeta(name=f"node-{i}", created_at=now, updated_at=now),
                            spec=NodeSpec(hostname=f"node-{i}"),
                            status=NodeStatus(state=NodeState.NOT_READY),
                        )
                    )
                    for i in range(start, min(start + 500, count))
                )
            )
    finally:
        await store.close()


def wait_ready(url: str, name: str, timeout: float = 180) -> None:
    """wait_ready beats one Node and polls it until the lifecycle controller has written it Ready."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            client.post(f"/api/v1/nodes/{name}/heartbeat").raise_for_status()
            if client.get(f"/api/v1/nodes/{name}").json()["status"].get("state") == "Ready":
                return
            time.sleep(0.5)
    raise RuntimeError(f"{name} did not turn Ready within {timeout} s")


def measure(server: BenchServer, nodes: int, *, seconds: int, progress: Any) -> dict[str, float]:
    """measure brings the seeded nodes Ready, then runs empty and full beats; returns the figures.

    The warm-up beats every node once or more and waits for the lifecycle controller to have written them all
    Ready (it writes in name order; the last name is polled), so the measured runs see the steady state
    (beats renewing leases) rather than a fleet coming up.
    """
    warm_up = max(3, nodes // 700)  # every node beaten at least once even at ~700 beats/s
    progress(f"{nodes} nodes: warm-up, empty heartbeats for {warm_up}s, then until the controllers have settled")
    run_wrk(server.url, nodes, full=False, seconds=warm_up)
    wait_ready(server.url, max(f"node-{i}" for i in range(nodes)))
    time.sleep(SETTLE_S)
    figures: dict[str, float] = {}
    for kind in ("empty", "full"):
        progress(f"{nodes} nodes: {kind} heartbeats flat out for {seconds}s")
        cpu_before = server.cpu_seconds()
        flat_out = run_wrk(server.url, nodes, full=kind == "full", seconds=seconds)
        cpu = (server.cpu_seconds() - cpu_before) / seconds
        progress(f"{nodes} nodes: {kind} heartbeats at {TARGET_RATE}/s for {seconds}s")
        paced = run_wrk(server.url, nodes, full=kind == "full", seconds=seconds, rate=TARGET_RATE)
        figures |= {
            f"{kind}_rps": flat_out.rps,
            f"{kind}_sat_p99_ms": flat_out.p99_ms,
            f"{kind}_paced_rps": paced.rps,
            f"{kind}_p50_ms": paced.p50_ms,
            f"{kind}_p99_ms": paced.p99_ms,
            f"{kind}_errors": flat_out.errors + paced.errors,
            f"{kind}_server_cpu": cpu,
        }
    figures["rss_mib"] = server.rss_mib()
    return figures


def register(url: str, count: int) -> None:
    """register is register_nodes for synchronous callers."""
    asyncio.run(register_nodes(url, count))
