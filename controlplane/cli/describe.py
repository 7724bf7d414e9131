"""`caractrl describe TYPE NAME... | TYPE/NAME...`: every field of each object, its conditions, a Node's history and
availability, and the object's last Events."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import click

from controlplane.api import EventList, Node, NodeAvailability, NodeHistory, Project
from controlplane.client import Client, NotFound

from . import pages
from .context import Env, complete_kind, complete_name, fail, resolve_targets, run

T = TypeVar("T")

#: Events `describe` shows: the newest, as kubectl does.
EVENTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Described:
    """Described is what one `describe` page prints: the object and what the server keeps about it."""

    obj: Node | Project
    history: NodeHistory | None
    availability: NodeAvailability | None
    events: EventList | None


async def _optional(call: Awaitable[T]) -> T | None:
    """_optional is call's answer, or None when the server does not know the route (or the object went away)."""
    try:
        return await call
    except NotFound:
        return None


@click.command()
@click.argument("resource", shell_complete=complete_kind)
@click.argument("names", nargs=-1, shell_complete=complete_name)
@click.pass_obj
def describe(env: Env, resource: str, names: tuple[str, ...]) -> None:
    """Show every field of Nodes or Projects, by NAME or TYPE/NAME."""
    targets = resolve_targets(resource, names)
    if any(name is None for _, name in targets):
        raise fail("describe needs a NAME (or TYPE/NAME)")

    async def fetch(client: Client) -> list[Described]:
        found: list[Described] = []
        for kind, name in targets:
            assert name is not None
            api_kind = "Project" if kind == "project" else "Node"
            events = await _optional(client.list_events(kind=api_kind, name=name, limit=EVENTS_SHOWN))
            if kind == "project":
                found.append(Described(await client.get_project(name), None, None, events))
                continue
            node = await client.get_node(name)
            # Each is None from a server that predates it (history: issue 7; availability and events: issue 14).
            history = await _optional(client.history(name))
            found.append(Described(node, history, await _optional(client.availability(name)), events))
        return found

    shown = []
    now = env.now()
    for page in run(env, fetch):
        lines = [pages.describe(page.obj, now)]
        if page.history is not None:
            lines += pages.history_lines(page.history)
        if page.availability is not None:
            lines += pages.availability_lines(page.availability)
        if page.events is not None:
            lines += pages.events_lines(page.events.items, now)
        shown.append("\n".join(lines))
    click.echo("\n\n".join(shown))
