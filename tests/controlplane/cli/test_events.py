"""`caractrl get events`: kubectl's columns, --for, -o json, -w following, and its errors."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import FakeClock

from .conftest import Caractrl

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


async def test_watch_prints_new_events_as_they_come(
    caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    await fleet(api, clock)
    following = asyncio.create_task(caractrl("get", "events", "--for", "node/edge2", "-w", "--request-timeout", "3"))
    await asyncio.sleep(1.0)
    assert (await api.post(f"{NODES}/edge2/drain")).status_code == 200
    result = await following
    assert result.exit_code == 0, result.stderr
    assert reasons(result.stdout) == ["REASON", "Registered", "Cordoned", "Draining"]


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
