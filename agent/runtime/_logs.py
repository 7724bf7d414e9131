"""De-multiplexing of the Docker log stream: 8-byte frame headers (stream, 0, 0, 0, big-endian length) + payload."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Final

HEADER: Final = struct.Struct(">BxxxI")
STDOUT: Final = 1
STDERR: Final = 2


async def demux(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """demux yields (stream, payload) for every frame in chunks, however the frames are split across chunks.

    stream is 1 for stdout and 2 for stderr (0 for stdin). A truncated last frame is yielded as far as it goes.
    """
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= HEADER.size:
            stream, size = HEADER.unpack_from(buffer)
            if len(buffer) < HEADER.size + size:
                break
            payload = bytes(buffer[HEADER.size : HEADER.size + size])
            del buffer[: HEADER.size + size]
            yield stream, payload
    if len(buffer) > HEADER.size:
        stream, _ = HEADER.unpack_from(buffer)
        yield stream, bytes(buffer[HEADER.size :])
