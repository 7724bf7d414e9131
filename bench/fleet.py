"""Fleet simulator: N simulated agents in one process, with the real agent's cadence, against one real cara-server.

Each simulated agent does what cara-agent does on the wire (agent/heartbeat.py, agent/collectors/peers.py):
a beat every heartbeat interval over its one kept-alive connection (as agent/main.py's control_transport: idle
for at most AGENT_KEEPALIVE_EXPIRY, replaced when the server closed it, a second one opened while the first is
busy and closed after; the agent's request timeout), empty unless its status changed or the status interval
passed, then the full status (network with its probed peers, capacity, allocatable, available, info,
conditions, state Ready); its peer assignment (GET /nodes/{name}/peers) read every NODE_LIST_REFRESH for peer
discovery; now and then a probed peer's path changes (a full beat at once), and a throughput sample is added
once per throughput interval (its first soon after start, as the agent measures at start). A failed beat is
retried as the agent does: an interval later when no connection was made or after a first failure, then with
its backoff (5, 10, 20 ... s, jittered), and the beat after a failure carries the full status. The measurement
traffic itself is not simulated: the control plane's beat and discovery paths are what this measures.

The agents' first beats are spread over one interval. `--start restart` (the default): the fleet has run before,
so every Node is brought up first (its agent's full beat, on a server with a long grace, until every Node is
Ready) and the server restarted; `--start cold`: every Node registered and never heard from, so every first beat
turns its Node Ready, all within one interval. The server (and its database) run pinned to one core and the
simulator to the other. Figures:
offered and achieved requests, errors, connections opened, beat and discovery p50/p99, bytes per agent, server
(+ database) CPU, and the server's RSS over time. A run whose simulator fell behind its own schedule fails. The
simulator raises its own open-file limit as cara-server does; where the hard limit is below one socket per agent
(and FD_RESERVE), the connections beyond it are closed after their answer (counted).

`bench/fleet --nodes 5000 --seconds 600 --store sqlite` (see --help); bench/run's `fleet` section runs it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import heapq
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from agent.collectors.peers import NODE_LIST_REFRESH
from agent.heartbeat import Backoff, retry_delay
from agent.main import control_timeout
from agent.settings import Settings
from bench import _proc
from bench._server import LOAD_CPU, BenchServer, start_server
from bench.heartbeat import seed_nodes
from controlplane.api import AGENT_KEEPALIVE_EXPIRY
from controlplane.server.nofile import raise_nofile_limit

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}
HEARTBEAT_INTERVAL = float(_DEFAULTS["heartbeat_interval"])  # type: ignore[arg-type]
STATUS_INTERVAL = float(_DEFAULTS["status_interval"])  # type: ignore[arg-type]
THROUGHPUT_INTERVAL = float(_DEFAULTS["throughput_interval"])  # type: ignore[arg-type]
#: Peers a simulated agent reports probing (the agent's probe budget per round is of this order).
PEERS = 4
#: Mean seconds between two path changes of one agent's probed peers.
PATH_CHANGE_EVERY = 600.0
#: The simulator fell behind when it sent a request this late after its due time (p99); the server kept up
#: when at least ACHIEVED_MIN of the requests due were answered by the end. A run must do both.
MAX_LAG_P99_S = 1.0
ACHIEVED_MIN = 0.99
SAMPLE_S = 5.0
#: Bound on requests in flight at once; beyond it the simulator waits (and shows as lag).
MAX_IN_FLIGHT = 2048
#: Bytes per agent are given per this period: the agent's discovery period.
BYTES_PERIOD_S = NODE_LIST_REFRESH
#: Open files the simulator keeps for anything but its agents' idle connections (every request in flight may be on
#: a connection of its own, plus the event loop and its own files): an idle connection is kept only below the
#: limit less this.
FD_RESERVE = MAX_IN_FLIGHT + 256


@dataclass
class Connection:
    """Connection is one simulated agent's connection to the server, and when it may no longer be used idle."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    expires: float = 0.0

    def usable(self, now: float) -> bool:
        """usable: idle for less than the expiry and not closed by the server (its FIN read as end of stream: the
        readable check httpcore makes before reusing a connection)."""
        return now < self.expires and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class FleetConfig:
    """FleetConfig is one simulated fleet: its size, how long it runs and the cadence of its agents."""

    nodes: int
    seconds: float
    store: str = "sqlite"
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    status_interval: float = STATUS_INTERVAL
    discovery_period: float = NODE_LIST_REFRESH
    throughput_interval: float = THROUGHPUT_INTERVAL
    path_change_every: float = PATH_CHANGE_EVERY
    seed: int = 16
    # start: "restart" (the fleet has run: every Node stored Ready with its agent's facts, then the server restarts
    # and the measured run begins) or "cold" (every Node registered and never heard from: each first beat turns it
    # Ready, all within one interval).
    start: str = "restart"

    @property
    def timeout(self) -> float:
        """timeout is the agent's per-request timeout at this interval."""
        return control_timeout(self.heartbeat_interval)


