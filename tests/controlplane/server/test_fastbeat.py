"""The heartbeat fast path answers accepted beats itself (counted as the app counts its requests), and hands every
other request, and every refused beat with its body replayed, to the FastAPI app behind it."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from controlplane.server import fastbeat
from controlplane.server.context import ServerContext
from controlplane.server.fastbeat import FastBeat
from controlplane.store.leases import LeaseTable
from tests.conftest import FakeClock


class Behind:
    """Behind stands for the FastAPI app: it records what reaches it and answers 299 with the body it read."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message: Message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def test_accepted_beats_are_answered_ahead_and_the_rest_passed_on(
    app: FastAPI, leases: LeaseTable, clock: FakeClock
) -> None:
    context: ServerContext = app.state.context
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        created = await api.post("/api/v1/nodes", json={"metadata": {"name": "edge1"}, "spec": {"hostname": "edge1"}})
        assert created.status_code == 201
    behind = Behind()
    fast = FastBeat(behind, context)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fast), base_url="http://t") as client:
        beat = json.dumps({"network": {"ip": "100.64.0.3"}}).encode()
        answer = await client.post("/api/v1/nodes/edge1/heartbeat", content=beat)
        assert answer.status_code == 204 and answer.content == b"" and behind.seen == []
        registry = context.metrics.registry
        assert registry.get_sample_value("cara_http_requests_total", {"method": "POST", "code": "204"}) == 1
        assert registry.get_sample_value("cara_heartbeats_total", {"kind": "full"}) == 1
        assert (await context.store.get_node("edge1")).status.network.ip == "100.64.0.3"  # type: ignore[union-attr]
        lease = leases.get("edge1")
        assert lease is not None and lease.renewed_at == clock.now()

        refused = [
            ("/api/v1/nodes/nobody/heartbeat", b'{"network": {"ip": "100.64.0.4"}}'),  # 404
            ("/api/v1/nodes/edge1/heartbeat", b'{"network": '),  # 400
            ("/api/v1/nodes/edge1/heartbeat", b"x" * (64 * 1024 + 1)),  # 413
        ]
        for path, body in refused:
            answer = await client.post(path, content=body)
            assert answer.status_code == 299 and answer.content == body, path
        assert behind.seen == refused, "each refused beat reaches the app with its whole body"

        for method, path in (("GET", "/api/v1/nodes/edge1/heartbeat"), ("POST", "/api/v1/nodes/edge1/drain")):
            assert (await client.request(method, path)).status_code == 299
        assert behind.seen[-2:] == [("/api/v1/nodes/edge1/heartbeat", b""), ("/api/v1/nodes/edge1/drain", b"")]


async def test_a_failure_after_the_beat_is_applied_is_a_problem_document(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(context: ServerContext, outcome: object) -> None:
        raise RuntimeError("a bug after the write")

    monkeypatch.setattr(fastbeat, "after_beat", broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        assert (
            await api.post("/api/v1/nodes", json={"metadata": {"name": "e1"}, "spec": {"hostname": "e1"}})
        ).is_success
        answer = await api.post("/api/v1/nodes/e1/heartbeat", json={"network": {"ip": "100.64.0.5"}})
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert "traceback" not in answer.text.lower() and "a bug" not in answer.text
        stored = (await api.get("/api/v1/nodes/e1")).json()
        assert stored["status"]["network"]["ip"] == "100.64.0.5"  # applied before the failure
