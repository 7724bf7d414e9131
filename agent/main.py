"""`cara-agent`: the composition root: read settings, find the server, then beat, measure and serve until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Final, NoReturn, Protocol
from urllib.parse import urlsplit

import httpx
import psutil

from controlplane.api import AGENT_KEEPALIVE_EXPIRY
from controlplane.client import Client
from controlplane.supervision import Progress, Supervisor
from mesh import LocalClient, MeshError, resolve, socket_path

from .api.auth import Authorizer
from .api.routes import AgentAPI
from .callers import MetricsCallers
from .collectors.peers import PeerProbeConfig, PeerProber, assigned_fellows, disco_probe, whois_endpoints
from .collectors.resources import PsutilSource, ResourceSource
from .collectors.system import collect_info
from .collectors.tailnet import TailnetCollector
from .collectors.witness import WitnessChecker, http_fetch
from .heartbeat import Backoff, Heartbeater
from .http import AgentHTTPServer
from .ingress import IngressProxy
from .metrics import metrics_handler
from .projects.reconciler import ReconcileConfig, Reconciler
from .runtime import RuntimeClient
from .settings import DEFAULT_AGENT_PORT, TABLE, SettingError, Settings, find_runtime_socket, load_settings
from .status import AgentStatus
from .throughput import Meter, ServerMeter, SpeedtestMeter, ThroughputError

log = logging.getLogger("cara.agent")

#: Bound on the goodbye beat: SIGTERM must turn the Node NotReady within 2 s, and exit must not hang after.
GOODBYE_TIMEOUT: Final = 1.5
#: Request timeout toward the control plane (at most; never above the beat interval): a dead server costs one beat.
CLIENT_TIMEOUT: Final = 5.0
#: A projects pass is stalled past its interval plus this: the list (5 s client timeout) and the runtime ping
#: (30 s) are its only waits.
PROJECTS_STALL: Final = 40.0
#: Bound on one witness check of a fellow agent (at most half a beat interval): the witness is wanted now.
WITNESS_TIMEOUT: Final = 2.0
#: Throughput tests are spread over ±10 % of the interval so that a fleet does not measure at once.
THROUGHPUT_JITTER: Final = 0.1
#: A measurement may take both directions' duration plus this (connect, a slow server) before its loop is stalled.
THROUGHPUT_SLACK: Final = 60.0


def release_memory() -> None:
    """release_memory hands freed heap back to the OS (glibc malloc_trim): a throughput test churns through
    hundreds of megabytes in 64 KiB buffers, and without this the agent's RSS stays at its high-water mark."""
    # Imported here: ctypes costs about 0.3 MiB resident and this runs once per throughput test (every 30 min).
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        pass


def _verify(url: str) -> bool:
    """_verify is whether to load CA certificates: only for https (the tailnet already encrypts http)."""
    return url.startswith("https://")


def utc_now() -> datetime:
    """utc_now is the agent's wall clock."""
    return datetime.now(UTC)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """_wait sleeps up to `seconds`; returns True when stop was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def discover_server(local: LocalClient, settings: Settings, stop: asyncio.Event, backoff: Backoff) -> str | None:
    """discover_server resolves the control plane's MagicDNS name through tailscaled; None when stopped first."""
    while not stop.is_set():
        try:
            ips = resolve(await local.status(), settings.server_name)
            host = str(ips[0]) if ips[0].version == 4 else f"[{ips[0]}]"
            url = f"http://{host}:{settings.server_port}"
            log.info("control plane %s is %s", settings.server_name, url)
            return url
        except MeshError as exc:
            delay = backoff.next_delay()
            log.warning(
                "cannot find the control plane %r on the tailnet (%s); retrying in %.1fs",
                settings.server_name,
                exc,
                delay,
            )
            if await _wait(stop, delay):
                break
    return None


