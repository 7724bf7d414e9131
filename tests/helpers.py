"""Helpers the tests share (one copy each): a free loopback port, polling until a condition holds (the lab
library's `wait_until`, which the lab tests and bench/ use too), and callers named by a request header."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import httpx
from fastapi import FastAPI, Request
from lablib.harness import wait_until

from controlplane.server.identity import Caller, Unauthorized
from tests.conftest import API_URL

__all__ = ["CALLER_HEADER", "HeaderIdentity", "caller_client", "free_port", "wait_until"]


def free_port(host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> int:
    """free_port returns a TCP port free on host at this moment (the kernel's pick for port 0)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


#: The request header that names a test caller.
CALLER_HEADER = "x-test-caller"


class HeaderIdentity:
    """HeaderIdentity picks the caller named by a request's CALLER_HEADER from `callers` (the tailnet's WhoIs is
    tested in the lab); any other request is refused as a stranger to the tailnet."""

    def __init__(self, callers: Mapping[str, Caller]) -> None:
        self.callers = dict(callers)

    async def identify(self, request: Request) -> Caller:
        who = request.headers.get(CALLER_HEADER, "")
        if who not in self.callers:
            raise Unauthorized(f"{request.client.host if request.client else '?'} is not a machine of this tailnet")
        return self.callers[who]


def caller_client(app: FastAPI, who: str, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """caller_client is an in-process client of app that calls as `who` (CALLER_HEADER)."""
    return httpx.AsyncClient(
        transport=transport or httpx.ASGITransport(app=app), base_url=API_URL, headers={CALLER_HEADER: who}
    )
