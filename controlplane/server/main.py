"""`cara-server`: parse the command line, build the store, the app and the controllers, and serve."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import uvicorn

from controlplane.api import parse_duration
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.manager import run_controllers
from controlplane.store import default_store_url, open_store

from .app import create_app
from .context import ServerContext
from .identity import DevIdentity
from .settings import DEFAULT_PORT, Settings

log = logging.getLogger("cara.server")

DEV_WARNING = (
    "WARNING: cara-server is running in DEVELOPMENT mode: it listens on loopback only and treats EVERY caller "
    "as an administrator, with no tailnet identity. Never use --dev on a real fleet."
)


def utc_now() -> datetime:
    """utc_now is the control plane's clock."""
    return datetime.now(UTC)


def parse_listen(value: str) -> tuple[str, int]:
    """parse_listen reads HOST:PORT or [V6]:PORT; raises click.BadParameter naming what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)", param_hint="--listen")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise click.BadParameter(f"{host!r} is not an IP address", param_hint="--listen") from None
    return host, int(port)


def _duration(param: str) -> click.types.FuncParamType:
    def convert(text: str) -> timedelta:
        try:
            return timedelta(seconds=parse_duration(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=param) from None

    return click.types.FuncParamType(convert)


async def _run_controllers(context: ServerContext, stop: asyncio.Event) -> None:
    config = ControllerConfig(heartbeat_interval=context.settings.heartbeat_interval, grace=context.settings.grace)
    await run_controllers(store=context.store, leases=context.leases, now=context.now, config=config, stop=stop)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dev", is_flag=True, help="Development mode: loopback only, every caller is an admin.")
@click.option("--listen", default=None, help=f"HOST:PORT to listen on (--dev default 127.0.0.1:{DEFAULT_PORT}).")
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
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
def main(
    dev: bool,
    listen: str | None,
    store_url: str | None,
    data_dir: Path | None,
    heartbeat_interval: timedelta,
    grace: timedelta,
    log_level: str,
) -> None:
    """Run the Caravanserai control plane."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if grace <= heartbeat_interval:
        raise click.BadParameter(
            f"--grace ({grace.total_seconds():g}s) must be longer than --heartbeat-interval "
            f"({heartbeat_interval.total_seconds():g}s)",
            param_hint="--grace",
        )
    if not dev:
        raise click.UsageError(
            "cara-server binds only to its tailnet addresses, and this build has no tailnet binding yet: "
            "run it with --dev (loopback, development only)"
        )
    host, port = parse_listen(listen or f"127.0.0.1:{DEFAULT_PORT}")
    if not ipaddress.ip_address(host).is_loopback:
        raise click.BadParameter(
            f"{host} is not a loopback address; --dev binds 127.0.0.0/8 or ::1 only", param_hint="--listen"
        )
    settings = Settings(
        dev=True, heartbeat_interval=heartbeat_interval, grace=grace, **({"data_dir": data_dir} if data_dir else {})
    )
    if store_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    click.echo(DEV_WARNING, err=True)
    asyncio.run(_serve(settings, store_url or default_store_url(settings.data_dir), host, port, log_level))


async def _serve(settings: Settings, store_url: str, host: str, port: int, log_level: str) -> None:
    try:
        store = await open_store(store_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    try:
        app = create_app(
            store=store, now=utc_now, identity=DevIdentity(), settings=settings, background=_run_controllers
        )
        log.info("serving the API on http://%s:%d", host, port)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=64 * 1024,
        )
        await uvicorn.Server(config).serve()
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(main())
