"""Pytest fixtures for mesh tests: a LocalClient factory wired to a scripted fake tailscaled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest

from mesh import LocalClient

from .captured import Answer, FakeDaemon


class ClientFactory(Protocol):
    """ClientFactory builds a LocalClient wired to a FakeDaemon running `script`."""

    def __call__(self, script: dict[str, Answer | list[Answer]]) -> tuple[LocalClient, FakeDaemon]: ...


@pytest.fixture
async def fake_client() -> AsyncIterator[ClientFactory]:
    clients: list[LocalClient] = []

    def make(script: dict[str, Answer | list[Answer]]) -> tuple[LocalClient, FakeDaemon]:
        daemon = FakeDaemon(script)
        client = LocalClient("/fake/tailscaled.sock", transport=httpx.MockTransport(daemon))
        clients.append(client)
        return client, daemon

    yield make
    for client in clients:
        await client.aclose()
