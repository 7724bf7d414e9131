"""GET /api/v1/events: the Events the control plane kept, newest last, optionally about one object; with watch=true,
those and then each new one as a stream (controlplane.server.watch)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response

from controlplane.api import EventList, InvalidObject

from ..context import CallerDep, Ctx
from ..events import EventFeed
from ..identity import require_reader
from ..problems import problem_responses
from ..watch import watch_response, watch_responses
from ._common import TimeoutSeconds, WatchFlag, parse_selector, wire

router = APIRouter(prefix="/api/v1/events", tags=["events"])

#: The kinds an Event can be about.
KINDS: Final = ("Node", "Project", "ControlPlane")
#: Events answered when the request does not say (the newest ones).
DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 10_000


@router.get("", responses={**watch_responses(EventList), **problem_responses(400)})
async def list_events(
    request: Request,
    context: Ctx,
    caller: CallerDep,
    kind: Annotated[str | None, Query(description=f"Only Events about this kind: one of {', '.join(KINDS)}.")] = None,
    name: Annotated[str | None, Query(description="Only Events about the object of this name.", max_length=253)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The newest this many.")] = DEFAULT_LIMIT,
    watch: WatchFlag = False,
    timeout_seconds: TimeoutSeconds = None,
) -> Response:
    """list_events answers the newest `limit` kept Events (about kind/name when given), oldest first (viewer); with
    watch=true, a stream: those Events ADDED, a BOOKMARK, then each new one ADDED as it is stored."""
    require_reader(caller)
    if kind is not None and kind not in KINDS:
        raise InvalidObject([f"kind: must be one of {', '.join(KINDS)}"])
    if watch:
        feed = EventFeed(context.store, kind=kind, name=name, first=limit)
        return watch_response(feed, parse_selector(None), timeout_seconds, request, context.stopping)
    items = await context.store.list_events(kind=kind, name=name, limit=limit)
    return wire(EventList(items=items))
