"""`caractrl logs` and `caractrl port-forward` against a real agent API server (FakeEngine behind it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.api.auth import Authorizer
from agent.api.routes import AgentAPI
from agent.http import AgentHTTPServer
from agent.runtime import RuntimeClient
from controlplane.api import Node, Project
from controlplane.cli.agent_link import agent_address
from controlplane.cli.context import Failure
from controlplane.cli.port_forward import serve
from mesh import WhoIsResponse
from tests.agent.fake_engine import FakeEngine

from .conftest import Caractrl


async def _admin(peer: str) -> WhoIsResponse:
    return WhoIsResponse.model_validate({"UserProfile": {"LoginName": "ops@example.com"}})


@pytest.fixture
async def agent() -> AsyncIterator[tuple[FakeEngine, int]]:
    engine = FakeEngine(address="127.0.0.1")
    engine.containers["demo-web"] = {
        "Id": "id-web",
        "Name": "/demo-web",
        "State": {"Status": "running", "Running": True},
        "Config": {"Tty": False},
        "NetworkSettings": {"Networks": {"cara-demo": {"IPAddress": "127.0.0.1"}}},
    }
    engine.logs["demo-web"] = [(1, b"line one\n"), (2, b"line two\n")]
    runtime = RuntimeClient("/fake.sock", transport=engine.transport())
    api = AgentAPI(runtime=lambda: runtime, authorizer=Authorizer(whois=_admin, admins=("ops",), viewers=()))
    server = AgentHTTPServer({}, streams=api.streams())
    await server.start("127.0.0.1", 0)
    assert server.port is not None
    try:
        yield engine, server.port
    finally:
        await server.close()
        await runtime.aclose()


async def test_logs_prints_the_stream_and_sends_go_flags(caractrl: Caractrl, agent: tuple[FakeEngine, int]) -> None:
    engine, port = agent
    result = await caractrl("logs", "demo/web", "--node", f"127.0.0.1:{port}", "-f", "--tail", "5", "--timestamps")
    assert (result.exit_code, result.stdout) == (0, "line one\nline two\n")
    logs_call = next(call for call in engine.calls if "/logs?" in call)
    assert "follow=1" in logs_call and "tail=5" in logs_call and "timestamps=1" in logs_call


async def test_logs_of_a_missing_service_is_one_error_line(caractrl: Caractrl, agent: tuple[FakeEngine, int]) -> None:
    _, port = agent
    result = await caractrl("logs", "demo/nope", "--node", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.stderr == "Error: Not Found: container demo-nope not found\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "demo"], 'Error: invalid target "demo": expected PROJECT/SERVICE\n'),
        (["port-forward", "demo/web", "80:x"], 'Error: invalid ports "80:x": expected LOCAL:REMOTE\n'),
        (["port-forward", "demo/web", "0:80"], 'Error: invalid ports "0:80": each must be 1-65535\n'),
    ],
    ids=["no-service", "bad-remote", "port-zero"],
)
async def test_bad_arguments(caractrl: Caractrl, args: list[str], message: str) -> None:
    result = await caractrl(*args)
    assert (result.exit_code, result.stderr) == (1, message)


async def test_port_forward_carries_a_request(agent: tuple[FakeEngine, int]) -> None:
    _, port = agent

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nyou asked " + request.split(b" ")[1])
        await writer.drain()
        writer.close()

    web = await asyncio.start_server(backend, "127.0.0.1", 0)
    web_port = web.sockets[0].getsockname()[1]
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    local = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    ready = asyncio.Event()
    url = f"ws://127.0.0.1:{port}/api/v1/forward/demo/web/{web_port}"
    forwarding = asyncio.create_task(serve(url, local, ready))
    await asyncio.wait_for(ready.wait(), 5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"GET /hello HTTP/1.0\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b"HTTP/1.0 200 OK\r\n\r\nyou asked /hello"
        writer.close()
    finally:
        forwarding.cancel()
        web.close()
        await web.wait_closed()


class Lookup:
    def __init__(self, project: dict[str, Any], node: dict[str, Any]) -> None:
        self.project = Project.model_validate(project)
        self.node = Node.model_validate(node)

    async def get_project(self, name: str) -> Project:
        return self.project

    async def get_node(self, name: str) -> Node:
        assert name == self.node.name
        return self.node


def lookup(node_ref: str | None, network: dict[str, Any]) -> Any:
    project = {
        "metadata": {"name": "demo"},
        "spec": {"services": [{"name": "web", "image": "x"}]},
        "status": {"phase": "Running" if node_ref else "Pending", "nodeRef": node_ref},
    }
    return Lookup(project, {"metadata": {"name": "edge1"}, "spec": {}, "status": {"network": network}})


async def test_agent_address_follows_node_ref_to_the_nodes_network(capsys: pytest.CaptureFixture[str]) -> None:
    assert await agent_address(lookup("edge1", {"ip": "100.64.0.7", "agentPort": 9191}), "demo", None) == (
        "100.64.0.7:9191"
    )
    assert await agent_address(lookup("edge1", {"ip": "100.64.0.7"}), "demo", None) == "100.64.0.7:9090"
    assert "reports no agentPort; trying 9090" in capsys.readouterr().err
    assert await agent_address(lookup(None, {}), "demo", "10.0.0.1:1") == "10.0.0.1:1"
    with pytest.raises(Failure, match="project demo is not bound to a node"):
        await agent_address(lookup(None, {}), "demo", None)
