"""`caractrl describe TYPE NAME... | TYPE/NAME...`: every field of each object, its conditions and a Node's history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import printers
from .context import Env, complete_kind, complete_name, fail, resolve_targets, run

if TYPE_CHECKING:
    from controlplane.api import Node, NodeHistory, Project
    from controlplane.client import Client


@click.command()
@click.argument("resource", shell_complete=complete_kind)
@click.argument("names", nargs=-1, shell_complete=complete_name)
@click.pass_obj
def describe(env: Env, resource: str, names: tuple[str, ...]) -> None:
    """Show every field of Nodes or Projects, by NAME or TYPE/NAME."""
    targets = resolve_targets(resource, names)
    if any(name is None for _, name in targets):
        raise fail("describe needs a NAME (or TYPE/NAME)")

    from controlplane.client import NotFound

    async def fetch(client: Client) -> list[tuple[Node | Project, NodeHistory | None]]:
        found: list[tuple[Node | Project, NodeHistory | None]] = []
        for kind, name in targets:
            assert name is not None
            if kind == "project":
                found.append((await client.get_project(name), None))
                continue
            node = await client.get_node(name)
            try:
                found.append((node, await client.history(name)))
            except NotFound:  # a server without history (older than issue 7), or the Node was deleted meanwhile
                found.append((node, None))
        return found

    pages = []
    for obj, history in run(env, fetch):
        lines = [printers.describe(obj, env.now())]
        if history is not None:
            lines += printers.history_lines(history)
        pages.append("\n".join(lines))
    click.echo("\n\n".join(pages))
