"""Captured LocalAPI answers for mesh tests, and FakeDaemon, a scripted tailscaled behind httpx.MockTransport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from mesh import PeerStatus, PingResult, Status

FIXTURES = Path(__file__).parent / "fixtures"


def raw(name: str) -> bytes:
    """raw is a captured answer's body, exactly as stored."""
    return (FIXTURES / name).read_bytes()


def wire(name: str) -> dict[str, Any]:
    """wire is a captured JSON answer as a dict."""
    data: dict[str, Any] = json.loads(raw(name))
    return data


def status(name: str) -> Status:
    """status is a captured status answer, decoded."""
    return Status.model_validate_json(raw(name))


def pong(name: str) -> PingResult:
    """pong is a captured ping answer, decoded."""
    return PingResult.model_validate_json(raw(name))


def peer(status_name: str, host_name: str) -> PeerStatus:
    """peer is one peer of a captured status, found by host name."""
    found = [p for p in status(status_name).peer.values() if p.host_name == host_name]
    assert len(found) == 1, f"{host_name} not in {status_name}"
    return found[0]


#: One scripted answer: an HTTP status and a body (a fixture file name, or raw bytes), or an exception to raise.
Answer = tuple[int, str | bytes] | Exception


class FakeDaemon:
    """FakeDaemon answers LocalAPI requests from a script keyed by "METHOD endpoint", recording every request.

    A key's value is one Answer, or a list of Answers served in order (the last one repeats).
    """

    def __init__(self, script: dict[str, Answer | list[Answer]]) -> None:
        self.script = script
        self.requests: list[httpx.Request] = []
        self._served: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = f"{request.method} {request.url.path.removeprefix('/localapi/v0/')}"
        entry = self.script.get(key)
        if entry is None:
            return httpx.Response(404, text=f"fake daemon: no script for {key}")
        if isinstance(entry, list):
            index = self._served.get(key, 0)
            self._served[key] = index + 1
            entry = entry[min(index, len(entry) - 1)]
        if isinstance(entry, Exception):
            raise entry
        code, body = entry
        content = raw(body) if isinstance(body, str) else body
        ctype = "application/json" if isinstance(body, str) and body.endswith(".json") else "text/plain; charset=utf-8"
        return httpx.Response(code, content=content, headers={"Content-Type": ctype})