async def measure_forever(
    meter: Meter,
    status: AgentStatus,
    settings: Settings,
    stop: asyncio.Event,
    backoff: Backoff | None = None,
    progress: Progress | None = None,
) -> None:
    """measure_forever measures at once, then every throughput interval (jittered); failures retry with backoff.

    A ThroughputError (the server refused, the path broke) is retried; anything else is a bug and raises to the
    process root, which logs it, counts it and restarts this loop."""
    backoff = backoff if backoff is not None else Backoff()
    while not stop.is_set():
        try:
            status.measurement = await meter.measure()
            release_memory()
            backoff.reset()
            m = status.measurement
            log.info(
                "throughput down %.1f Mbps, up %.1f Mbps (%d bytes)",
                m.download_bps / 1e6,
                m.upload_bps / 1e6,
                m.bytes_used,
            )
            delay = settings.throughput_interval * (1 - THROUGHPUT_JITTER + 2 * THROUGHPUT_JITTER * random.random())
        except ThroughputError as exc:
            delay = backoff.next_delay()
            log.warning("%s; next try in %.1fs", exc, delay)
        if progress is not None:
            progress.tick(within=delay)
        if await _wait(stop, delay):
            return


class Listener(Protocol):
    """Listener is a server that can be started on an address (the agent's HTTP server, the ingress proxy)."""

    async def start(self, host: str, port: int) -> None: ...


async def serve_http(
    server: Listener, status: AgentStatus, settings: Settings, stop: asyncio.Event, port: int | None = None
) -> None:
    """serve_http starts a server once its address is known (the tailnet IP), retrying until bound; port defaults
    to the agent port."""
    port = settings.listen_port if port is None else port
    while not stop.is_set():
        host = settings.listen_address or (status.last_view.self_ip if status.last_view else None)
        if host:
            try:
                await server.start(host, port)
                return
            except OSError as exc:
                log.warning("cannot listen on %s:%d: %s", host, port, exc)
        if await _wait(stop, 1.0):
            return


async def serve_http_until_stopped(
    server: Listener,
    status: AgentStatus,
    settings: Settings,
    stop: asyncio.Event,
    progress: Progress,
    port: int | None = None,
) -> None:
    """serve_http_until_stopped is a supervised server loop (the agent's HTTP server, the ingress proxy): bind
    (retrying), then serve until stop."""
    await serve_http(server, status, settings, stop, port)
    await stop.wait()


def _health(beater: Heartbeater, status: AgentStatus, supervisor: Supervisor) -> Callable[[], tuple[int, str, bytes]]:
    """_health answers /healthz: 200 while every loop runs and makes progress, else 503 naming the loops and why.
    An unreachable control plane is not the agent's fault: it shows as serverReachable false, with 200."""

    def handler() -> tuple[int, str, bytes]:
        view = status.last_view
        problems = supervisor.problems()
        doc = {
            "status": "unhealthy" if problems else "ok",
            "loops": problems,
            "node": beater.node_name,
            "registered": beater.state.registered,
            "serverReachable": beater.state.server_reachable,
            "tailscaled": view.backend_state if view else "unknown",
            "lastHeartbeat": beater.state.last_success.isoformat() if beater.state.last_success else None,
            "lastError": beater.state.last_error or None,
        }
        return 503 if problems else 200, "application/json", json.dumps(doc).encode() + b"\n"

    return handler


def control_timeout(interval: float) -> float:
    """control_timeout is how long a request to the control plane waits: CLIENT_TIMEOUT, at least 2 s and at most
    the beat interval."""
    return min(CLIENT_TIMEOUT, max(2.0, interval))


def control_transport(url: str, *, keepalive_expiry: float = AGENT_KEEPALIVE_EXPIRY) -> httpx.AsyncHTTPTransport:
    """control_transport is the transport of beats, registration and discovery: one kept-alive connection.

    A beat costs the server no new connection (docs/scale.md, the fleet runs). The connection is closed after
    `keepalive_expiry` idle, below the server's SERVER_KEEPALIVE_IDLE, so no beat races the server's close; one
    the server closed (a restart) is readable while idle and is replaced before use (httpcore); one whose request
    failed, timed out or was cancelled is closed. A beat not answered in time on a stale or black-holed connection
    is hedged (Heartbeater._send): while the pooled connection is busy the pool opens a new one, and of the two
    only one is kept."""
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_keepalive_connections=1, keepalive_expiry=keepalive_expiry), verify=_verify(url)
    )


