"""`caractrl logs PROJECT/SERVICE [-f] [--tail N] [--timestamps]`: a service's output, from its Node's agent."""

from __future__ import annotations

import sys

import click
import httpx

from controlplane.client import Client

from .agent_link import agent_address, agent_error, split_target
from .context import Env, check_name, fail, run


def logs_params(follow: bool, tail: int | None, timestamps: bool) -> dict[str, str]:
    """logs_params is the query the Go caractl sends: each flag only when set."""
    params: dict[str, str] = {}
    if follow:
        params["follow"] = "true"
    if tail is not None:
        params["tail"] = str(tail)
    if timestamps:
        params["timestamps"] = "true"
    return params


@click.command()
@click.argument("target", metavar="PROJECT/SERVICE")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new output.")
@click.option("--tail", type=click.IntRange(min=0), default=None, help="Only the last N lines (default: all).")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.option("--node", metavar="NAME|HOST:PORT", help="Ask this Node's agent (skips the Project lookup).")
@click.pass_obj
def logs(env: Env, target: str, follow: bool, tail: int | None, timestamps: bool, node: str | None) -> None:
    """Print a service's stdout and stderr, as its Node's agent streams them."""
    project, service = split_target(target)
    check_name(project)

    async def act(client: Client) -> None:
        address = await agent_address(client, project, node, socket=env.socket)
        url = f"http://{address}/api/v1/logs/{project}/{service}"
        out = sys.stdout.buffer
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as http,
                http.stream("GET", url, params=logs_params(follow, tail, timestamps)) as response,
            ):
                if response.status_code != 200:
                    raise fail(agent_error(response.status_code, await response.aread()))
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    out.flush()
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the agent at {address}: {exc}") from None

    try:
        run(env, act)
    except KeyboardInterrupt:
        return
