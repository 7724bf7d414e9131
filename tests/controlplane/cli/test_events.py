"""`caractrl get events`: kubectl's columns, --for, -o json, -w following, and its errors."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from controlplane.cli.context import Env
from controlplane.cli.main import cli
from controlplane.client import Client
from controlplane.server import watch
from tests.conftest import FakeClock

from .conftest import API_URL, Caractrl

NODES = "/api/v1/nodes"


def reasons(table: str) -> list[str]:
    """reasons is the REASON column of a printed table, the header first."""
    lines = table.splitlines()
    column = lines[0].index("REASON")
    return [line[column:].split()[0] for line in lines]


async def fleet(api: httpx.AsyncClient, clock: FakeClock) -> None:
    for name in ("edge1", "edge2"):
        assert (await api.post(NODES, json={"metadata": {"name": name}})).status_code == 201
        clock.step(60)
    assert (await api.post(f"{NODES}/edge1/drain")).status_code == 200
    clock.step(30)


async def test_the_table_has_kubectls_columns(caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock) -> None:
    await fleet(api, clock)
    result = await caractrl("get", "events")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "LAST SEEN   TYPE     REASON       OBJECT       MESSAGE",
        "2m          Normal   Registered   node/edge1   Node edge1 registered (by dev)",
        "1m          Normal   Registered   node/edge2   Node edge2 registered (by dev)",
        "30s         Normal   Cordoned     node/edge1   Node edge1 cordoned: no new Projects go to it (by dev)",
        "30s         Normal   Draining     node/edge1   Node edge1 is draining: its Projects go back to Pending"
        " (by dev)",
    ]


async def test_for_one_object_and_as_json(caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock) -> None:
    await fleet(api, clock)
    result = await caractrl("get", "ev", "--for", "node/edge2")
    assert reasons(result.stdout) == ["REASON", "Registered"]
    as_json = json.loads((await caractrl("get", "events", "--for", "node/edge1", "-o", "json")).stdout)
    assert as_json["kind"] == "EventList"
    assert [e["reason"] for e in as_json["items"]] == ["Registered", "Cordoned", "Draining"]
    assert as_json["items"][0]["involvedObject"] == {"kind": "Node", "name": "edge1"}
    nothing = await caractrl("get", "events", "--for", "project/web")
    assert (nothing.exit_code, nothing.stdout, nothing.stderr) == (0, "", "No resources found\n")


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
async def test_watch_prints_new_events_as_they_come(
    caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    await fleet(api, clock)
    following = asyncio.create_task(caractrl("get", "events", "--for", "node/edge2", "-w", "--request-timeout", "3"))
    await asyncio.sleep(1.0)
    assert (await api.post(f"{NODES}/edge2/drain")).status_code == 200
    assert (await api.post(f"{NODES}/edge1/uncordon")).status_code == 200  # about another Node: not shown
    result = await following
    assert result.exit_code == 0, result.stderr
    assert reasons(result.stdout) == ["REASON", "Registered", "Cordoned", "Draining"]
    lines = result.stdout.splitlines()
    column = lines[0].index("OBJECT")  # the followed rows stay under the listing's columns
    assert [line[column:].split()[0] for line in lines] == ["OBJECT", "node/edge2", "node/edge2", "node/edge2"]


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
async def test_watch_follows_the_servers_stream_not_a_poll(
    api: httpx.AsyncClient, clock: FakeClock, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One watch request carries the listing and the new Events; when the server ends it, -w opens it again and
    prints only what it had not printed, each Event as one JSON document."""
    monkeypatch.setattr(watch, "MAX_TIMEOUT_S", 1)  # the server ends each watch after 1 s
    await fleet(api, clock)
    asked: list[str] = []
    inner = httpx.ASGITransport(app=app)

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            asked.append(f"{request.url.path}?{request.url.query.decode()}")
            return await inner.handle_async_request(request)

    env = Env(
        environ={"CARA_SERVER": API_URL, "HOME": "/nonexistent"},
        client_factory=lambda url: Client(url, transport=Counting()),
        now=clock.now,
    )
    args = ["get", "events", "-w", "-o", "json", "--request-timeout", "4"]
    following = asyncio.create_task(asyncio.to_thread(CliRunner().invoke, cli, args, obj=env))
    await asyncio.sleep(1.0)
    assert (await api.post(f"{NODES}/edge2/cordon")).status_code == 200
    await asyncio.sleep(1.2)
    result = await following
    assert result.exit_code == 0, result.stderr
    documents = [json.loads(doc) for doc in result.stdout.replace("}\n{", "}\0{").split("\0")]
    assert [(d["kind"], d["reason"]) for d in documents] == [
        ("Event", "Registered"),
        ("Event", "Registered"),
        ("Event", "Cordoned"),
        ("Event", "Draining"),
        ("Event", "Cordoned"),
    ]
    assert documents[-1]["involvedObject"] == {"kind": "Node", "name": "edge2"}
    assert len(asked) >= 3 and all("watch=true" in url for url in asked), asked


async def test_watch_says_clearly_when_the_server_is_gone(
    api: httpx.AsyncClient, clock: FakeClock, app: FastAPI
) -> None:
    """The server ends open watches as it stops; opening the watch again then finds no server: one line, exit 1."""
    await fleet(api, clock)
    inner = httpx.ASGITransport(app=app)
    opened: list[int] = []

    class Stopping(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            opened.append(1)
            if len(opened) > 1:
                raise httpx.ConnectError("All connection attempts failed")
            return await inner.handle_async_request(request)

    env = Env(
        environ={"CARA_SERVER": API_URL, "HOME": "/nonexistent"},
        client_factory=lambda url: Client(url, transport=Stopping()),
        now=clock.now,
    )
    following = asyncio.create_task(asyncio.to_thread(CliRunner().invoke, cli, ["get", "events", "-w"], obj=env))
    await asyncio.sleep(0.8)
    app.state.context.stopping.set()
    result = await asyncio.wait_for(following, 10)
    assert result.exit_code == 1
    assert reasons(result.stdout) == ["REASON", "Registered", "Registered", "Cordoned", "Draining"]
    assert result.stderr == (f"Error: cannot reach the control plane at {API_URL}: All connection attempts failed\n")


async def test_bad_uses_are_one_line_errors(caractrl: Caractrl) -> None:
    for args, message in (
        (("get", "events", "--for", "edge1"), 'Error: --for: "edge1" is not of the form node/NAME or project/NAME\n'),
        (("get", "events", "--for", "pod/x"), 'Error: --for: "pod/x" is not of the form node/NAME or project/NAME\n'),
        (("get", "events", "edge1"), "Error: events take no NAME and no -l; use --for node/NAME\n"),
        (("get", "nodes", "--for", "node/x"), "Error: --for applies to events only\n"),
        (("get", "events", "-o", "wide"), "Error: -o wide: Events print as a table, json or yaml\n"),
    ):
        result = await caractrl(*args)
        assert (result.exit_code, result.stderr) == (1, message), args
