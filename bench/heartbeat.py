"""Heartbeat ingest benchmark: N seeded nodes, empty and full beats driven by wrk (a compiled keep-alive load
tool, Debian's package), flat out and at half the measured maximum, with the CPU each beat costs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench._server import LOAD_CPU, BenchServer, pinned
from controlplane.api import AGENT_PORT, Node, NodeNetworkStatus, NodeSpec, NodeState, NodeStatus, ObjectMeta
from controlplane.store import open_store

LUA = Path(__file__).with_name("heartbeat.lua")
CONNECTIONS = 64
KINDS = ("empty", "full")
#: Seconds to let the controllers settle once the last node is Ready: one lifecycle resync (5 s) re-reads
#: the Nodes it just wrote.
SETTLE_S = 6

#: The full beat of the issue's measurement: state, network, capacity and allocatable, 324 bytes as JSON.
FULL_BEAT: dict[str, Any] = {
    "state": "Ready",
    "network": {
        "ip": "100.64.0.7",
        "dnsName": "edge-00042.fleet-eu-west-1a.example.net",
        "mode": "Direct",
        "agentPort": 9090,
        "derpRegion": "headscale",
        "latencyMs": 1.2,
    },
    "capacity": {"cpu": "4000m", "memory": "7823Mi", "disk": "118Gi"},
    "allocatable": {"cpu": "3500m", "memory": "7311Mi", "disk": "108Gi"},
}
FULL_BODY = json.dumps(FULL_BEAT)
assert len(FULL_BODY) == 324, len(FULL_BODY)


@dataclass(frozen=True)
class WrkResult:
    """WrkResult is one wrk run's throughput and latency."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Load:
    """Load is one measured run: wrk's figures and the CPU the server (plus its database) spent per request."""

    wrk: WrkResult
    cpu_ms: float  # per request
    server_cpu: float  # share of a core over the run


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
    url: str,
    nodes: int,
    *,
    full: bool = False,
    get: bool = False,
    seconds: float,
    rate: float = 0,
    connections: int = CONNECTIONS,
) -> WrkResult:
    """run_wrk drives heartbeats (or GETs of Nodes) for `seconds` from LOAD_CPU, at `rate` req/s or flat out
    when 0; returns the request count, req/s and latency."""
    env = dict(
        os.environ,
        NODES=str(nodes),
        BODY_FILE="",
        RATE=str(rate),
        CONNECTIONS=str(connections),
        REQUEST="get" if get else "heartbeat",
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
        if full:
            body.write(FULL_BODY)
            body.flush()
            env["BODY_FILE"] = body.name
        args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(LUA), url]
        out = subprocess.run(pinned(args, LOAD_CPU), env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    errors = data["errors_status"] + data["errors_connect"] + data["errors_timeout"]
    return WrkResult(
        requests=data["requests"],
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


def drive(server: BenchServer, nodes: int, *, full: bool, seconds: float, rate: float = 0) -> Load:
    """drive runs wrk against `server` and reads its CPU (and its database's) before and after."""
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    result = run_wrk(server.url, nodes, full=full, seconds=seconds, rate=rate)
    cpu, elapsed = server.cpu_seconds() - cpu_before, time.monotonic() - started
    return Load(result, cpu * 1000 / max(result.requests, 1), cpu / elapsed)


def flat_and_half(
    server: BenchServer, nodes: int, *, seconds: float, kinds: tuple[str, ...] = KINDS
) -> dict[str, tuple[Load, Load]]:
    """flat_and_half runs each kind of beat flat out, then paced at half the rate it reached."""
    figures: dict[str, tuple[Load, Load]] = {}
    for kind in kinds:
        flat = drive(server, nodes, full=kind == "full", seconds=seconds)
        half = drive(server, nodes, full=kind == "full", seconds=seconds, rate=max(flat.wrk.rps / 2, 1))
        figures[kind] = (flat, half)
    return figures


async def beat_each_in_full(url: str, count: int, concurrency: int = 32) -> None:
    """beat_each_in_full sends node-0 .. node-(count-1) one full beat each, concurrency at a time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    headers = {"Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            answer = await client.post(f"/api/v1/nodes/node-{index}/heartbeat", content=FULL_BODY, headers=headers)
            if answer.status_code != 204:
                raise RuntimeError(f"full beat of node-{index}: {answer.status_code} {answer.text}")

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def tailnet_address(index: int) -> str:
    """tailnet_address is node-{index}'s made-up address in the tailnet's 100.64.0.0/10."""
    return f"100.{64 + index // 65024}.{index // 254 % 256}.{index % 254 + 1}"


async def seed_nodes(store_url: str, count: int, *, addressed: bool = False) -> None:
    """seed_nodes writes node-0 .. node-(count-1) straight into a store no server has open yet, as the API's
    POST would (NotReady, createdAt now): registering 20k Nodes through the API takes minutes, and is not
    what this benchmark measures. addressed: each also has a tailnet address and agent port (discovery's)."""

    def network(index: int) -> NodeNetworkStatus | None:
        return NodeNetworkStatus(ip=tailnet_address(index), agent_port=AGENT_PORT) if addressed else None

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
                            status=NodeStatus(state=NodeState.NOT_READY, network=network(i)),
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


def measure(
    server: BenchServer, nodes: int, *, seconds: float, progress: Callable[[str], None]
) -> dict[str, tuple[Load, Load]]:
    """measure brings the seeded nodes Ready, then runs empty and full beats flat out and at half that rate.

    The warm-up beats every node once or more and waits for the lifecycle controller to have written them all
    Ready (it writes in name order; the last name is polled), so the measured runs see the steady state
    (beats renewing leases) rather than a fleet coming up.
    """
    measure_warm_up(server, nodes, progress=progress)
    progress(f"{nodes} nodes: empty and full heartbeats, {seconds:g}s flat out and {seconds:g}s at half that rate")
    return flat_and_half(server, nodes, seconds=seconds)


def measure_warm_up(server: BenchServer, nodes: int, *, progress: Callable[[str], None]) -> None:
    """measure_warm_up beats every node in full and then empty, waits until the last is Ready and lets the
    controllers settle."""
    warm_up = max(3, nodes // 700)  # every node beaten at least once even at ~700 beats/s
    progress(f"{nodes} nodes: warm-up, a full beat each, empty beats for {warm_up}s, until the controllers settle")
    # One full beat per node first, so the measured full beats repeat known facts: no first network, no first
    # path in the history, no PathRelayed condition for the lifecycle controller to write.
    asyncio.run(beat_each_in_full(server.url, nodes))
    run_wrk(server.url, nodes, seconds=warm_up)
    wait_ready(server.url, max(f"node-{i}" for i in range(nodes)))
    time.sleep(SETTLE_S)


def keepalive_get(server: BenchServer, nodes: int, seconds: float = 3) -> WrkResult:
    """keepalive_get GETs Nodes back to back over one keep-alive connection: a response with a body, the kind a
    missing TCP_NODELAY holds ~40 ms."""
    return run_wrk(server.url, nodes, get=True, seconds=seconds, connections=1)


@dataclass(frozen=True)
class ListTiming:
    """ListTiming is `GET /api/v1/nodes` answered back to back: the median wall time of one answer (over one
    kept-alive connection on loopback, the body read but not decoded), the server's CPU per answer (its
    database's included) and the answer's size."""

    median_ms: float
    cpu_ms: float
    size_bytes: int


def time_list(server: BenchServer, runs: int = 15) -> ListTiming:
    """time_list GETs the whole Node list runs times (after one untimed warm-up) from this (load-core) process."""
    times: list[float] = []
    size = 0
    with httpx.Client(base_url=server.url, timeout=60) as client:
        client.get("/api/v1/nodes").raise_for_status()
        cpu_before = server.cpu_seconds()
        for _ in range(runs):
            started = time.perf_counter()
            answer = client.get("/api/v1/nodes")
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
            size = len(answer.content)
        cpu = server.cpu_seconds() - cpu_before
    times.sort()
    return ListTiming(times[len(times) // 2] * 1000, cpu * 1000 / runs, size)


def register(url: str, count: int) -> None:
    """register is register_nodes for synchronous callers."""
    asyncio.run(register_nodes(url, count))


def register_one_by_one(url: str, count: int) -> float:
    """register_one_by_one POSTs node-0 .. node-(count-1) one after the other over one kept-alive connection (the
    issue's "registering 1,000 Nodes over one connection": every answer has a body, so a Nagle stall would show)
    and returns the seconds it took."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as client:
        started = time.monotonic()
        for index in range(count):
            body = {"metadata": {"name": f"node-{index}"}, "spec": {"hostname": f"node-{index}"}}
            answer = client.post("/api/v1/nodes", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"registering node-{index}: {answer.status_code} {answer.text}")
        return time.monotonic() - started
