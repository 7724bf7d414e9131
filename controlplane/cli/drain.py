"""`caractrl drain NODE`: cordon a Node, mark it Draining and send its Projects back to be scheduled elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .context import Env, check_name, run

if TYPE_CHECKING:
    from controlplane.client import Client


@click.command()
@click.argument("node")
@click.pass_obj
def drain(env: Env, node: str) -> None:
    """Cordon a Node and move its Projects away; `uncordon` ends it."""
    check_name(node)

    async def act(client: Client) -> None:
        await client.drain(node)

    run(env, act)
    click.echo(f"node/{node} drained")
