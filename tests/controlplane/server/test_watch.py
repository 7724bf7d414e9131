"""Watches (issue 15): `?watch=true` streams ADDED, BOOKMARK, MODIFIED and DELETED events of any kind."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from fastapi import FastAPI

NODES, PROJECTS = "/api/v1/nodes", "/api/v1/projects"


def _events(text: str) -> list[tuple[str, str | None]]:
    lines = [json.loads(line) for line in text.splitlines() if line]
    return [(e["type"], e["object"].get("metadata", {}).get("name")) for e in lines]


async def test_a_node_watch_streams_the_current_nodes_then_changes(api: httpx.AsyncClient) -> None:
    await api.post(NODES, json={"metadata": {"name": "a", "labels": {"zone": "x"}}})

    async def change() -> None:
        await asyncio.sleep(0.3)
        await api.post(NODES, json={"metadata": {"name": "b", "labels": {"zone": "x"}}})
        await api.put(f"{NODES}/a", json={"metadata": {"name": "a", "labels": {"zone": "y"}}})
        await api.post(NODES, json={"metadata": {"name": "c"}})

    changing = asyncio.create_task(change())
    answer = await api.get(NODES, params={"watch": "true", "timeoutSeconds": "1", "labelSelector": "zone=x"})
    await changing
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    # a stops matching zone=x: it leaves the watch as DELETED; c never matched.
    assert _events(answer.text) == [("ADDED", "a"), ("BOOKMARK", None), ("DELETED", "a"), ("ADDED", "b")]


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
async def test_a_project_watch_sees_modifications_and_deletions(api: httpx.AsyncClient) -> None:
    body = {"metadata": {"name": "shop"}, "spec": {"services": [{"name": "web", "image": "nginx"}]}}
    await api.post(PROJECTS, json=body)

    async def change() -> None:
        await asyncio.sleep(0.3)
        await api.put(f"{PROJECTS}/shop", json={**body, "metadata": {"name": "shop", "labels": {"a": "b"}}})
        await asyncio.sleep(0.6)
        await api.delete(f"{PROJECTS}/shop")

    changing = asyncio.create_task(change())
    answer = await api.get(PROJECTS, params={"watch": "true", "timeoutSeconds": "2"})
    await changing
    assert _events(answer.text) == [("ADDED", "shop"), ("BOOKMARK", None), ("MODIFIED", "shop"), ("DELETED", "shop")]


async def test_a_bad_selector_is_refused_before_the_stream_opens(api: httpx.AsyncClient) -> None:
    answer = await api.get(NODES, params={"watch": "true", "labelSelector": "app!x"})
    assert answer.status_code == 400 and 'invalid selector "app!x"' in answer.json()["detail"]


async def test_a_watch_ends_as_soon_as_the_server_begins_to_stop(api: httpx.AsyncClient, app: FastAPI) -> None:
    """Otherwise a stop would wait for every open watch (up to 30 minutes)."""
    await api.post(NODES, json={"metadata": {"name": "a"}})

    async def stop() -> None:
        await asyncio.sleep(0.3)
        app.state.context.stopping.set()

    stopping = asyncio.create_task(stop())
    started = time.monotonic()
    answer = await api.get(NODES, params={"watch": "true", "timeoutSeconds": "30"})
    await stopping
    assert time.monotonic() - started < 5
    assert _events(answer.text) == [("ADDED", "a"), ("BOOKMARK", None)]


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
async def test_an_event_watch_streams_the_kept_events_then_each_new_one_once(api: httpx.AsyncClient) -> None:
    """Events come from the store's change feed: ADDED once each, about the watched object only."""
    await api.post(NODES, json={"metadata": {"name": "a"}})
    await api.post(NODES, json={"metadata": {"name": "b"}})

    async def change() -> None:
        await asyncio.sleep(0.3)
        await api.post(f"{NODES}/a/cordon")
        await api.post(f"{NODES}/b/cordon")
        await asyncio.sleep(0.6)
        await api.post(f"{NODES}/a/uncordon")

    changing = asyncio.create_task(change())
    params = {"watch": "true", "timeoutSeconds": "2", "kind": "Node", "name": "a"}
    answer = await api.get("/api/v1/events", params=params)
    await changing
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines() if line]
    said = [(e["type"], e["object"].get("reason"), e["object"].get("involvedObject", {}).get("name")) for e in lines]
    assert said == [
        ("ADDED", "Registered", "a"),
        ("BOOKMARK", None, None),
        ("ADDED", "Cordoned", "a"),
        ("ADDED", "Uncordoned", "a"),
    ]
    assert len({e["object"]["metadata"]["name"] for e in lines if e["type"] == "ADDED"}) == 3


async def test_an_event_watch_refuses_an_unknown_kind_before_the_stream_opens(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/v1/events", params={"watch": "true", "kind": "Pod"})
    assert answer.status_code == 400 and "kind: must be one of" in answer.json()["detail"]
