"""The `caractrl` root: global options, the client factory in click's context, and the verbs' registration."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Final

import click

from .context import Env

#: Each verb and the module that defines it. A module is imported only when its verb runs (or `-h` lists them):
#: `get` then loads neither pydantic's models nor YAML nor the tailnet client, which is most of caractrl's start.
VERBS: Final[dict[str, str]] = {
    "annotate": "label",
    "apply": "apply",
    "completion": "completion",
    "cordon": "cordon",
    "delete": "delete",
    "describe": "describe",
    "drain": "drain",
    "get": "get",
    "label": "label",
    "logs": "logs",
    "mesh": "mesh",
    "port-forward": "port_forward",
    "uncordon": "cordon",
    "version": "version",
}


#: The root's options, which kubectl users put anywhere on the line (`get nodes --server X`); those taking a value.
GLOBAL_FLAGS: Final = {"--server": True, "--socket": True, "-v": False, "--verbose": False}


def hoist_global_flags(args: list[str]) -> list[str]:
    """hoist_global_flags moves the root's options found after the verb to before it, where click reads them."""
    index = 0
    while index < len(args) and args[index].startswith("-"):
        takes_value = GLOBAL_FLAGS.get(args[index], False)
        index += 2 if takes_value else 1
    if index >= len(args):
        return args
    hoisted: list[str] = []
    rest: list[str] = []
    position = index + 1
    while position < len(args):
        arg = args[position]
        if arg == "--":
            rest += args[position:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_FLAGS:
            width = 2 if GLOBAL_FLAGS[name] and "=" not in arg else 1
            hoisted += args[position : position + width]
            position += width
            continue
        rest.append(arg)
        position += 1
    return [*args[:index], *hoisted, args[index], *rest]


class _Verbs(click.Group):
    """_Verbs is a click group whose commands come from VERBS, each imported on first use."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = VERBS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(f"{__package__}.{module}"), cmd_name.replace("-", "_"))
        assert isinstance(command, click.Command)
        return command


class _EchoHandler(logging.Handler):
    """_EchoHandler writes log records to click's stderr, so `-v` output is captured like any other."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _enable_verbose(ctx: click.Context) -> None:
    """_enable_verbose logs every HTTP request (httpx's INFO lines) for this invocation only."""
    logger, handler = logging.getLogger("httpx"), _EchoHandler()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)


@click.group(cls=_Verbs, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    metavar="URL",
    help="Control plane URL (else $CARA_SERVER, else the config file, else MagicDNS name cara-server).",
)
@click.option("--socket", metavar="PATH", help="tailscaled LocalAPI socket for MagicDNS (else $TS_SOCKET).")
@click.option("-v", "--verbose", is_flag=True, help="Say which server is used and log every HTTP request on stderr.")
@click.pass_context
def cli(ctx: click.Context, server: str | None, socket: str | None, verbose: bool) -> None:
    """caractrl drives a Caravanserai control plane: Nodes, Projects, cordon and drain."""
    env = ctx.obj if isinstance(ctx.obj, Env) else Env(environ=dict(os.environ))
    env.server = server or env.server
    env.socket = socket or env.socket
    env.verbose = verbose
    ctx.obj = env
    if verbose:
        _enable_verbose(ctx)


def main() -> None:
    """main is the console script: the process environment is read here, once."""
    cli.main(prog_name="caractrl", obj=Env(environ=dict(os.environ)))
