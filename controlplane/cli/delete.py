"""`caractrl delete node|project NAME [--force]`: remove one object; a placed Project first goes Terminating."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .context import Env, check_name, resolve_kind, run

if TYPE_CHECKING:
    from controlplane.client import Client


@click.command()
@click.argument("resource")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete at once, without waiting for the node to stop a Project.")
@click.pass_obj
def delete(env: Env, resource: str, name: str, force: bool) -> None:
    """Delete a Node or a Project."""
    kind = resolve_kind(resource)
    check_name(name)

    async def remove(client: Client) -> bool:
        if kind == "node":
            await client.delete_node(name, force=force)
            return True
        return await client.delete_project(name, force=force)

    gone_now = run(env, remove)
    click.echo(f"{kind}/{name} {'deleted' if gone_now else 'terminating'}")
