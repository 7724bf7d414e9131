"""GET /api/v1/forward/{project}/{service}/{port}: a WebSocket carrying raw TCP bytes to a container's port.

Before upgrading, the agent dials the container's address on the Project's network (400 bad port, 404 no
container, 503 not running, 502 port unreachable); then bytes go both ways as binary messages, at most 32 KiB per
read. The WebSocket framing is websockets' sans-I/O protocol (already installed with uvicorn), driven on the
agent's own connection, so no web framework is loaded into the agent for one route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from ..projects.names import network_name
from ..runtime import NoSuchObject, RuntimeClient, RuntimeFailure
from .problems import send_problem

if TYPE_CHECKING:  # websockets is imported on the first forward, not at start: an idle agent keeps ~1 MiB
    from websockets.server import ServerProtocol

log = logging.getLogger("cara.agent.api")

#: Largest read from either side (design §3.6), and so the largest message sent.
READ_SIZE: Final = 32 * 1024
DIAL_TIMEOUT: Final = 5.0


def parse_port(raw: str) -> int | None:
    """parse_port is the port as a number in 1..65535, else None."""
    if not raw.isdigit():
        return None
    port = int(raw)
    return port if 1 <= port <= 65535 else None


async def serve_forward(
    runtime: RuntimeClient,
    project: str,
    container: str,
    raw_port: str,
    raw_head: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """serve_forward answers one forward request (the caller is authorized already)."""
    port = parse_port(raw_port)
    if port is None:
        await send_problem(writer, 400, f"port: {raw_port!r} is not a port (1-65535)", ["port: not a port"])
        return
    try:
        inspected = await runtime.inspect_container(container)
    except NoSuchObject:
        await send_problem(writer, 404, f"container {container} not found")
        return
    except RuntimeFailure as exc:
        await send_problem(writer, 503, str(exc))
        return
    if not inspected.state.running:
        await send_problem(writer, 503, f"container {container} is not running ({inspected.state.status})")
        return
    address = inspected.ip_on(network_name(project))
    if address is None:
        await send_problem(writer, 502, f"container {container} has no address on {network_name(project)}")
        return
    try:
        backend = await asyncio.wait_for(asyncio.open_connection(address, port), DIAL_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        await send_problem(writer, 502, f"cannot reach {container} port {port}: {exc or 'timed out'}")
        return
    back_reader, back_writer = backend
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    try:
        protocol = ServerProtocol(max_size=2**20)
        protocol.receive_data(raw_head)
        request = next((event for event in protocol.events_received() if isinstance(event, Request)), None)
        if request is None:
            await send_problem(writer, 400, "not a WebSocket upgrade request")
            return
        response = protocol.accept(request)
        protocol.send_response(response)
        await _flush(protocol, writer)
        if response.status_code != 101:
            return
        await _pump(protocol, reader, writer, back_reader, back_writer)
    finally:
        back_writer.close()
        with contextlib.suppress(Exception):
            await back_writer.wait_closed()


async def _flush(protocol: ServerProtocol, writer: asyncio.StreamWriter) -> None:
    for data in protocol.data_to_send():
        if data:
            writer.write(data)
    await writer.drain()


async def _pump(
    protocol: ServerProtocol,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    back_reader: asyncio.StreamReader,
    back_writer: asyncio.StreamWriter,
) -> None:
    """_pump copies backend bytes into binary messages and message payloads into the backend until either ends."""
    from websockets.frames import Frame, Opcode

    async def to_client() -> None:
        while data := await back_reader.read(READ_SIZE):
            protocol.send_binary(data)
            await _flush(protocol, writer)
        protocol.send_close(1000, "backend closed")
        await _flush(protocol, writer)

    async def to_backend() -> None:
        while True:
            data = await reader.read(READ_SIZE + 16)
            if not data:
                protocol.receive_eof()
                return
            protocol.receive_data(data)
            for frame in protocol.events_received():
                if not isinstance(frame, Frame):
                    continue
                if frame.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
                    back_writer.write(frame.data)
                    await back_writer.drain()
                elif frame.opcode == Opcode.CLOSE:
                    await _flush(protocol, writer)  # the close reply
                    return
            await _flush(protocol, writer)  # pongs
            if protocol.close_expected():
                return

    tasks = [asyncio.create_task(to_client()), asyncio.create_task(to_backend())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
