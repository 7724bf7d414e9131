"""`caractrl get events [--for KIND/NAME] [-w]`: the control plane's Events with kubectl's columns, and following
them through the server's watch of Events (`GET /api/v1/events?watch=true`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

import click

from controlplane.client import Client

from . import printers
from .context import Env, check_name, fail, run

# `get` imports this module, and `get nodes` loads no models: the Event model is named for the type checker, and
# EventList is imported where -o json|yaml prints Events.
if TYPE_CHECKING:
    from controlplane.api import Event

#: The resource words that mean Events.
EVENT_WORDS: Final = frozenset({"events", "event", "ev"})
#: `--for` kinds as a person types them → the API's kind.
FOR_KINDS: Final = {"node": "Node", "nodes": "Node", "project": "Project", "projects": "Project"}
#: kubectl's columns of `get events`.
HEADERS: Final = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")


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


def _echo(events: Sequence[Event], output: str | None, env: Env, widths: list[int]) -> None:
    """_echo prints events: json or yaml documents, or table rows (with the header while widths is empty) padded to
    at least the widths already printed, so that followed rows stay under the listing's columns; widths grows."""
    if output in ("json", "yaml"):
        for event in events:
            wire = event.to_wire()
            click.echo(printers.to_json(wire) if output == "json" else "---\n" + printers.to_yaml(wire))
        return
    lines = rows(events, env.now())
    headed = not widths
    if headed:
        widths.extend(len(header) for header in HEADERS)
    widths[:] = [max(width, *(len(row[i]) for row in lines)) for i, width in enumerate(widths)]
    padded = [[*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)), row[-1]] for row in lines]
    text = printers.table(HEADERS, padded)
    click.echo(text if headed else "\n".join(text.splitlines()[1:]))


def get_events(env: Env, *, for_: str | None, watch: bool, output: str | None, timeout: float | None) -> None:
    """get_events prints the kept Events (about --for's object), then with watch the new ones as they come."""
    kind, name = parse_for(for_)
    if output not in (None, "", "json", "yaml"):
        raise fail(f"-o {output}: Events print as a table, json or yaml")
    if watch:
        _follow(env, kind, name, output, timeout)
        return

    async def fetch(client: Client) -> list[Event]:
        return list((await client.list_events(kind=kind, name=name)).items)

    listed = run(env, fetch)
    if output in ("json", "yaml"):
        from controlplane.api import EventList

        whole = EventList(items=listed).to_wire()
        click.echo(printers.to_json(whole) if output == "json" else printers.to_yaml(whole))
    elif listed:
        _echo(listed, output, env, [])
    else:
        click.echo("No resources found", err=True)


def _follow(env: Env, kind: str | None, name: str | None, output: str | None, timeout: float | None) -> None:
    """_follow prints the kept Events, then each new one, from the server's watch of Events; it opens the watch
    again when the server ends it, until Ctrl-C or `timeout` seconds. A watch opens with the kept Events (the
    listing), so each reopening skips those already printed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    printed: set[str] = set()
    widths: list[int] = []  # of the table printed so far (none yet: the next rows come with the header)

    def show(events: list[Event]) -> None:
        fresh = [e for e in events if e.metadata.name not in printed]
        if fresh:
            _echo(fresh, output, env, widths)
            printed.update(e.metadata.name for e in fresh)

    async def follow(client: Client) -> None:
        nonlocal printed
        while deadline is None or time.monotonic() < deadline:
            left = None if deadline is None else deadline - time.monotonic()
            listing: list[Event] | None = []
            async for type_, event in client.watch_events(kind=kind, name=name, timeout_s=left):
                if event is None:  # BOOKMARK: the listing is complete
                    if listing is not None:
                        show(listing)
                        # What a later reopening can list again: this listing and what follows it.
                        printed = {e.metadata.name for e in listing}
                    listing = None
                elif listing is not None:
                    listing.append(event)
                elif type_ == "ADDED":
                    show([event])

    try:
        run(env, follow)
    except KeyboardInterrupt:  # Ctrl-C is how following ends: no traceback
        return
