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

from controlplane.api import SettingError
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import PASS_BOUND, Leadership, run_when_leading
from controlplane.store import LeaseTable, StoreError, default_store_url, open_store
from controlplane.store.copy import copy_store
from controlplane.supervision import LoopFn, Progress, Supervisor
from mesh import LocalClient, MeshError

from .app import create_app, freeze_startup_heap
from .binding import BindError, dev_addresses, open_sockets, read_tailnet_addresses
from .context import ServerContext
from .identity import DevIdentity, Identity, TailnetIdentity
from .loops import flush_stall_bound, http_server, lease_flusher
from .nofile import raise_nofile_limit
from .roles import RolesConfig
from .serving import uvicorn_config
from .settings import TABLE, Settings

log = logging.getLogger("cara.server")

DEV_WARNING = (
    "WARNING: cara-server is running in DEVELOPMENT mode: it listens on loopback only and treats EVERY caller "
    "as an administrator, with no tailnet identity. Never use --dev on a real fleet."
)


def utc_now() -> datetime:
    """utc_now is the control plane's clock."""
    return datetime.now(UTC)


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


def _command() -> click.Command:
    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--dev", is_flag=True, help="Development mode: loopback only, every caller is an admin.")
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML settings file (the unit's /etc/caravanserai/server.toml); flags and CARA_* variables override it.",
    )
    @click.option("--check-config", is_flag=True, help="Validate the settings and exit (0: valid) without starting.")
    @click.option(
        "--copy-store-to",
        "copy_to",
        metavar="URL",
        default=None,
        help="Copy the configured store (stop the server first) into the new, empty store at URL, e.g. "
        "postgresql://..., and exit.",
    )
    def command(dev: bool, config_path: Path | None, check_config: bool, copy_to: str | None, **flags: object) -> None:
        """Run the Caravanserai control plane on this machine's tailnet addresses."""
        try:
            run = load_settings(dev, config_path, flags)
        except SettingError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        if check_config:
            shown = run.store_url if run.store_url.startswith("sqlite:") else run.store_url.split(":", 1)[0]
            click.echo(f"cara-server: settings valid{f' ({config_path})' if config_path else ''}; store {shown}")
            return
        if copy_to is not None:
            sys.exit(asyncio.run(_copy(run.store_url, copy_to)))
        logging.basicConfig(level=run.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        raise_nofile_limit()  # a socket per agent: docs/deploy.md, LimitNOFILE
        if run.store_url == default_store_url(run.settings.data_dir):
            run.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if dev:
            click.echo(DEV_WARNING, err=True)
        code = asyncio.run(
            _serve(
                run.settings,
                run.replica,
                run.store_url,
                run.addresses,
                list(run.listen),
                run.socket,
                run.roles,
                run.log_level,
            )
        )
        sys.exit(code)

    for setting in TABLE:
        if setting.flag:
            command = click.option(
                setting.flag_name, setting.name, default=None, multiple=setting.multiple, help=setting.help_line()
            )(command)
    return command


@dataclasses.dataclass(frozen=True, slots=True)
class RunSettings:
    """RunSettings is everything `main` resolved from flags, environment and file, before anything starts."""

    settings: Settings
    replica: ReplicaSettings
    store_url: str
    addresses: list[tuple[str, int]] | None
    listen: tuple[str, ...]
    socket: str | None
    roles: RolesConfig
    log_level: str


def load_settings(dev: bool, config_path: Path | None, flags: dict[str, object]) -> RunSettings:
    """load_settings reads and checks every setting; raises SettingError naming the flag, variable or file key."""
    file = TABLE.read_toml(config_path) if config_path is not None else {}
    where = str(config_path)
    v = TABLE.load(flags=flags, environ=os.environ, file=file, file_label=where)

    def label(name: str) -> str:
        return TABLE.source(TABLE[name], flags, os.environ, file, where)[0] or TABLE[name].flag_name

    if v["grace"] <= v["heartbeat_interval"]:
        raise SettingError(
            f"{label('grace')}: {v['grace'].total_seconds():g}s must be longer than the heartbeat interval "
            f"({v['heartbeat_interval'].total_seconds():g}s)"
        )
    # The flag, not TS_SOCKET: a shell (or a lab host) may export that for other tools; --dev just ignores it.
    if dev and (len(v["listen"]) > 1 or flags.get("socket") or config_path):
        raise SettingError("--dev takes one loopback --listen and no --socket or --config")
    try:
        addresses = dev_addresses(v["listen"][0] if v["listen"] else None) if dev else None
    except BindError as exc:
        raise SettingError(f"{label('listen')}: {exc}") from None
    settings = Settings(
        dev=dev,
        data_dir=Path(v["data_dir"]).expanduser(),
        heartbeat_interval=v["heartbeat_interval"],
        grace=v["grace"],
        history_limit=v["history_limit"],
        metrics_pair_limit=v["metrics_pair_limit"],
        reschedule_after=v["reschedule_after"],
        control_link_limit=v["control_link_limit"],
        isolation_fraction=v["isolation_fraction"],
    )
    url = v["store"] or default_store_url(settings.data_dir)
    replica = ReplicaSettings(
        replica_id=v["replica_id"] or f"{socket.gethostname()}-{os.getpid()}",
        leader_ttl=v["leader_ttl"],
        replicated=not url.startswith("sqlite:"),
    )
    return RunSettings(settings, replica, url, addresses, v["listen"], v["socket"], v["roles"], v["log_level"])


async def _copy(source_url: str, target_url: str) -> int:
    """_copy copies the store at source_url into the empty store at target_url; 0 on success, 1 with one line."""
    try:
        source = await open_store(source_url)
    except (ValueError, StoreError) as exc:
        click.echo(f"Error: the configured store: {exc}", err=True)
        return 1
    try:
        target = await open_store(target_url)
    except (ValueError, StoreError) as exc:
        await source.close()
        click.echo(f"Error: --copy-store-to: {exc}", err=True)
        return 1
    try:
        copied = await copy_store(source, target)
    except StoreError as exc:
        click.echo(f"Error: --copy-store-to: {exc}", err=True)
        return 1
    finally:
        await source.close()
        await target.close()
    click.echo(
        f"copied {copied.nodes} nodes, {copied.projects} projects, {copied.leases} leases and "
        f"{copied.history_entries} history entries"
    )
    return 0


main = _command()


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
