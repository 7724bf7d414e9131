"""Throughput routes (design §6): a timed download stream and a discarding upload sink for agents' measurements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..context import get_caller
from ..identity import Caller, Forbidden, Role
from ..problems import Problem

router = APIRouter(prefix="/api/v1/throughput", tags=["throughput"])

CallerDep = Annotated[Caller, Depends(get_caller)]

#: Longest download a caller may ask for, in seconds: a measurement is time-boxed, and so is what it costs us.
MAX_SECONDS: Final = 10.0
#: Longest an upload may run before the sink stops reading (the same bound, plus slack for a slow start).
MAX_UPLOAD_SECONDS: Final = MAX_SECONDS + 2.0
#: One chunk of the download stream; preallocated once, so streaming costs no allocation per chunk.
CHUNK: Final = bytes(64 * 1024)


def _require_measurer(caller: Caller) -> None:
    """_require_measurer lets nodes (the agents) and admins measure; viewers and strangers may not load the server."""
    if caller.role not in (Role.NODE, Role.ADMIN):
        raise Forbidden(f"{caller.role} {caller.name!r} may not run throughput tests; a node or admin role is needed")


async def _stream(seconds: float) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield CHUNK
        await asyncio.sleep(0)  # let other requests (heartbeats) run between chunks


@router.get("/download")
async def download(caller: CallerDep, seconds: Annotated[str, Query()] = "3") -> StreamingResponse:
    """download streams zero bytes for `seconds` (0 < seconds <= 10); the client measures what arrives."""
    _require_measurer(caller)
    try:
        wanted = float(seconds)
    except ValueError:
        wanted = float("nan")
    if not 0 < wanted <= MAX_SECONDS:  # NaN fails this too
        raise Problem(400, "bad throughput parameters", [f"seconds: must be a number in (0, {MAX_SECONDS:g}]"])
    return StreamingResponse(
        _stream(wanted), media_type="application/octet-stream", headers={"cache-control": "no-store"}
    )


@router.post("/upload")
async def upload(request: Request, caller: CallerDep) -> JSONResponse:
    """upload reads the body and discards it, answering {"bytes", "seconds"} as the server saw them."""
    _require_measurer(caller)
    started = time.monotonic()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if time.monotonic() - started > MAX_UPLOAD_SECONDS:
            break
    return JSONResponse({"bytes": received, "seconds": round(time.monotonic() - started, 6)})
