"""Watches of any kind: `GET /api/v1/<kind>?watch=true` streams newline-delimited JSON events.

The stream opens with an ADDED event for every object the selector matches now, then one BOOKMARK event (the
client's table is complete), then ADDED / MODIFIED / DELETED as the store changes, until timeoutSeconds pass or the
client goes away. An object that stops matching the selector is DELETED from the watch, as in Kubernetes. A kind
plugs in with a Source: Nodes read only what changed through the store's revisions; Events, which are never changed,
come from the store's change feed (controlplane.server.events.EventFeed: each one ADDED once, nothing remembered);
any other kind is compared document by document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

from fastapi import Request
from fastapi.responses import StreamingResponse

from controlplane.api import Node, Selector
from controlplane.store.base import Store

#: How often a watch looks at the store.
POLL_S: Final = 0.5
#: The longest a watch stays open (Kubernetes' default is 30 to 60 min); clients open a new one when it ends.
MAX_TIMEOUT_S: Final = 1800
NDJSON: Final = "application/x-ndjson"

#: The JSON Schema of one line of a watch, published in /openapi.json.
WATCH_EVENT_SCHEMA: Final[dict[str, Any]] = {
    "title": "WatchEvent",
    "description": "One line of a watch stream: ADDED, MODIFIED, DELETED (object is the object) or BOOKMARK.",
    "type": "object",
    "required": ["type", "object"],
    "properties": {
        "type": {"type": "string", "enum": ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]},
        "object": {"type": "object"},
    },
}


def watch_responses(list_model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """watch_responses documents a list route's 200: the list as JSON, or with watch=true a stream of events."""
    return {200: {"model": list_model, "content": {NDJSON: {"schema": WATCH_EVENT_SCHEMA}}}}


JSONObject = dict[str, Any]


class Source(Protocol):
    """Source reports, each time it is asked, every object of one kind that changed since it was last asked.

    An append_only Source reports each object once and never deletes one, so the watch need not remember what it
    showed (a watch of Events stays small however long it runs)."""

    append_only: bool

    async def changes(self) -> tuple[dict[str, JSONObject], list[str]]:
        """changes returns (name → wire of each object created or changed, names deleted) since the last call."""
        ...


class NodeSource:
    """NodeSource watches Nodes through Store.list_nodes_changed: a quiet fleet costs no decodes."""

    append_only = False

    def __init__(self, store: Store, show: Callable[[Node], JSONObject]) -> None:
        self._store, self._show = store, show
        self._revisions: dict[str, int] = {}

    async def changes(self) -> tuple[dict[str, JSONObject], list[str]]:
        found = await self._store.list_nodes_changed(self._revisions)
        self._revisions = found.revisions
        return {node.name: self._show(node) for node in found.changed}, found.deleted


class ListSource:
    """ListSource watches any kind by listing it and comparing each document with the last one seen."""

    append_only = False

    def __init__(self, list_all: Callable[[], Awaitable[list[JSONObject]]]) -> None:
        self._list_all = list_all
        self._seen: dict[str, JSONObject] = {}

    async def changes(self) -> tuple[dict[str, JSONObject], list[str]]:
        now = {obj["metadata"]["name"]: obj for obj in await self._list_all()}
        changed = {name: obj for name, obj in now.items() if self._seen.get(name) != obj}
        deleted = [name for name in self._seen if name not in now]
        self._seen = now
        return changed, deleted


def _event(kind: str, obj: Mapping[str, Any]) -> bytes:
    return (json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n").encode()


async def events(
    source: Source,
    selector: Selector,
    timeout_s: float,
    request: Request,
    stopping: asyncio.Event,
    poll_s: float = POLL_S,
) -> AsyncIterator[bytes]:
    """events yields the encoded events of one watch (see the module's docstring); it ends when timeout_s pass, the
    client goes away or the server begins to stop (stopping is set)."""
    shown: dict[str, JSONObject] = {}
    deadline = time.monotonic() + timeout_s
    first = True
    while True:
        changed, deleted = await source.changes()
        for name in deleted:
            if name in shown:
                yield _event("DELETED", shown.pop(name))
        for name, obj in changed.items():
            labels = obj.get("metadata", {}).get("labels")
            if not selector.matches(labels if isinstance(labels, dict) else None):
                if name in shown:
                    yield _event("DELETED", shown.pop(name))
                continue
            yield _event("MODIFIED" if name in shown else "ADDED", obj)
            if not source.append_only:
                shown[name] = obj
        if first:
            yield _event("BOOKMARK", {})
            first = False
        if time.monotonic() >= deadline or stopping.is_set() or await request.is_disconnected():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), min(poll_s, max(0.0, deadline - time.monotonic())))


def watch_response(
    source: Source, selector: Selector, timeout_s: int | None, request: Request, stopping: asyncio.Event
) -> StreamingResponse:
    """watch_response streams a watch of source as newline-delimited JSON."""
    limit = min(timeout_s or MAX_TIMEOUT_S, MAX_TIMEOUT_S)  # MAX_TIMEOUT_S read now: the fuzzers lower it
    return StreamingResponse(events(source, selector, limit, request, stopping), media_type=NDJSON)
