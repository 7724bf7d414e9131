"""`caractrl port-forward PROJECT/SERVICE LOCAL:REMOTE`: a local TCP port carried to a container's port.

Each connection accepted on 127.0.0.1:LOCAL opens one WebSocket to the agent's
/api/v1/forward/{project}/{service}/{REMOTE}; bytes go both ways as binary messages, as with the Go caractl.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import click
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from controlplane.client import Client

from .agent_link import agent_address, agent_error, split_target
from .context import Env, check_name, fail, run

READ_SIZE: Final = 32 * 1024


def parse_ports(spec: str) -> tuple[int, int]:
    """parse_ports reads LOCAL:REMOTE (or PORT for both); raises Failure naming the argument."""
    local, sep, remote = spec.partition(":")
    remote = remote if sep else local
    try:
        ports = int(local), int(remote)
    except ValueError:
        raise fail(f'invalid ports "{spec}": expected LOCAL:REMOTE') from None
    if not all(1 <= port <= 65535 for port in ports):
        raise fail(f'invalid ports "{spec}": each must be 1-65535')
    return ports


async def carry(url: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """carry connects one local connection to a forward WebSocket at url until either side ends."""
    try:
        async with connect(url, compression=None, max_size=None, open_timeout=10) as ws:

            async def up() -> None:
                while data := await reader.read(READ_SIZE):
                    await ws.send(data)
                await ws.close()

            async def down() -> None:
                async for message in ws:
                    writer.write(message if isinstance(message, bytes) else message.encode())
                    await writer.drain()

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except InvalidStatus as exc:
        message = agent_error(exc.response.status_code, bytes(exc.response.body or b""))
        click.echo(f"Error: {message}", err=True)
    except (OSError, WebSocketException, TimeoutError) as exc:
        click.echo(f"Error: forward failed: {exc}", err=True)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(url: str, local: int, ready: asyncio.Event | None = None) -> None:
    """serve listens on 127.0.0.1:local and carries every accepted connection to url, until cancelled."""

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await carry(url, reader, writer)

    try:
        server = await asyncio.start_server(accepted, "127.0.0.1", local)
    except OSError as exc:
        raise fail(f"cannot listen on 127.0.0.1:{local}: {exc.strerror or exc}") from None
    async with server:
        if ready is not None:
            ready.set()
        await server.serve_forever()


@click.command("port-forward")
@click.argument("target", metavar="PROJECT/SERVICE")
@click.argument("ports", metavar="LOCAL:REMOTE")
@click.option("--node", metavar="NAME|HOST:PORT", help="Use this Node's agent (skips the Project lookup).")
@click.pass_obj
def port_forward(env: Env, target: str, ports: str, node: str | None) -> None:
    """Forward 127.0.0.1:LOCAL to port REMOTE of a service's container, through its Node's agent."""
    project, service = split_target(target)
    check_name(project)
    local, remote = parse_ports(ports)

    async def act(client: Client) -> None:
        address = await agent_address(client, project, node, socket=env.socket)
        click.echo(f"Forwarding 127.0.0.1:{local} -> {project}/{service}:{remote}", err=True)
        await serve(f"ws://{address}/api/v1/forward/{project}/{service}/{remote}", local)

    try:
        run(env, act)
    except KeyboardInterrupt:
        return
