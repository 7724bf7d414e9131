"""`caractrl describe node|project NAME`: every field of one object, with its conditions as a table."""

from __future__ import annotations

import click

from controlplane.api import Node, Project
from controlplane.client import Client

from . import printers
from .context import Env, check_name, resolve_kind, run


@click.command()
@click.argument("resource")
@click.argument("name")
@click.pass_obj
def describe(env: Env, resource: str, name: str) -> None:
    """Show every field of one Node or Project."""
    kind = resolve_kind(resource)
    check_name(name)

    async def fetch(client: Client) -> Node | Project:
        return await (client.get_node(name) if kind == "node" else client.get_project(name))

    click.echo(printers.describe(run(env, fetch), env.now()))
