"""The `caractrl` root: global options, the client factory in click's context, and the verbs' registration.

A verb's module is imported only when that verb runs. `-h`, of the root or of a verb, prints the static text of
help.txt beside this module (written by scripts/caractrl-help from the commands themselves, and kept in step by a
test), so asking for help imports no verb module, and the verb modules import what they use at their top.
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import cache
from pathlib import Path
from typing import Final

import click

from .env import Env

#: Each verb and the module that defines it.
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

HELP_FLAGS: Final = ("-h", "--help")

#: The width help is written for (click's own maximum): the static text is the same on every terminal.
HELP_WIDTH: Final = 80

#: The stored help texts: a `--- caractrl [VERB]` line before each.
HELP_FILE: Final = Path(__file__).with_name("help.txt")
HELP_HEAD: Final = "--- caractrl"


def help_file_text(texts: dict[str, str]) -> str:
    """help_file_text is HELP_FILE's content for texts (verb → help; "" is caractrl's own)."""
    return "".join(f"{HELP_HEAD} {key}".rstrip() + f"\n{text}\n" for key, text in texts.items())


@cache
def stored_help() -> dict[str, str]:
    """stored_help reads HELP_FILE: verb → the text its `-h` prints ("" for caractrl's own)."""
    texts: dict[str, str] = {}
    key: str | None = None
    for line in HELP_FILE.read_text(encoding="utf-8").splitlines():
        if line == HELP_HEAD or line.startswith(HELP_HEAD + " "):
            key = line.removeprefix(HELP_HEAD).strip()
            texts[key] = ""
        elif key is not None:
            texts[key] += line + "\n"
    return {verb: text.removesuffix("\n") for verb, text in texts.items()}


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


def asks_help(args: list[str]) -> bool:
    """asks_help says whether a verb's arguments hold -h or --help (before any `--`), as click would read them."""
    for arg in args:
        if arg == "--":
            return False
        if arg in HELP_FLAGS:
            return True
    return False


class _Verbs(click.Group):
    """_Verbs is a click group whose commands come from VERBS, each imported on first use; help is static."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args))

    def get_help(self, ctx: click.Context) -> str:
        return stored_help()[""]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # Not while completing (resilient parsing): a `-h` on the line being completed is not a request for help.
        if not ctx.resilient_parsing and args and args[0] in VERBS and asks_help(args[1:]):
            click.echo(stored_help()[args[0]], color=ctx.color)
            ctx.exit(0)
        return super().resolve_command(ctx, args)

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


def rendered_help() -> dict[str, str]:
    """rendered_help is what click writes for `caractrl -h` ("") and each `caractrl VERB -h`, at HELP_WIDTH: the
    texts scripts/caractrl-help stores in HELP_FILE. It imports every verb."""
    root = click.Context(cli, info_name="caractrl", terminal_width=HELP_WIDTH, **cli.context_settings)
    texts = {"": click.Group.get_help(cli, root)}
    for verb in sorted(VERBS):
        command = cli.get_command(root, verb)
        assert command is not None
        texts[verb] = command.get_help(click.Context(command, info_name=verb, parent=root))
    return texts


def main() -> None:
    """main is the console script: the process environment is read here, once."""
    cli.main(prog_name="caractrl", obj=Env(environ=dict(os.environ)))
