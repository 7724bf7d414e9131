"""`caractrl version`: this client's version and, unless --client, which server it talks to and whether it is up."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import click

from controlplane.client import Client, InvalidResponse, NotFound

from .context import Env, run

DISTRIBUTION = "caravanserai-mesh"


def client_version() -> str:
    """client_version is the installed distribution's version ("unknown" when run from a bare checkout)."""
    try:
        return package_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


@click.command()
@click.option("--client", "client_only", is_flag=True, help="Print the client version only; do not contact a server.")
@click.pass_obj
def version(env: Env, client_only: bool) -> None:
    """Print the client and server versions, and the server's address and health."""
    click.echo(f"Client Version: {client_version()}")
    if client_only:
        return

    async def ask(client: Client) -> tuple[str, str, str]:
        try:
            server = str((await client.version()).get("version", "unknown"))
        except (NotFound, InvalidResponse):  # a server older than /api/version
            server = "unknown"
        return client.base_url, server, await client.healthz()

    url, server, answer = run(env, ask)
    click.echo(f"Server Version: {server}")
    click.echo(f"Server: {url} (healthz: {answer})")
