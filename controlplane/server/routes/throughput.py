"""Throughput routes (design §6): a timed download stream and a discarding upload sink for agents' measurements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..context import CallerDep
from ..identity import Caller, Forbidden, Role
from ..problems import Problem

router = APIRouter(prefix="/api/v1/throughput", tags=["throughput"])


#: Longest download a caller may ask for, in seconds: a measurement is time-boxed, and so is what it costs us.
MAX_SECONDS: Final = 10.0
#: Width of one arrival bucket of an upload, in seconds (fine enough for a window of a second or more).
BUCKET_SECONDS: Final = 0.01
#: An upload is counted for at most this many buckets (the download's cap plus slack for a slow start).
MAX_BUCKETS: Final = int((MAX_SECONDS + 2.0) / BUCKET_SECONDS)
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
    """upload reads the body and discards it, answering what arrived when, on the server's clock.

    The answer is {"bytes", "seconds", "start", "bucketSeconds", "buckets"}: `start` is the server's monotonic
    time of the first byte and `buckets[i]` the bytes that arrived in [start + i*bucketSeconds, ...). The agent
    merges the streams' buckets on this one clock and counts only its steady window, like iperf3's receiver.
    """
    _require_measurer(caller)
    started = time.monotonic()
    first: float | None = None
    buckets: list[int] = []
    received = 0
    async for chunk in request.stream():
        now = time.monotonic()
        if first is None:
            first = now
        index = int((now - first) / BUCKET_SECONDS)
        if index >= len(buckets):
            if index >= MAX_BUCKETS:
                break  # past the time box: stop counting (the connection closes with the response)
            buckets.extend([0] * (index + 1 - len(buckets)))
        buckets[index] += len(chunk)
        received += len(chunk)
    doc = {
        "bytes": received,
        "seconds": round(time.monotonic() - started, 6),
        "start": first if first is not None else started,
        "bucketSeconds": BUCKET_SECONDS,
        "buckets": buckets,
    }
    return JSONResponse(doc)
