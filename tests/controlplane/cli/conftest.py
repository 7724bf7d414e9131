"""Fixtures for caractrl tests: the CLI run in-process against the dev-mode API over `api_transport`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import httpx
import pytest
from click.testing import CliRunner, Result

from controlplane.cli.context import Env
from controlplane.cli.main import cli
from controlplane.client import Client
from tests.conftest import API_URL, FakeClock

__all__ = ["API_URL", "Caractrl"]


class Caractrl(Protocol):
    """Caractrl runs one caractrl command line and returns click's Result (stdout, stderr, exit_code)."""

    async def __call__(
        self, *args: str, input: str | None = None, environ: Mapping[str, str] | None = None
    ) -> Result: ...


@pytest.fixture
def caractrl(api_transport: httpx.ASGITransport, clock: FakeClock) -> Caractrl:
    """caractrl invokes the CLI with CARA_SERVER set, a client factory over the in-process app and the fake clock.

    The CLI calls asyncio.run at its edge, so it runs in a worker thread with its own event loop; the
    in-memory store answers any loop.
    """
    runner = CliRunner()

    async def invoke(*args: str, input: str | None = None, environ: Mapping[str, str] | None = None) -> Result:
        env = Env(
            environ={"CARA_SERVER": API_URL, "HOME": "/nonexistent"} if environ is None else environ,
            client_factory=lambda url: Client(url, transport=api_transport),
            now=clock.now,
        )
        return await asyncio.to_thread(runner.invoke, cli, list(args), input=input, obj=env)

    return invoke