async def run_agent(
    settings: Settings,
    *,
    stop: asyncio.Event,
    local: LocalClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    resources: ResourceSource | None = None,
    meter: Meter | None = None,
    now: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    supervisor: Supervisor | None = None,
) -> int:
    """run_agent runs the agent's loops under one supervisor until `stop` is set, then sends the going-away beat.

    The loops: heartbeat (register, beat; peer probing runs within each beat's status), throughput, and the HTTP
    server. Returns the exit code: 0, or non-zero when a loop kept failing and could not be restarted."""
    if local is None:  # a unix socket needs no TLS: skip loading the CA bundle (about 1 MiB resident)
        path = socket_path(settings.socket, os.environ)
        local = LocalClient(path, transport=httpx.AsyncHTTPTransport(uds=path, verify=False))
    try:
        url = settings.server_url or await discover_server(local, settings, stop, Backoff())
        if url is None:
            return 0
        beat_transport = transport or control_transport(url)
        timeout = control_timeout(settings.heartbeat_interval)
        # Witness checks of fellow agents' /healthz over the tailnet: no proxy from the environment, no pooling, and
        # no CA bundle (http:// only: WireGuard encrypts; loading the bundle costs about 0.7 MiB resident).
        witness_http = httpx.AsyncClient(
            trust_env=False, limits=httpx.Limits(max_keepalive_connections=0), verify=False
        )
        async with witness_http, Client(url, transport=beat_transport, timeout=timeout) as client:
            tailnet = TailnetCollector(
                local=local,
                server_host=urlsplit(url).hostname,
                agent_port=settings.listen_port,
                max_peers=settings.max_peers,
            )
            peers = None
            if settings.peer_probes_per_round > 0:
                peers = PeerProber(
                    self_name=settings.node_name,
                    list_nodes=assigned_fellows(client, settings.node_name),
                    probe=disco_probe(local),
                    endpoints=whois_endpoints(local),
                    now=now,
                    config=PeerProbeConfig(
                        per_round=settings.peer_probes_per_round,
                        refresh_period=settings.peer_refresh_period,
                        round_interval=settings.heartbeat_interval,
                        max_peers=settings.max_peers,
                    ),
                )
            witness = None
            if peers is not None:
                prober = peers
                witness = WitnessChecker(
                    resolve=lambda name: prober.address(name, DEFAULT_AGENT_PORT),
                    fetch=http_fetch(witness_http),
                    probe=disco_probe(local),
                    now=now,
                    timeout=min(WITNESS_TIMEOUT, max(0.5, settings.heartbeat_interval / 2)),
                )
            status = AgentStatus(
                witness=witness,
                tailnet=tailnet,
                peers=peers,
                resources=resources if resources is not None else PsutilSource(),
                info=collect_info(),
                data_dir=settings.data_dir,
                reserved=settings.reserved,
                now=now,
            )
            beater = Heartbeater(
                client=client,
                node_name=settings.node_name,
                hostname=settings.hostname,
                source=status,
                now=now,
                sleep=sleep,
                interval=settings.heartbeat_interval,
                status_interval=settings.status_interval,
                witness=witness.check if witness is not None else None,
            )
            if meter is None and settings.throughput_backend == "server":
                meter = ServerMeter(
                    base_url=url,
                    streams=settings.throughput_streams,
                    duration=settings.throughput_duration,
                    transport=transport,
                    verify=_verify(url),
                    now=now,
                )
            elif meter is None and settings.throughput_backend == "speedtest":
                meter = SpeedtestMeter(now=now)
            runtime_socket = find_runtime_socket(settings.runtime_socket, os.path.exists)
            runtime = RuntimeClient(runtime_socket) if runtime_socket else None
            log.info("container runtime: %s", runtime_socket or "none (Projects bound here will fail)")
            reconciler = Reconciler(
                api=client,
                runtime=runtime,
                node_name=settings.node_name,
                now=now,
                booted_at=datetime.fromtimestamp(psutil.boot_time(), UTC),
                config=ReconcileConfig(poll_interval=settings.project_poll_interval),
            )
            api = AgentAPI(
                runtime=lambda: runtime,
                authorizer=Authorizer(whois=local.whois, admins=settings.agent_admins, viewers=settings.agent_viewers),
            )
            loops = supervisor if supervisor is not None else Supervisor()
            http = AgentHTTPServer(
                {
                    "/healthz": _health(beater, status, loops),
                    "/metrics": metrics_handler(beater.state, status, restarts=loops.restarts),
                },
                protected=frozenset({"/metrics"}),
                authorize=MetricsCallers(local=local, allowed=settings.metrics_readers).refusal,
                streams=api.streams(),
            )
            ingress = IngressProxy(projects=lambda: reconciler.running.values(), runtime=lambda: runtime)
            # A beat attempt is due `delay` after the last (its interval, or its backoff while the server is away);
            # it is late past that by one more interval plus the longest a beat may take.
            loops.add("heartbeat", beater.run, stall_after=settings.heartbeat_interval + CLIENT_TIMEOUT)
            loops.add("http", partial(serve_http_until_stopped, http, status, settings))
            # A pass lists this Node's Projects and pings the runtime, each bounded by its client's timeout; the
            # Projects' own work runs in tasks of their own and never holds a pass up.
            loops.add("projects", reconciler.run, stall_after=settings.project_poll_interval + PROJECTS_STALL)
            if settings.ingress_port:
                loops.add(
                    "ingress", partial(serve_http_until_stopped, ingress, status, settings, port=settings.ingress_port)
                )
            if meter is not None:
                measure = meter

                async def throughput(stop: asyncio.Event, progress: Progress) -> None:
                    await measure_forever(measure, status, settings, stop, progress=progress)

                loops.add("throughput", throughput, stall_after=2 * settings.throughput_duration + THROUGHPUT_SLACK)
            code = await loops.run(stop)
            log.debug("loops stopped at monotonic %.3f: saying goodbye", time.monotonic())
            try:
                said = await asyncio.wait_for(beater.going_away(), GOODBYE_TIMEOUT)
            except TimeoutError:
                said = False
            log.info("stopping; the control plane %s told", "was" if said else "could not be")
            await http.close()
            await ingress.close()
            if runtime is not None:
                await runtime.aclose()
    finally:
        await local.aclose()
    return code