def source_address(index: int) -> str:
    """source_address is the loopback address agent index connects from (127.1.0.1, 127.1.0.2, ...: 250 per
    third octet), its own as a real agent's is. From one address, a 20,000-agent fleet's connections and those
    it closed (TIME_WAIT for a minute) held most ephemeral ports, and each connect() then searched for a free one:
    43 % of the simulator's CPU, enough to make it fall behind its schedule."""
    return f"127.1.{index // 250 % 256}.{index % 250 + 1}"


@dataclass
class SimAgent:
    """SimAgent is one simulated agent's state: what changed since its last full beat, and its facts."""

    index: int
    peer_modes: list[str]
    changed: bool = True  # the first beat after start is full
    last_full: float = -1e9
    throughput_at: datetime | None = None
    sent: int = 0
    received: int = 0
    busy: set[str] = field(default_factory=set)  # kinds of request in flight ("beat", "discovery")
    idle: Connection | None = None  # the kept-alive connection, while no request uses it
    backoff: Backoff = field(default_factory=Backoff)
    beat_seq: int = -1  # the heap entry of its next beat (a failed beat's retry replaces the regular one)


@dataclass
class Stats:
    """Stats are the simulator's counts and latencies, per kind of request."""

    due: int = 0
    answered: int = 0
    skipped: int = 0  # due while the agent still waited for its previous request of that kind
    errors: dict[str, int] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    lag: list[float] = field(default_factory=list)
    connections: int = 0  # connections opened
    unkept: int = 0  # connections closed after their answer because the open-file limit left no room to keep them

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def full_beat(agent: SimAgent, names: list[str]) -> bytes:
    """full_beat is the agent's full status as it sends it: network with its probed peers, resources, facts."""
    i = agent.index
    peers = [
        {"name": names[(i + k + 1) % len(names)], "ip": _ip(i + k + 1), "mode": mode, "latencyMs": 1.5 + k}
        for k, mode in enumerate(agent.peer_modes)
    ]
    network: dict[str, Any] = {
        "ip": _ip(i),
        "dnsName": f"{names[i]}.fleet.example.net",
        "mode": "Direct",
        "agentPort": 9090,
        "derpRegion": "headscale",
        "latencyMs": 1.2,
        "peers": peers,
    }
    if agent.throughput_at is not None:
        network["throughput"] = {
            "download": "94.1Mbps",
            "upload": "41.0Mbps",
            "lastTestTime": agent.throughput_at.isoformat().replace("+00:00", "Z"),
            "bytesUsed": 52428800,
        }
    beat = {
        "state": "Ready",
        "network": network,
        "capacity": {"cpu": "4000m", "memory": "7823Mi", "disk": "118Gi"},
        "allocatable": {"cpu": "3500m", "memory": "7311Mi", "disk": "108Gi"},
        "available": {"memory": "5120Mi", "disk": "90Gi"},
        "info": {
            "kernelVersion": "6.1.0-27-amd64",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "agentVersion": "0.1.0",
        },
        "conditions": [{"type": "NetworkUnavailable", "status": "False", "reason": "TailscaledRunning"}],
    }
    return json.dumps(beat, separators=(",", ":")).encode()


