"""`caractrl drain NODE`: cordon a Node, mark it Draining, and wait until its Projects have left (or --timeout)."""

from __future__ import annotations

import asyncio
import time

import click

from controlplane.api import ProjectPhase, parse_duration
from controlplane.client import Client

from .context import Env, check_name, fail, run

#: Phases in which a Project still occupies its Node.
PLACED = ("Scheduled", "Running", "Terminating")
#: Seconds between two looks at the Node's Projects.
POLL_S = 1.0


@click.command()
@click.argument("node")
@click.option("--timeout", default="5m", show_default=True, help="How long to wait for the Projects to leave.")
@click.option("--no-wait", is_flag=True, help="Return once the Node is Draining, without waiting.")
@click.pass_obj
def drain(env: Env, node: str, timeout: str, no_wait: bool) -> None:
    """Cordon a Node and move its Projects away; `uncordon` ends it."""
    check_name(node)
    try:
        limit = parse_duration(timeout)
    except ValueError as exc:
        raise fail(f"--timeout: {exc}") from None

    async def act(client: Client) -> list[str]:
        await client.drain(node)
        if no_wait:  # today's behaviour: the Node is Draining; its Projects move in the background
            return []
        click.echo(f"node/{node} cordoned and draining")
        deadline = time.monotonic() + limit
        shown: set[str] = set()
        phases = [ProjectPhase(p) for p in PLACED]
        while True:
            left = [p.name for p in (await client.list_projects(phases=phases, node_ref=node)).items]
            for name in sorted(shown - set(left)):
                click.echo(f"project/{name} left node/{node}")
            if not shown:
                for name in left:
                    click.echo(f"waiting for project/{name} to leave")
            shown = set(left) | (shown & set(left))
            if not left or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(POLL_S)

    left = run(env, act)
    if left:
        raise fail(
            f"timed out after {timeout} waiting for {len(left)} project(s) to leave node/{node}: {', '.join(left)}"
        )
    click.echo(f"node/{node} drained")
