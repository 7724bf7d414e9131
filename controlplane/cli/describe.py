"""`caractrl describe node|project NAME`: every field of one object, its conditions, a Node's recent history and
availability, and the object's last Events."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import click

from . import printers
from .context import Env, check_name, resolve_kind, run

if TYPE_CHECKING:
    from controlplane.api import EventList, Node, NodeAvailability, NodeHistory, Project
    from controlplane.client import Client


T = TypeVar("T")


@click.command()
@click.argument("resource")
@click.argument("name")
@click.pass_obj
def describe(env: Env, resource: str, name: str) -> None:
    """Show every field of one Node or Project."""
    kind = resolve_kind(resource)
    check_name(name)

    async def fetch(client: Client) -> Described:
        api_kind = "Project" if kind == "project" else "Node"
        events = await _optional(client.list_events(kind=api_kind, name=name, limit=EVENTS_SHOWN))
        if kind == "project":
            return Described(await client.get_project(name), None, None, events)
        node = await client.get_node(name)
        # Each is None from a server that predates it (history: issue 7; availability and events: issue 14).
        history = await _optional(client.history(name))
        return Described(node, history, await _optional(client.availability(name)), events)

    found = run(env, fetch)
    now = env.now()
    lines = [printers.describe(found.obj, now)]
    if found.history is not None:
        lines += printers.history_lines(found.history)
    if found.availability is not None:
        lines += printers.availability_lines(found.availability)
    if found.events is not None:
        lines += printers.events_lines(found.events.items, now)
    click.echo("\n".join(lines))


#: Events `describe` shows: the newest, as kubectl does.
EVENTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class Described:
    """Described is what one `describe` prints: the object and what the server keeps about it."""

    obj: Node | Project
    history: NodeHistory | None
    availability: NodeAvailability | None
    events: EventList | None


async def _optional(call: Awaitable[T]) -> T | None:
    """_optional is call's answer, or None when the server does not know the route (or the object went away)."""
    from controlplane.client import NotFound

    try:
        return await call
    except NotFound:
        return None
