"""`caractrl get events [--for KIND/NAME] [-w]`: the control plane's Events with kubectl's columns, and following."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import click

from . import printers
from .context import Env, check_name, fail, run

if TYPE_CHECKING:
    from controlplane.api import Event
    from controlplane.client import Client

#: The resource words that mean Events.
EVENT_WORDS: Final = frozenset({"events", "event", "ev"})
#: `--for` kinds as a person types them → the API's kind.
FOR_KINDS: Final = {"node": "Node", "nodes": "Node", "project": "Project", "projects": "Project"}
#: kubectl's columns of `get events`.
HEADERS: Final = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
#: Seconds between two reads while following (-w): the server keeps no stream of Events, so -w polls.
FOLLOW_INTERVAL: Final = 2.0
#: Events read per poll: more than a busy fleet records in FOLLOW_INTERVAL.
FOLLOW_LIMIT: Final = 500


def parse_for(value: str | None) -> tuple[str | None, str | None]:
    """parse_for reads `--for node/NAME` (or project/NAME) into the API's (kind, name); raises Failure."""
    if value is None:
        return None, None
    word, sep, name = value.partition("/")
    kind = FOR_KINDS.get(word.lower())
    if not sep or kind is None or not name:
        raise fail(f'--for: "{value}" is not of the form node/NAME or project/NAME')
    return kind, check_name(name)


def rows(events: Sequence[Event], now: datetime) -> list[list[str]]:
    """rows are the table rows of events, as kubectl prints them (the object as kind/name, lower case)."""
    return [
        [
            printers.age(e.last_timestamp or e.metadata.created_at, now),
            e.type.value,
            e.reason,
            f"{e.involved_object.kind.lower()}/{e.involved_object.name}",
            e.message + (f" (by {e.actor})" if e.actor else ""),
        ]
        for e in events
    ]


def _echo(events: Sequence[Event], output: str | None, env: Env, *, headers: bool) -> None:
    if output in ("json", "yaml"):
        for event in events:
            wire = event.to_wire()
            click.echo(printers.to_json(wire) if output == "json" else "---\n" + printers.to_yaml(wire))
        return
    text = printers.table(HEADERS, rows(events, env.now()))
    click.echo(text if headers else "\n".join(text.splitlines()[1:]))


def get_events(env: Env, *, for_: str | None, watch: bool, output: str | None, timeout: float | None) -> None:
    """get_events prints the kept Events (about --for's object), then with watch the new ones as they come."""
    kind, name = parse_for(for_)
    if output not in (None, "", "json", "yaml"):
        raise fail(f"-o {output}: Events print as a table, json or yaml")

    async def fetch(client: Client) -> list[Event]:
        return list((await client.list_events(kind=kind, name=name)).items)

    listed = run(env, fetch)
    if output in ("json", "yaml") and not watch:
        from controlplane.api import EventList

        whole = EventList(items=listed).to_wire()
        click.echo(printers.to_json(whole) if output == "json" else printers.to_yaml(whole))
        return
    if listed:
        _echo(listed, output, env, headers=True)
    elif not watch:
        click.echo("No resources found", err=True)
        return
    if watch:
        _follow(env, kind, name, {e.metadata.name for e in listed}, output, timeout, headers=not listed)


def _follow(
    env: Env,
    kind: str | None,
    name: str | None,
    seen: set[str],
    output: str | None,
    timeout: float | None,
    *,
    headers: bool,
) -> None:
    """_follow polls for Events not seen yet every FOLLOW_INTERVAL s until Ctrl-C or `timeout` seconds."""
    import asyncio

    deadline = None if timeout is None else time.monotonic() + timeout
    first = [headers]

    async def poll(client: Client) -> None:
        while deadline is None or time.monotonic() < deadline:
            found = (await client.list_events(kind=kind, name=name, limit=FOLLOW_LIMIT)).items
            new = [e for e in found if e.metadata.name not in seen]
            if new:
                seen.update(e.metadata.name for e in new)
                _echo(new, output, env, headers=first[0])
                first[0] = False
            left = FOLLOW_INTERVAL if deadline is None else min(FOLLOW_INTERVAL, deadline - time.monotonic())
            if left > 0:
                await asyncio.sleep(left)

    try:
        run(env, poll)
    except KeyboardInterrupt:  # Ctrl-C is how following ends: no traceback
        return
