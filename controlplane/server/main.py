"""`cara-server`: the process root. Parse the command line, build the store, identity, app and controllers, and run
the HTTP server, the lease flusher and the controllers side by side under one supervisor (the only module of the
server that imports the controllers: an import contract says so)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from prometheus_client import Gauge

from controlplane.api import parse_duration
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import PASS_BOUND, Leadership, run_when_leading
from controlplane.store import LeaseTable, StoreError, default_store_url, open_store
from controlplane.supervision import LoopFn, Progress, Supervisor
from mesh import LocalClient, MeshError

from .app import create_app, freeze_startup_heap
from .binding import BindError, dev_addresses, open_sockets, read_tailnet_addresses
from .context import ServerContext
from .identity import DevIdentity, Identity, TailnetIdentity
from .loops import flush_stall_bound, http_server, lease_flusher
from .roles import RolesConfig, load_config
from .serving import uvicorn_config
from .settings import Settings

log = logging.getLogger("cara.server")

DEV_WARNING = (
    "WARNING: cara-server is running in DEVELOPMENT mode: it listens on loopback only and treats EVERY caller "
    "as an administrator, with no tailnet identity. Never use --dev on a real fleet."
)


def utc_now() -> datetime:
    """utc_now is the control plane's clock."""
    return datetime.now(UTC)