def _parser() -> argparse.ArgumentParser:
    """_parser is the command line: --env-file, --check-config and one flag per setting of TABLE.

    argparse, not click: the agent has one command, and click stayed resident (about 1 MiB) for a parse done once."""
    parser = argparse.ArgumentParser(
        prog="cara-agent",
        description="Run the Caravanserai node agent: register this machine, beat, measure, serve /healthz and "
        "/metrics.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="Environment file of KEY=VALUE settings (the unit's /etc/caravanserai/agent.env); flags and the "
        "environment override it; an unknown variable stops the agent.",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="Validate the settings and exit (0: valid) without starting.",
    )
    for setting in TABLE:
        parser.add_argument(
            setting.flag_name, dest=setting.name, default=None, metavar="VALUE", help=setting.help_line()
        )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """main is cara-agent: read the settings (exit 2 with one line naming the bad one), then run until SIGTERM."""
    args = _parser().parse_args(argv)
    env_file: Path | None = args.env_file
    check_config: bool = args.check_config
    flags: dict[str, str | None] = {setting.name: getattr(args, setting.name) for setting in TABLE}
    try:
        settings = load_settings(flags, os.environ, hostname=socket.gethostname(), env_file=env_file)
    except SettingError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    if check_config:
        print(f"cara-agent: settings valid{f' ({env_file})' if env_file else ''}; node {settings.node_name}")
        return
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per beat is noise; failures are logged by us
    exit_now(asyncio.run(_main(settings)))


def exit_now(code: int) -> NoReturn:
    """exit_now ends the process with code once the logs and stdio are flushed, skipping the interpreter's
    finalization: the goodbye is said and every client and server closed, and tearing down the modules and the heap
    of an agent took 0.1–0.2 s on an idle machine and over 1 s on a loaded one, all of it between SIGTERM and the
    exit that systemd (and a restart) waits for."""
    log.debug("exiting %d at monotonic %.3f", code, time.monotonic())
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(sig: signal.Signals) -> None:
        log.debug("%s at monotonic %.3f: stopping", sig.name, time.monotonic())
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping, sig)
    return await run_agent(settings, stop=stop)
