"""The agent's kept-alive transport to the control plane, over real loopback sockets: beats share one connection, a
hedge goes over a new one, a connection the server closed or that sat idle past the expiry is replaced, not used."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agent.heartbeat import Backoff, Heartbeater, Snapshot
from agent.main import control_transport
from controlplane.api import AGENT_KEEPALIVE_EXPIRY, SERVER_KEEPALIVE_IDLE, Heartbeat
from controlplane.client import Client

_CREATED = b'{"apiVersion":"caravanserai/v1","kind":"Node","metadata":{"name":"edge1"},"spec":{"hostname":"Edge1"}}'


class BeatServer:
    """BeatServer answers heartbeats (204) and registration (201) over HTTP/1.1 keep-alive on loopback; it counts
    the connections it accepted, can hold the next N requests unanswered, and can close each connection after its
    answer (as a server going away does)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.hold = 0
        self.close_after_answer = False
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                if self.hold:
                    self.hold -= 1
                    await reader.read()  # black-holed: never answered, until the client gives up
                    return
                if head.startswith(b"POST /api/v1/nodes HTTP"):
                    writer.write(
                        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                        + f"content-length: {len(_CREATED)}\r\n\r\n".encode()
                        + _CREATED
                    )
                else:
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
                if self.close_after_answer:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


class Source:
    async def snapshot(self) -> Snapshot:
        return Snapshot(beat=Heartbeat(), signature=())


@pytest.fixture
async def server() -> AsyncIterator[BeatServer]:
    s = BeatServer()
    await s.start()
    yield s
    await s.stop()


@contextlib.asynccontextmanager
async def beater(server: BeatServer, *, expiry: float = AGENT_KEEPALIVE_EXPIRY) -> AsyncIterator[Heartbeater]:
    url = f"http://127.0.0.1:{server.port}"
    async with Client(url, transport=control_transport(url, keepalive_expiry=expiry), timeout=5.0) as client:
        yield Heartbeater(
            client=client,
            node_name="edge1",
            hostname="Edge1",
            source=Source(),
            now=lambda: datetime.now(UTC),
            interval=10.0,
            backoff=Backoff(random=lambda: 0.5),
            hedge_after=0.2,
        )


def test_the_agent_lets_go_of_a_connection_well_before_the_server_does() -> None:
    assert 0 < AGENT_KEEPALIVE_EXPIRY <= SERVER_KEEPALIVE_IDLE - 5


async def test_registration_and_beats_share_one_connection(server: BeatServer) -> None:
    async with beater(server) as b:
        for _ in range(5):
            assert await b.beat_once() == 10.0
    assert (server.requests, server.connections) == (6, 1)  # a registration and five beats


async def test_a_hedge_goes_over_a_new_connection_and_one_connection_is_kept(server: BeatServer) -> None:
    async with beater(server) as b:
        await b.beat_once()
        server.hold = 1  # the kept-alive connection is black-holed: its beat is never answered
        assert await asyncio.wait_for(b.beat_once(), 5) == 10.0
        assert b.state.counts["hedged"] == 1 and server.connections == 2
        for _ in range(3):
            await b.beat_once()
    # The black-holed connection was closed with its cancelled attempt. The hedge's connection may be closed too
    # (httpcore 1.0 closes an idle connection while more than max_keepalive_connections are open, busy or not): the
    # beats after it open one more connection at most, and share it.
    assert server.connections <= 3 and server.requests == 7


async def test_a_connection_the_server_closed_is_replaced_without_a_failed_beat(server: BeatServer) -> None:
    server.close_after_answer = True  # as a server restarting: each idle connection gets its FIN
    async with beater(server) as b:
        for _ in range(3):
            await b.beat_once()
            await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle in the pool
    assert server.connections == 4 and "failed" not in b.state.counts and "hedged" not in b.state.counts


async def test_a_connection_idle_past_the_expiry_is_not_used_again(server: BeatServer) -> None:
    async with beater(server, expiry=0.1) as b:
        await b.beat_once()
        await b.beat_once()
        await asyncio.sleep(0.3)
        await b.beat_once()
    assert server.connections == 2 and "failed" not in b.state.counts


async def test_a_hedge_that_cannot_connect_ends_the_beat_at_once(server: BeatServer) -> None:
    async with beater(server) as b:
        await b.beat_once()
        server.hold = 1  # the kept-alive connection goes stale ...
        await server.stop()  # ... and no new connection can be made (as with our tailscaled down): refused
        loop = asyncio.get_running_loop()
        started = loop.time()
        await b.beat_once()
        took = loop.time() - started
    # Not the client's 5 s timeout on the stale connection: the hedge's refused connect ends the beat.
    assert took < 2.0 and b.state.counts["hedged"] == 1 and b.state.counts["failed"] == 1
    assert "cannot reach the control plane" in b.state.last_error and not b.state.server_reachable
