"""`caractrl cordon|uncordon NODE`: stop or resume scheduling new Projects onto a Node."""

from __future__ import annotations

import click

from controlplane.client import Client

from .context import Env, check_name, run


@click.command()
@click.argument("node")
@click.pass_obj
def cordon(env: Env, node: str) -> None:
    """Mark a Node unschedulable; its Projects keep running."""
    check_name(node)

    async def act(client: Client) -> None:
        await client.cordon(node)

    run(env, act)
    click.echo(f"node/{node} cordoned")


@click.command()
@click.argument("node")
@click.pass_obj
def uncordon(env: Env, node: str) -> None:
    """Make a Node schedulable again (this also ends Draining)."""
    check_name(node)

    async def act(client: Client) -> None:
        await client.uncordon(node)

    run(env, act)
    click.echo(f"node/{node} uncordoned")
