"""`caractrl delete TYPE NAME... | TYPE/NAME... | -f FILE`: remove objects; a placed Project first goes Terminating.

`--force` is for Projects only (delete at once, without waiting for the node to stop it). A Node is never forced:
drain it and wait for its Projects to leave, then delete it.
"""

from __future__ import annotations

import click

from controlplane.client import Client

from .apply import load_all
from .context import Env, Kind, complete_kind, complete_name, fail, resolve_kind, resolve_targets, run


@click.command()
@click.argument("resource", required=False, shell_complete=complete_kind)
@click.argument("names", nargs=-1, shell_complete=complete_name)
@click.option("-f", "--filename", "filenames", multiple=True, help="Delete the objects of these manifests.")
@click.option("-R", "--recursive", is_flag=True, help="With -f DIR: also read the folders below it.")
@click.option("--force", is_flag=True, help="Projects only: delete at once, without waiting for the node to stop them.")
@click.pass_obj
def delete(
    env: Env, resource: str | None, names: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, force: bool
) -> None:
    """Delete Nodes or Projects, by NAME, TYPE/NAME or the manifests that made them."""
    targets: list[tuple[Kind, str]] = []
    if filenames:
        if resource is not None:
            raise fail("give either -f FILE or TYPE NAME, not both")
        targets = [(resolve_kind(m.obj.kind), m.obj.name) for m in load_all(filenames, recursive)]
    elif resource is None:
        raise fail("give TYPE NAME..., TYPE/NAME... or -f FILE")
    else:
        for kind, name in resolve_targets(resource, names):
            if name is None:
                raise fail("delete needs a NAME (or TYPE/NAME, or -f FILE)")
            targets.append((kind, name))
    if force and any(kind == "node" for kind, _ in targets):
        raise fail("--force applies to Projects only; drain a Node and wait for its Projects to leave")

    async def remove(client: Client) -> list[bool]:
        done: list[bool] = []
        for kind, name in targets:
            if kind == "node":
                await client.delete_node(name)
                done.append(True)
            else:
                done.append(await client.delete_project(name, force=force))
        return done

    for (kind, name), gone_now in zip(targets, run(env, remove), strict=True):
        click.echo(f"{kind}/{name} {'deleted' if gone_now else 'terminating'}")