def _ip(index: int) -> str:
    return f"100.{64 + index // 65536 % 64}.{index // 256 % 256}.{index % 256}"


async def _exchange(connection: Connection, request: bytes) -> tuple[int, int, bool]:
    """_exchange sends one request over `connection` and reads the whole answer; returns the status, the bytes
    received and whether the server keeps the connection open."""
    reader, writer = connection.reader, connection.writer
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    keep = True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep = False
    received = len(head)
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            await reader.readexactly(size + 2)
            received += len(size_line) + size + 2
            if size == 0:
                break
    elif length:
        received += len(await reader.readexactly(length))
    return status, received, keep


class Simulator:
    """Simulator schedules every agent's requests on one event loop and records what happened."""

    def __init__(self, config: FleetConfig, port: int) -> None:
        self.config, self.port = config, port
        self.random = random.Random(config.seed)
        self.names = [f"node-{i}" for i in range(config.nodes)]
        self.agents = [
            SimAgent(
                i,
                [self.random.choice(("Direct", "Direct", "Direct", "DERP")) for _ in range(PEERS)],
                backoff=Backoff(random=self.random.random),
            )
            for i in range(config.nodes)
        ]
        self.stats = Stats()
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.tasks: set[asyncio.Task[None]] = set()
        self.open = 0  # connections open now
        self.heap: list[tuple[float, int, int, str]] = []
        self.seq = 0
        self.started = 0.0
        self._wake = asyncio.Event()
        self.keep_limit = raise_nofile_limit() - FD_RESERVE

    def _schedule(self) -> list[tuple[float, int, int, str]]:
        """_schedule is the heap of first events: each agent's first beat, discovery, throughput and path change
        at random phases (agents start at different moments)."""
        c, rnd = self.config, self.random
        heap: list[tuple[float, int, int, str]] = []
        seq = 0
        for agent in self.agents:
            for kind, first in (
                ("beat", rnd.uniform(0, c.heartbeat_interval)),
                ("discovery", rnd.uniform(0, c.discovery_period)),
                ("throughput", rnd.uniform(0, min(60.0, c.throughput_interval))),
                ("path", rnd.expovariate(1 / c.path_change_every)),
            ):
                heap.append((first, seq, agent.index, kind))
                seq += 1
        heapq.heapify(heap)
        return heap

    async def run(self) -> None:
        c = self.config
        self.heap = self._schedule()
        self.seq = len(self.heap)
        for _, seq, index, kind in self.heap:
            if kind == "beat":
                self.agents[index].beat_seq = seq
        self.started = started = time.monotonic()
        while self.heap:
            due, seq, index, kind = self.heap[0]
            if due >= c.seconds:
                break
            wait = started + due - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)  # a failed beat's retry may come sooner
                continue
            heapq.heappop(self.heap)
            agent = self.agents[index]
            nxt: float | None = None
            if kind == "beat":
                if seq != agent.beat_seq:
                    continue  # replaced by the retry of a failed beat
                nxt = due + c.heartbeat_interval
                self._request(agent, "beat", started + due)
            elif kind == "discovery":
                nxt = due + c.discovery_period
                self._request(agent, "discovery", started + due)
            elif kind == "throughput":
                nxt = due + c.throughput_interval
                agent.throughput_at, agent.changed = datetime.now(UTC), True
            elif kind == "path":
                nxt = due + self.random.expovariate(1 / c.path_change_every)
                k = self.random.randrange(PEERS)
                agent.peer_modes[k] = "DERP" if agent.peer_modes[k] == "Direct" else "Direct"
                agent.changed = True
            if nxt is not None:
                self._push(nxt, agent, kind)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=c.timeout + 5)

    def _push(self, due: float, agent: SimAgent, kind: str) -> None:
        heapq.heappush(self.heap, (due, self.seq, agent.index, kind))
        if kind == "beat":
            agent.beat_seq = self.seq
        self.seq += 1

    def _retry(self, agent: SimAgent, connected: bool) -> None:
        """_retry schedules the beat after a failed one by the agent's rule (agent.heartbeat.retry_delay): an
        interval later when no connection was made, or after the first failure; after more, the backoff's 5, 10,
        20 ... s."""
        delay = retry_delay(agent.backoff, self.config.heartbeat_interval, connected=connected)
        self._push(time.monotonic() - self.started + delay, agent, "beat")
        self._wake.set()

    def _request(self, agent: SimAgent, kind: str, due: float) -> None:
        now = time.monotonic()
        name = self.names[agent.index]
        self.stats.due += 1
        self.stats.lag.append(now - due)  # the simulator's own lateness, before any wait on the server
        if kind in agent.busy:  # the agent's loop is sequential: still waiting for the last one, so this is late
            self.stats.skipped += 1
            return
        if kind == "discovery":
            # As the agent: its peer assignment (asked without the ETag here, so every ask is a whole answer).
            label = "discovery"
            request = f"GET /api/v1/nodes/{name}/peers HTTP/1.1\r\nHost: cara-server:8080\r\n\r\n".encode()
        else:
            full = agent.changed or now - agent.last_full >= self.config.status_interval
            body = full_beat(agent, self.names) if full else b""
            label = "full" if full else "empty"
            request = (
                f"POST /api/v1/nodes/{name}/heartbeat HTTP/1.1\r\nHost: cara-server:8080\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            if full:
                agent.changed, agent.last_full = False, now  # as the agent: a failure resends it (below)
        agent.busy.add(kind)
        task = asyncio.create_task(self._send(agent, kind, label, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _limited(self, agent: SimAgent, request: bytes, reached: list[bool]) -> tuple[int, int]:
        async with self.in_flight:
            connection = await self._connection(agent)
            reached[0] = True
            try:
                status, received, keep = await _exchange(connection, request)
            except BaseException:
                self._close(connection)
                raise
            self._release(agent, connection, keep)
            return status, received

    async def _connection(self, agent: SimAgent) -> Connection:
        """_connection is the agent's idle connection while it is usable, else a new one (as the agent's pool)."""
        connection, agent.idle = agent.idle, None
        if connection is not None:
            if connection.usable(time.monotonic()):
                return connection
            self._close(connection)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:  # the kernel picks the port at connect(), unique for the address pair, not for the source alone
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source_address(agent.index), 0))
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        self.open += 1
        self.stats.connections += 1
        return Connection(reader, writer)

    def _release(self, agent: SimAgent, connection: Connection, keep: bool) -> None:
        """_release keeps the connection idle for the agent's next request, unless the server closes it or the agent
        already keeps one (the pool keeps one), or the open-file limit leaves no room."""
        if keep and agent.idle is None and self.open <= self.keep_limit:
            connection.expires = time.monotonic() + AGENT_KEEPALIVE_EXPIRY
            agent.idle = connection
            return
        if keep and agent.idle is None:
            self.stats.unkept += 1
        self._close(connection)

    def _close(self, connection: Connection) -> None:
        connection.close()
        self.open -= 1

    def close_all(self) -> None:
        """close_all closes the agents' idle connections (at the end of a run)."""
        for agent in self.agents:
            if agent.idle is not None:
                self._close(agent.idle)
                agent.idle = None

    async def _send(self, agent: SimAgent, kind: str, label: str, request: bytes) -> None:
        begun = time.monotonic()
        reached = [False]  # whether a connection was made (the agent retries sooner when none was)
        try:
            status, received = await asyncio.wait_for(self._limited(agent, request, reached), self.config.timeout)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.stats.error(f"{label}: {type(exc).__name__}")
            status, received = 0, 0
        except TimeoutError:
            self.stats.error(f"{label}: timeout")
            status, received = 0, 0
        finally:
            agent.busy.discard(kind)
        agent.sent += len(request)
        agent.received += received
        if status and not 200 <= status < 300:
            self.stats.error(f"{label}: HTTP {status}")
        if 200 <= status < 300:
            self.stats.answered += 1
            self.stats.latency.setdefault(label, []).append(time.monotonic() - begun)
            if kind == "beat":
                agent.backoff.reset()
        elif kind == "beat":
            agent.changed = True  # the agent sends everything again after a failure
            self._retry(agent, reached[0])


async def _sample(server: BenchServer, samples: list[tuple[float, float, float]], stop: asyncio.Event) -> None:
    """_sample records (seconds since start, RSS MiB, CPU seconds) of the server every SAMPLE_S."""
    started = time.monotonic()
    while True:
        samples.append((time.monotonic() - started, server.rss_mib(), server.cpu_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)
            samples.append((time.monotonic() - started, server.rss_mib(), server.cpu_seconds()))
            return


async def _simulate(config: FleetConfig, server: BenchServer) -> tuple[Simulator, list[tuple[float, float, float]]]:
    port = int(server.url.rsplit(":", 1)[1])
    simulator = Simulator(config, port)
    samples: list[tuple[float, float, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(server, samples, stop))
    try:
        await simulator.run()
    finally:
        simulator.close_all()
        stop.set()
        await sampler
    return simulator, samples


def report(
    config: FleetConfig, simulator: Simulator, samples: list[tuple[float, float, float]], sim_cpu: float
) -> dict[str, Any]:
    """report turns one run into its figures (all JSON-ready) and its verdicts."""
    stats, c = simulator.stats, config
    elapsed = samples[-1][0] - samples[0][0]
    half = [rss for t, rss, _ in samples if t >= c.seconds / 2]
    rss_growth = (half[-1] - half[0]) / half[0] * 100 if len(half) > 1 else float("nan")
    cpu = (samples[-1][2] - samples[0][2]) / elapsed
    agents = simulator.agents
    periods = c.seconds / BYTES_PERIOD_S
    beats = stats.latency.get("empty", []) + stats.latency.get("full", [])
    errors = sum(stats.errors.values())
    achieved = stats.answered / stats.due if stats.due else 0.0
    lag_p99 = _quantile(stats.lag, 0.99)
    fell_behind = lag_p99 > MAX_LAG_P99_S
    ms = 1000.0
    figures: dict[str, Any] = {
        "nodes": c.nodes,
        "seconds": c.seconds,
        "store": c.store,
        "start": c.start,
        "offered_rps": stats.due / c.seconds,
        "achieved_rps": stats.answered / c.seconds,
        "achieved_share": achieved,
        "requests": {kind: len(values) for kind, values in stats.latency.items()},
        "errors": errors,
        "connections_opened": stats.connections,
        "requests_per_connection": stats.answered / stats.connections if stats.connections else float("nan"),
        "connections_not_kept_for_the_fd_limit": stats.unkept,
        "skipped": stats.skipped,
        "error_kinds": stats.errors,
        "beat_p50_ms": _quantile(beats, 0.5) * ms,
        "beat_p99_ms": _quantile(beats, 0.99) * ms,
        "full_beat_p99_ms": _quantile(stats.latency.get("full", []), 0.99) * ms,
        "discovery_p50_ms": _quantile(stats.latency.get("discovery", []), 0.5) * ms,
        "discovery_p99_ms": _quantile(stats.latency.get("discovery", []), 0.99) * ms,
        "bytes_per_agent_per_period": {
            "sent": statistics.mean(a.sent for a in agents) / periods,
            "received": statistics.mean(a.received for a in agents) / periods,
            "period_s": BYTES_PERIOD_S,
        },
        "server_cpu_share": cpu,
        "simulator_cpu_share": sim_cpu / elapsed,
        "rss_mib": [[round(t, 1), round(rss, 1)] for t, rss, _ in samples],
        "rss_growth_second_half_percent": rss_growth,
        "lag_p99_s": lag_p99,
        "fell_behind": fell_behind,
    }
    figures["ok"] = not fell_behind and achieved >= ACHIEVED_MIN and errors == 0 and rss_growth < 5
    return figures


#: Full beats in flight while a fleet is brought up before a restart run (a pace the server keeps), and the grace
#: of the server that takes them.
BRING_UP_CONCURRENCY = 32
BRING_UP_GRACE_S = 900


async def _beat_all(url: str, bodies: dict[str, bytes]) -> None:
    """_beat_all sends each Node its beat, BRING_UP_CONCURRENCY at a time."""
    pending = list(bodies.items())
    limits = httpx.Limits(max_connections=BRING_UP_CONCURRENCY)

    async def worker(client: httpx.AsyncClient) -> None:
        while pending:
            name, body = pending.pop()
            answer = await client.post(f"/api/v1/nodes/{name}/heartbeat", content=body)
            if answer.status_code != 204:
                raise RuntimeError(f"bringing up {name}: {answer.status_code} {answer.text}")

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(BRING_UP_CONCURRENCY)))


def _not_ready(url: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=120) as client:
        nodes = client.get("/api/v1/nodes").raise_for_status().json()["items"]
    return [n["metadata"]["name"] for n in nodes if n.get("status", {}).get("state") != "Ready"]


def bring_up(config: FleetConfig, url: str, progress: Callable[[str], None]) -> None:
    """bring_up is the fleet before a restart run: every agent's full beat once (the same facts its first beat
    of the run repeats), at a pace the server keeps, then a wait until the lifecycle controller has written every
    Node Ready."""
    simulator = Simulator(config, int(url.rsplit(":", 1)[1]))  # for its agents' facts only
    asyncio.run(_beat_all(url, {simulator.names[a.index]: full_beat(a, simulator.names) for a in simulator.agents}))
    deadline = time.monotonic() + 120
    while (left := _not_ready(url)) and time.monotonic() < deadline:
        progress(f"fleet: {len(left):,} nodes not Ready yet")
        time.sleep(2)
    if left:
        raise RuntimeError(f"bringing up the fleet: {len(left):,} nodes still not Ready after 120 s")


def run_fleet(
    config: FleetConfig, workdir: Path, store_url: str, db: Any = None, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """run_fleet seeds the Nodes, starts cara-server on store_url and runs the simulated fleet against it; for a
    restart run, the fleet is brought up first and the server restarted (SIGTERM: its leases are flushed)."""
    progress(f"fleet: seeding {config.nodes:,} nodes ({config.store})")
    asyncio.run(seed_nodes(store_url, config.nodes))
    if config.start == "restart":
        progress(f"fleet: bringing {config.nodes:,} nodes up, then restarting the server")
        # A long grace while the fleet comes up: bringing 20,000 Nodes up takes longer than one grace, and a Node
        # whose lease ran out meanwhile would start the measured run NotReady.
        up = ("--grace", f"{BRING_UP_GRACE_S}s")
        server = start_server(store_url, log=workdir / f"fleet-{config.nodes}-up.log", db=db, extra=up)
        try:
            bring_up(config, server.url, progress)
        finally:
            server.stop()
    server = start_server(store_url, log=workdir / f"fleet-{config.nodes}.log", db=db)
    try:
        progress(f"fleet: {config.nodes:,} simulated agents for {config.seconds:g}s")
        sim_before = _proc.cpu_seconds(os.getpid())
        simulator, samples = asyncio.run(_simulate(config, server))
        sim_cpu = _proc.cpu_seconds(os.getpid()) - sim_before
    finally:
        server.stop()
    return report(config, simulator, samples, sim_cpu)


@contextlib.contextmanager
def store_for(store: str, workdir: Path) -> Iterator[tuple[str, Any]]:
    """store_for yields a fresh store URL (and the database whose CPU counts, for PostgreSQL)."""
    if store == "sqlite":
        yield f"sqlite://{workdir}/fleet.db", None
        return
    from bench._pg import fresh_schema, private_cluster

    with private_cluster() as cluster:
        yield fresh_schema(cluster.url), cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000, help="simulated agents (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=600, help="how long the fleet runs (default %(default)s)")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--discovery-period",
        type=float,
        default=NODE_LIST_REFRESH,
        help="s between peer-assignment reads per agent; 0 reads none (default: the agent's %(default)g)",
    )
    parser.add_argument(
        "--start",
        choices=("restart", "cold"),
        default="restart",
        help="restart: the fleet ran before and the server restarts (Nodes Ready with their facts); cold: every"
        " Node registered and never heard from, all first beats within one interval (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print every figure as JSON (default: a summary)")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.seconds <= 0:
        parser.error("--nodes and --seconds must be positive")
    _proc.pin(os.getpid(), LOAD_CPU)
    config = FleetConfig(
        args.nodes,
        args.seconds,
        args.store,
        discovery_period=args.discovery_period or float("inf"),
        start=args.start,
    )
    with tempfile.TemporaryDirectory(prefix="cara-fleet-") as tmp, store_for(args.store, Path(tmp)) as (url, db):
        figures = run_fleet(config, Path(tmp), url, db, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(figures, indent=2) if args.json else summary(figures))
    return 0 if figures["ok"] else 1


def summary(f: dict[str, Any]) -> str:
    """summary is a run's figures in a few lines, with the verdict."""
    b = f["bytes_per_agent_per_period"]
    rss = f["rss_mib"]
    sent, received = b["sent"] / 1024, b["received"] / 1024
    return "\n".join(
        [
            f"fleet {f['nodes']:,} nodes, {f['seconds']:g}s, {f['store']}, {f['start']} start:"
            f" {'PASS' if f['ok'] else 'FAIL'}",
            f"  offered {f['offered_rps']:,.1f} req/s, achieved {f['achieved_rps']:,.1f} ({f['achieved_share']:.1%}),"
            f" simulator lag p99 {f['lag_p99_s']:.3f}s{' (the simulator FELL BEHIND)' if f['fell_behind'] else ''}",
            f"  requests {f['requests']}, errors {f['errors']} {f['error_kinds'] or ''},"
            f" skipped while the previous waited {f['skipped']}",
            f"  connections opened {f['connections_opened']:,} ({f['requests_per_connection']:,.1f} requests each;"
            f" closed for the open-file limit {f['connections_not_kept_for_the_fd_limit']:,})",
            f"  beat p50 {f['beat_p50_ms']:.1f} ms, p99 {f['beat_p99_ms']:.1f} ms"
            f" (full p99 {f['full_beat_p99_ms']:.1f});"
            f" discovery p50 {f['discovery_p50_ms']:.0f} ms, p99 {f['discovery_p99_ms']:.0f} ms",
            f"  per agent per {b['period_s']:g}s: sent {sent:,.1f} KiB, received {received:,.1f} KiB",
            f"  server (+ database) CPU {f['server_cpu_share']:.1%} of a core;"
            f" simulator {f['simulator_cpu_share']:.1%}",
            f"  server RSS {rss[0][1]} -> {rss[len(rss) // 2][1]} -> {rss[-1][1]} MiB;"
            f" growth over the second half {f['rss_growth_second_half_percent']:+.1f} %",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
