"""Every error is an RFC 9457 problem document: unknown paths, wrong methods, bad bodies, limits, crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import API_URL

PROBLEM = "application/problem+json"


async def test_unknown_path(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/v2/things")
    assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["detail"] == "no route for GET /api/v2/things"


async def test_wrong_method(api: httpx.AsyncClient) -> None:
    answer = await api.patch("/api/v1/nodes")
    assert answer.status_code == 405 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["title"] == "Method Not Allowed"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "body: is required (a JSON object)"),
        (b"{nope", "body: invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        (b"\xff\xfe", "body: not UTF-8 text (byte 0)"),
        (b'"just a string"', "body: must be a JSON object"),
        (b'{"metadata": {"name": "n"}, "spec": {"unschedulable": "yes"}}', "spec.unschedulable: must be a boolean"),
    ],
    ids=["empty", "syntax", "binary", "not-object", "wrong-type"],
)
async def test_bad_bodies(api: httpx.AsyncClient, content: bytes, error: str) -> None:
    answer = await api.post("/api/v1/nodes", content=content, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["title"] == "Validation Problem" and body["errors"] == [error]
    assert (await api.get("/api/v1/nodes")).json()["items"] == []


async def test_oversized_body_is_413_and_stores_nothing(api: httpx.AsyncClient) -> None:
    huge = b'{"metadata": {"name": "n", "annotations": {"a": "' + b"x" * 70_000 + b'"}}}'
    answer = await api.post("/api/v1/nodes", content=huge)
    assert answer.status_code == 413 and answer.json()["title"] == "Content Too Large"
    assert "65536 bytes" in answer.json()["detail"]
    assert (await api.get("/api/v1/nodes")).json()["items"] == []


async def test_oversized_chunked_body_is_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    answer = await api.post("/api/v1/nodes", content=chunks())
    assert answer.status_code == 413


async def test_unexpected_errors_are_500_problems_without_details(app: FastAPI) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/explode", explode)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=API_URL) as client:
        answer = await client.get("/api/explode")
    assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["title"] == "Internal Server Error" and "secret" not in answer.text


async def test_health_openapi_metrics(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/healthz")).text == "OK"
    spec = (await api.get("/openapi.json")).json()
    assert "/api/v1/nodes/{name}/heartbeat" in spec["paths"]
    await api.post("/api/v1/nodes/ghost/heartbeat")
    metrics = (await api.get("/metrics")).text
    assert 'cara_http_requests_total{code="404",method="POST"} 1.0' in metrics
    assert 'cara_nodes{state="Ready"} 0.0' in metrics
