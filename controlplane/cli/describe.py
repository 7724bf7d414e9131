"""`caractrl describe node|project NAME`: every field of one object, its conditions and a Node's recent history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import printers
from .context import Env, check_name, resolve_kind, run

if TYPE_CHECKING:
    from controlplane.api import Node, NodeHistory, Project
    from controlplane.client import Client


@click.command()
@click.argument("resource")
@click.argument("name")
@click.pass_obj
def describe(env: Env, resource: str, name: str) -> None:
    """Show every field of one Node or Project."""
    kind = resolve_kind(resource)
    check_name(name)

    from controlplane.client import NotFound

    async def fetch(client: Client) -> tuple[Node | Project, NodeHistory | None]:
        if kind == "project":
            return await client.get_project(name), None
        node = await client.get_node(name)
        try:
            return node, await client.history(name)
        except NotFound:  # a server without history (older than issue 7), or the Node was deleted meanwhile
            return node, None

    obj, history = run(env, fetch)
    lines = [printers.describe(obj, env.now())]
    if history is not None:
        lines += printers.history_lines(history)
    click.echo("\n".join(lines))
