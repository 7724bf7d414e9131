"""Tests that pin LimitedProtocol's coupling to uvicorn's HttpToolsProtocol internals, failing loudly when they change.

controlplane/server/limits.py subclasses an undocumented uvicorn class. When a uvicorn upgrade renames a callback or
an attribute, the limits would silently stop applying (or crash per connection); these tests say what changed.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from controlplane.server.limits import CHECKED_UVICORN, UVICORN_ATTRIBUTES, UVICORN_HOOKS, LimitedProtocol

#: Short limits so that the real protocol trips them quickly on loopback.
SHORT = 0.2


def test_the_installed_and_pinned_uvicorn_is_the_one_limits_was_checked_against() -> None:
    pinned = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]["dependencies"]
    installed = importlib.metadata.version("uvicorn")
    message = (
        f"uvicorn {installed} is installed (pyproject pins {pinned}), but LimitedProtocol was checked against "
        f"{CHECKED_UVICORN}: re-read uvicorn's httptools_impl.py for UVICORN_HOOKS and UVICORN_ATTRIBUTES in "
        "controlplane/server/limits.py, then update CHECKED_UVICORN"
    )
    assert installed == CHECKED_UVICORN, message
    assert f"uvicorn[standard]=={CHECKED_UVICORN}" in pinned, message


@pytest.mark.parametrize("hook", UVICORN_HOOKS)
def test_each_overridden_hook_exists_in_uvicorn_with_the_same_parameters(hook: str) -> None:
    original = HttpToolsProtocol.__dict__.get(hook)
    assert callable(original), f"uvicorn's HttpToolsProtocol no longer defines {hook}(): LimitedProtocol's is dead"
    ours = inspect.signature(getattr(LimitedProtocol, hook)).parameters
    theirs = inspect.signature(original).parameters
    assert list(ours) == list(theirs), f"HttpToolsProtocol.{hook} now takes {list(theirs)}, ours {list(ours)}"


def test_the_constructor_still_takes_what_limited_protocol_passes_on() -> None:
    theirs = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    assert theirs[:4] == ["self", "config", "server_state", "app_state"], f"HttpToolsProtocol.__init__ is now {theirs}"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """_app answers 204 once it has read the whole body."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _Server:
    """_Server is a loopback asyncio server speaking through LimitedProtocol; it keeps each protocol it made."""

    def __init__(self) -> None:
        self.protocols: list[LimitedProtocol] = []
        self.config = uvicorn.Config(_app, log_level="warning")
        self.state = ServerState()
        self.port = 0

    def make(self) -> LimitedProtocol:
        protocol = LimitedProtocol(
            config=self.config,
            server_state=self.state,
            app_state={},
            head_timeout=SHORT,
            body_timeout=SHORT,
            max_head_bytes=1024,
        )
        self.protocols.append(protocol)
        return protocol


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    made = _Server()
    listener = await asyncio.get_running_loop().create_server(made.make, "127.0.0.1", 0)
    made.port = listener.sockets[0].getsockname()[1]
    try:
        yield made
    finally:
        listener.close()
        for protocol in made.protocols:
            protocol.transport.close()


async def _answer(server: _Server, sent: bytes) -> tuple[int, bytes]:
    """_answer sends bytes on a new connection and returns the status and body the server answers with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(sent)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), timeout=10 * SHORT + 5)
    rest = await asyncio.wait_for(reader.read(), timeout=10 * SHORT + 5) if not line.split()[1] == b"204" else b""
    writer.close()
    return int(line.split()[1]), rest


async def test_a_connection_has_every_attribute_limited_protocol_reads(server: _Server) -> None:
    assert (await _answer(server, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"))[0] == 204
    (protocol,) = server.protocols
    missing = [name for name in UVICORN_ATTRIBUTES if not hasattr(protocol, name)]
    assert not missing, f"HttpToolsProtocol no longer sets {missing}: LimitedProtocol reads them"
    assert isinstance(protocol.flow.read_paused, bool), "uvicorn's FlowControl lost read_paused"
    assert isinstance(protocol.cycle.response_started, bool), "uvicorn's RequestResponseCycle lost response_started"
    assert isinstance(protocol.loop, asyncio.AbstractEventLoop)


async def test_the_hooks_are_still_called_by_uvicorn_so_the_limits_apply(server: _Server) -> None:
    status, body = await _answer(server, b"GET / HTTP/1.1\r\n")  # on_message_begin: the head never completes
    assert (status, b"did not arrive" in body) == (408, True)
    status, body = await _answer(server, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 9\r\n\r\nab")
    assert (status, b"body stalled" in body) == (408, True)  # on_headers_complete started the body's timer
    status, body = await _answer(server, b"GET /" + b"a" * 2048)  # data_received counts the head's bytes
    assert (status, b"exceed 1024 bytes" in body) == (431, True)
