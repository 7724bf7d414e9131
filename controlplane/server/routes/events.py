"""GET /api/v1/events: the Events the control plane kept, newest last, optionally about one object."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from controlplane.api import EventList, InvalidObject

from ..context import CallerDep, Ctx
from ..identity import require_reader
from ..problems import problem_responses
from ._common import wire

router = APIRouter(prefix="/api/v1/events", tags=["events"])

#: The kinds an Event can be about.
KINDS: Final = ("Node", "Project", "ControlPlane")
#: Events answered when the request does not say (the newest ones).
DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 10_000


@router.get("", responses={200: {"model": EventList}, **problem_responses(400)})
async def list_events(
    context: Ctx,
    caller: CallerDep,
    kind: Annotated[str | None, Query(description=f"Only Events about this kind: one of {', '.join(KINDS)}.")] = None,
    name: Annotated[str | None, Query(description="Only Events about the object of this name.", max_length=253)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The newest this many.")] = DEFAULT_LIMIT,
) -> JSONResponse:
    """list_events answers the newest `limit` kept Events (about kind/name when given), oldest first (viewer)."""
    require_reader(caller)
    if kind is not None and kind not in KINDS:
        raise InvalidObject([f"kind: must be one of {', '.join(KINDS)}"])
    items = await context.store.list_events(kind=kind, name=name, limit=limit)
    return wire(EventList(items=items))
