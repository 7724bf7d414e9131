"""`cara-server`: parse the command line, build the store, identity, app and controllers, and serve."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import click
import uvicorn
from prometheus_client import Gauge

from controlplane.api import parse_duration
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import Leadership, run_when_leading
from controlplane.store import StoreError, default_store_url, open_store
from mesh import LocalClient, MeshError

from .app import create_app
from .binding import BindError, dev_addresses, open_sockets, read_tailnet_addresses
from .context import ServerContext
from .identity import DevIdentity, Identity, TailnetIdentity
from .limits import limited_protocol
from .roles import RolesConfig, load_config
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
#: Seconds a stop waits for open requests (a watch, a throughput stream) before cancelling them.
SHUTDOWN_GRACE_S = 15


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """ReplicaSettings say who this replica is and how it keeps the controllers' leader lease."""

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

    async def run_controllers(self, context: ServerContext, stop: asyncio.Event) -> None:
        """run_controllers is the app's background runner: the controllers, while this replica leads."""
        config = ControllerConfig(
            heartbeat_interval=context.settings.heartbeat_interval,
            grace=context.settings.grace,
            # Twice a second: a silent node is NotReady within grace + 0.5 s (+ the pass), inside the
            # grace + 1 s target with room; a pass between resyncs costs ~0.08 s at 20k Nodes.
            lifecycle_period=LIFECYCLE_PERIOD,
        )
        gauge = Gauge(
            "cara_leader",
            "1 while this replica holds the leader lease and runs the controllers, else 0.",
            registry=context.metrics.registry,
        )
        leadership = Leadership(store=context.store, holder=self.replica_id, ttl=self.leader_ttl, now=context.now)
        await run_when_leading(
            store=context.store,
            leases=context.leases,
            now=context.now,
            config=config,
            stop=stop,
            leadership=leadership,
            renew_every=self.renew_every,
            merge_leases=self.replicated,
            on_change=gauge.set,
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
    settings = Settings(dev=dev, heartbeat_interval=heartbeat_interval, grace=grace, history_limit=history_limit)
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
    try:
        app = create_app(
            store=store, now=utc_now, identity=identity, settings=settings, background=replica.run_controllers
        )
        where = ", ".join(f"http://{h if ':' not in h else f'[{h}]'}:{p}" for h, p in addresses)
        log.info("serving the caravanserai/v1 API on %s (pid %d, replica %s)", where, os.getpid(), replica.replica_id)
        # ws="none": no WebSocket routes, so uvicorn need not load a WebSocket implementation (memory).
        config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=64 * 1024,
            ws="none",
            http=limited_protocol(),  # head deadline and size, body idle timeout: see limits.py
            # A stop waits this long for open requests, then cancels them: watches (`?watch=true`) stay open for
            # up to 30 min and would hold the stop that long (a throughput stream lasts at most 10 s).
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        await _Server(config, app.state.context.stopping).serve(sockets=sockets)
    finally:
        await store.close()
        if local is not None:
            await local.aclose()
    return 0


class _Server(uvicorn.Server):
    """_Server tells open watches to end as soon as a stop begins, before uvicorn waits for connections to close."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self._stopping = stopping
        self._loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)  # called from a signal handler
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    main()
