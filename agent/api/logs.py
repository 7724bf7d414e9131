"""GET /api/v1/logs/{project}/{service}: a container's stdout and stderr, de-multiplexed, as chunked plain text.

Query (each sent by the Go caractl only when set): `follow=true` keeps the stream open for new lines (409 when the
container is not running), `tail=N` starts from the last N lines (default all), `timestamps=true` prefixes
RFC 3339 times. Every chunk the runtime hands over is written and flushed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..runtime import NoSuchObject, RuntimeClient, RuntimeFailure
from .problems import head, send_problem

log = logging.getLogger("cara.agent.api")


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[-1].lower() in ("true", "1")


def parse_tail(query: dict[str, list[str]]) -> int | None:
    """parse_tail reads `tail`: None for all (unset, empty, `all` or negative); raises ValueError if not a number."""
    raw = query.get("tail", [""])[-1]
    if raw in ("", "all"):
        return None
    value = int(raw)
    return value if value >= 0 else None


async def serve_logs(
    runtime: RuntimeClient,
    container: str,
    query: dict[str, list[str]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """serve_logs answers one logs request for container (the caller is authorized already)."""
    try:
        tail = parse_tail(query)
    except ValueError:
        await send_problem(writer, 400, f"tail: {query['tail'][-1]!r} is not a number of lines", ["tail: not a number"])
        return
    follow = _flag(query, "follow")
    try:
        state = (await runtime.inspect_container(container)).state
    except NoSuchObject:
        await send_problem(writer, 404, f"container {container} not found")
        return
    except RuntimeFailure as exc:
        await send_problem(writer, 503, str(exc))
        return
    if follow and not state.running:
        await send_problem(writer, 409, f"container {container} is not running ({state.status}); omit follow")
        return
    writer.write(
        head(200, {"Content-Type": "text/plain; charset=utf-8", "Transfer-Encoding": "chunked", "Connection": "close"})
    )
    await writer.drain()
    copy = asyncio.create_task(_copy(runtime, container, follow, tail, _flag(query, "timestamps"), writer))
    gone = asyncio.create_task(reader.read())  # b"" when the caller hangs up: a followed stream ends with it
    try:
        await asyncio.wait({copy, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (copy, gone):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await copy
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await gone


async def _copy(
    runtime: RuntimeClient,
    container: str,
    follow: bool,
    tail: int | None,
    timestamps: bool,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        async for chunk in runtime.logs(container, follow=follow, tail=tail, timestamps=timestamps):
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
    except RuntimeFailure as exc:
        log.warning("logs of %s ended: %s", container, exc)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
