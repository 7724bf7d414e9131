"""What peer discovery costs one agent per period, at several fleet sizes: it must not grow with the fleet.

N Nodes with tailnet addresses are seeded straight into a store, one cara-server is started on them (pinned),
and a sample of agents asks `GET /api/v1/nodes/{name}/peers` as the agent does: once for the assignment, then
with its ETag once a minute (the agent's refresh period), which is a 304 while nothing changed. Reported per
agent per 5-minute period (one 200 and four 304s within an epoch): bytes on the wire and server CPU (less the
server's idle background rate, measured before and after: that is the fleet's cost, whoever asks).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._server import BenchServer, CpuSource, start_server
from bench.heartbeat import seed_nodes

#: Agents sampled per fleet size, and the asks of one agent per 5-minute period (refresh period 60 s).
SAMPLE = 300
ASKS_PER_PERIOD = 5
#: Seconds an assignment must stay the same before measuring: two lease flushes (the Node cache's refresh).
STABLE_S = 11
#: Seconds of idle server measured (before and after) to take its background CPU out.
IDLE_S = 10.0


@dataclass(frozen=True)
class DiscoveryCost:
    """DiscoveryCost is one fleet size's per-agent, per-period cost."""

    nodes: int
    bytes_per_period: float  # request and response bytes, heads included, of 1 answer and 4 not-modified
    cpu_ms_per_period: float  # server (and database) CPU
    first_answer_bytes: int  # the body of one assignment


def _wire_bytes(response: httpx.Response) -> int:
    """_wire_bytes is the size of a request and its answer on the wire (HTTP/1.1 heads and bodies)."""
    request = response.request
    head = len(f"{request.method} {request.url.raw_path.decode()} HTTP/1.1\r\n") + 2
    head += sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
    answer = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
    answer += sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
    return head + answer + len(response.content)


def _wait_for_cache(client: httpx.Client, name: str, timeout: float = 120) -> None:
    """_wait_for_cache waits until the server's Node cache holds every seeded Node (the lease flusher fills it
    every 5 s), seen as an assignment that no longer changes over two flush intervals."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        answer = client.get(f"/api/v1/nodes/{name}/peers")
        answer.raise_for_status()
        if answer.headers["etag"] == last:
            return
        last = answer.headers["etag"]
        time.sleep(STABLE_S)
    raise RuntimeError(f"the peer assignment of {name} kept changing for {timeout:g} s")


def _idle_cpu_rate(server: BenchServer, seconds: float = IDLE_S) -> float:
    """_idle_cpu_rate is the server's CPU seconds per second while nobody asks it anything."""
    before = server.cpu_seconds()
    time.sleep(seconds)
    return (server.cpu_seconds() - before) / seconds


def measure(store_url: str, nodes: int, log: Path, db: CpuSource | None = None) -> DiscoveryCost:
    """measure seeds `nodes` addressed Nodes, starts a server and prices SAMPLE agents' periods of asking."""
    asyncio.run(seed_nodes(store_url, nodes, addressed=True))
    server = start_server(store_url, log=log, db=db)
    try:
        names = random.Random(nodes).sample([f"node-{i}" for i in range(nodes)], min(SAMPLE, nodes))
        with httpx.Client(base_url=server.url, timeout=30) as client:
            _wait_for_cache(client, names[0])
            sent = 0
            first = 0
            idle = _idle_cpu_rate(server)
            cpu_before, started = server.cpu_seconds(), time.monotonic()
            for name in names:
                answer = client.get(f"/api/v1/nodes/{name}/peers")
                answer.raise_for_status()
                first, sent = len(answer.content), sent + _wire_bytes(answer)
                for _ in range(ASKS_PER_PERIOD - 1):
                    again = client.get(f"/api/v1/nodes/{name}/peers", headers={"if-none-match": answer.headers["etag"]})
                    if again.status_code != 304:
                        raise RuntimeError(f"{name}: asked again unchanged, got {again.status_code}, not 304")
                    sent += _wire_bytes(again)
            elapsed = time.monotonic() - started
            # The server's own background work (lease flushes and controller passes over all N Nodes) is the
            # fleet's cost, not the agents': its rate, measured idle before and after, is taken out.
            idle = (idle + _idle_cpu_rate(server)) / 2
            cpu = max(server.cpu_seconds() - cpu_before - idle * elapsed, 0.0)
    finally:
        server.stop()
    return DiscoveryCost(nodes, sent / len(names), cpu * 1000 / len(names), first)