def _duration(param: str) -> click.ParamType[timedelta]:
    def convert(text: str | timedelta) -> timedelta:
        if isinstance(text, timedelta):
            return text
        try:
            return timedelta(seconds=parse_duration(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=param) from None

    return click.types.FuncParamType(convert)


#: The lifecycle pass period of a real server (ControllerConfig's default is the 1 s upper bound).
LIFECYCLE_PERIOD = timedelta(milliseconds=500)


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """ReplicaSettings say who this replica is and how it keeps the controllers' leader lease (data only)."""

    # ReplicaID: this process's name in the leader lease (default hostname-pid: unique per process).
    replica_id: str
    # LeaderTTL: a leader that stops renewing is replaced after at most this plus one renewal period.
    leader_ttl: timedelta
    # Replicated: the store may be shared by other replicas (PostgreSQL), so the leader merges their leases.
    replicated: bool

    @property
    def renew_every(self) -> timedelta:
        # Three renewals per TTL: one lost renewal never costs the lease.
        return self.leader_ttl / 3


def controllers_loop(
    context: ServerContext,
    replica: ReplicaSettings,
    *,
    pass_bound: timedelta = PASS_BOUND,
    config: ControllerConfig | None = None,
) -> LoopFn:
    """controllers_loop is the supervised loop running the controllers while this replica leads. A leader whose
    controllers died or finished no pass within pass_bound stops renewing and raises (run_when_leading), so the
    supervisor logs it, counts it and restarts the loop, and the lease lapses to another replica meanwhile."""
    if config is None:
        config = ControllerConfig(
            heartbeat_interval=context.settings.heartbeat_interval,
            grace=context.settings.grace,
            # Twice a second: a silent node is NotReady within grace + 0.5 s (+ the pass), inside the
            # grace + 1 s target with room; a pass between resyncs costs ~0.08 s at 20k Nodes.
            lifecycle_period=LIFECYCLE_PERIOD,
            reschedule_after=context.settings.reschedule_after,
            control_link_limit=context.settings.control_link_limit,
            isolation_fraction=context.settings.isolation_fraction,
        )
    gauge = Gauge(
        "cara_leader",
        "1 while this replica holds the leader lease and runs the controllers, else 0.",
        registry=context.metrics.registry,
    )

    async def run(stop: asyncio.Event, progress: Progress) -> None:
        leadership = Leadership(store=context.store, holder=replica.replica_id, ttl=replica.leader_ttl, now=context.now)
        await run_when_leading(
            store=context.store,
            leases=context.leases,
            now=context.now,
            config=config,
            stop=stop,
            leadership=leadership,
            renew_every=replica.renew_every,
            merge_leases=replica.replicated,
            on_change=gauge.set,
            progress=progress.tick,
            pass_bound=pass_bound,
            witnesses=context.writes.witnesses,
            on_isolation=on_isolation,
        )

    def on_isolation(isolated: bool) -> None:
        context.metrics.isolated.set(isolated)
        context.events.isolation(isolated)  # an Event when the guard turns

    return run


def supervise_server(
    context: ServerContext,
    supervisor: Supervisor,
    *,
    http: LoopFn | None,
    controllers: LoopFn | None,
    pass_bound: timedelta = PASS_BOUND,
    renew_every: timedelta = timedelta(seconds=10),
    leader_ttl: timedelta = timedelta(seconds=10),
) -> None:
    """supervise_server adds the server's loops to supervisor: the HTTP server (its end ends the process), the
    lease flusher, and the controllers (stalled when no renewal found them well within pass_bound + renew_every;
    restarted no sooner than the leader lease lapses and another replica could take it: a real step-down)."""
    if http is not None:
        supervisor.add("http", http, ends_process=True, graceful=True)
    supervisor.add(
        "lease-flush", lease_flusher(context), stall_after=flush_stall_bound(context.settings.lease_flush_interval)
    )
    if controllers is not None:
        supervisor.add(
            "controllers",
            controllers,
            stall_after=(pass_bound + renew_every).total_seconds(),
            restart_after=(leader_ttl + renew_every).total_seconds(),
        )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dev", is_flag=True, help="Development mode: loopback only, every caller is an admin.")
@click.option("--listen", multiple=True, help="HOST:PORT to listen on; repeatable (default: the tailnet IPs, :8080).")
@click.option(
    "--socket",
    "ts_socket",
    default=None,
    help="tailscaled LocalAPI socket (default $TS_SOCKET, then /var/run/tailscale/tailscaled.sock).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML configuration file (roles of tailnet users and tags).",
)
@click.option("--store", "store_url", default=None, help="sqlite:///PATH or postgresql://... (default: data dir).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the default SQLite store lives (default ~/.local/share/caravanserai).",
)
@click.option("--heartbeat-interval", type=_duration("--heartbeat-interval"), default="10s", show_default=True)
@click.option(
    "--grace",
    type=_duration("--grace"),
    default="40s",
    show_default=True,
    help="Silence after which a node is NotReady.",
)
@click.option(
    "--reschedule-after",
    type=_duration("--reschedule-after"),
    default="3m",
    show_default=True,
    help="A NotReady (HeartbeatTimeout) node's projects go back to Pending after this long.",
)
@click.option(
    "--control-link-limit",
    type=_duration("--control-link-limit"),
    default="1h",
    show_default=True,
    help="A ControlLinkDown node (silent to us, reached by a fellow agent) keeps its projects this long at most.",
)
@click.option(
    "--isolation-fraction",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="More than this fraction of the nodes (at least 3) silent at once: the control plane is the one cut off.",
)
@click.option(
    "--replica-id",
    default=None,
    help="This replica's name in the leader lease (default: hostname-pid).",
)
@click.option(
    "--leader-ttl",
    type=_duration("--leader-ttl"),
    default="10s",
    show_default=True,
    help="Leader lease lifetime, renewed every third of it; a dead leader is replaced within TTL + TTL/3.",
)
@click.option(
    "--history-limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Throughput samples and path changes kept per node (each).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
def main(
    dev: bool,
    listen: tuple[str, ...],
    ts_socket: str | None,
    config_path: Path | None,
    store_url: str | None,
    data_dir: Path | None,
    heartbeat_interval: timedelta,
    grace: timedelta,
    reschedule_after: timedelta,
    control_link_limit: timedelta,
    isolation_fraction: float,
    replica_id: str | None,
    leader_ttl: timedelta,
    history_limit: int,
    log_level: str,
) -> None:
    """Run the Caravanserai control plane on this machine's tailnet addresses."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if grace <= heartbeat_interval:
        raise click.BadParameter(
            f"--grace ({grace.total_seconds():g}s) must be longer than --heartbeat-interval "
            f"({heartbeat_interval.total_seconds():g}s)",
            param_hint="--grace",
        )
    if leader_ttl <= timedelta(0):
        raise click.BadParameter("must be positive", param_hint="--leader-ttl")
    try:
        config = load_config(config_path)
        addresses = dev_addresses(listen[0] if listen else None) if dev else None
    except (BindError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if dev and (len(listen) > 1 or ts_socket or config_path):
        raise click.UsageError("--dev takes one loopback --listen and no --socket or --config")
    for flag, value in (("--reschedule-after", reschedule_after), ("--control-link-limit", control_link_limit)):
        if value <= timedelta(0):
            raise click.BadParameter("must be positive", param_hint=flag)
    settings = Settings(
        dev=dev,
        heartbeat_interval=heartbeat_interval,
        grace=grace,
        history_limit=history_limit,
        reschedule_after=reschedule_after,
        control_link_limit=control_link_limit,
        isolation_fraction=isolation_fraction,
    )
    if data_dir is not None:
        settings = dataclasses.replace(settings, data_dir=data_dir)
    if store_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = store_url or default_store_url(settings.data_dir)
    replica = ReplicaSettings(
        replica_id=replica_id or f"{socket.gethostname()}-{os.getpid()}",
        leader_ttl=leader_ttl,
        replicated=not url.startswith("sqlite:"),
    )
    if dev:
        click.echo(DEV_WARNING, err=True)
    code = asyncio.run(_serve(settings, replica, url, addresses, list(listen), ts_socket, config.roles, log_level))
    sys.exit(code)


async def _serve(
    settings: Settings,
    replica: ReplicaSettings,
    store_url: str,
    addresses: list[tuple[str, int]] | None,
    listen: list[str],
    ts_socket: str | None,
    roles: RolesConfig,
    log_level: str,
) -> int:
    identity: Identity
    local: LocalClient | None = None
    if addresses is None:  # tailnet mode: our addresses and our callers both come from tailscaled
        local = LocalClient(ts_socket)
        try:
            addresses = await read_tailnet_addresses(local, listen)
        except (MeshError, BindError) as exc:
            await local.aclose()
            click.echo(f"Error: {exc}", err=True)
            return 1
        identity = TailnetIdentity(local=local, roles=roles)
    else:
        identity = DevIdentity()
    try:
        sockets = open_sockets(addresses)
    except BindError as exc:
        click.echo(f"Error: {exc}", err=True)
        return 1
    try:
        store = await open_store(store_url)
    except (ValueError, StoreError) as exc:
        click.echo(f"Error: --store: {exc}", err=True)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        leases = LeaseTable()
        await leases.load(store)
        supervisor = Supervisor(on_restart=lambda name: context.metrics.loop_restarts.labels(name).inc())
        app = create_app(
            store=store, now=utc_now, identity=identity, settings=settings, leases=leases, health=supervisor.problems
        )
        context: ServerContext = app.state.context
        context.stopping = stop  # open watches end as soon as the process begins to stop, not after them
        where = ", ".join(f"http://{h if ':' not in h else f'[{h}]'}:{p}" for h, p in addresses)
        log.info("serving the caravanserai/v1 API on %s (pid %d, replica %s)", where, os.getpid(), replica.replica_id)
        config = uvicorn_config(app, log_level)
        supervise_server(
            context,
            supervisor,
            http=http_server(config, sockets),
            controllers=controllers_loop(context, replica),
            renew_every=replica.renew_every,
            leader_ttl=replica.leader_ttl,
        )
        freeze_startup_heap()
        code = await supervisor.run(stop)
        try:
            await leases.flush(store)  # the beats since the last flush: a restart must not lose them
        except Exception:
            log.exception("the last lease flush failed")
    finally:
        await store.close()
        if local is not None:
            await local.aclose()
    return code


if __name__ == "__main__":
    main()
