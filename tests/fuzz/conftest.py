"""Fixtures for the fuzzers: one dev-mode app on in-memory SQLite per module and its schema in schemathesis."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.specs.openapi.schemas import OpenApiSchema

from controlplane.server import watch
from controlplane.server.app import create_app
from controlplane.server.identity import DevIdentity
from controlplane.server.settings import Settings
from controlplane.store import open_store
from tests.conftest import FakeClock

# Hypothesis keeps caches (constants, Unicode tables) in ./.hypothesis even without an example database: keep them
# out of the checkout, in the machine's temp directory.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "caravanserai-hypothesis")

#: Cases per operation (issue 8: at least 1,000), shared by the stateless and stateful fuzzers.
EXAMPLES = 1000

#: Reproducible in CI: a fixed derandomized search, no example database written into the repo, no wall-clock deadline
#: (a 2-core CI box under load must not turn a slow example into a failure).
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

#: The small settings body limit of the fuzzed app: big enough for any manifest, small enough that 413 is reachable.
FUZZ_BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def fuzz_clock() -> FakeClock:
    """fuzz_clock is the app's clock; the stateful fuzzer steps it to let leases expire."""
    return FakeClock()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_clock: FakeClock) -> Iterator[FastAPI]:
    """fuzz_app is a dev-mode app on a fresh in-memory store, shared by every case of one module.

    Its watches (`?watch=true`) end after their first batch of events: in-process, a response is read only once
    it is complete, and a watch otherwise stays open for up to 30 minutes.
    """
    patch = pytest.MonkeyPatch()
    patch.setattr(watch, "MAX_TIMEOUT_S", 0)
    store = asyncio.run(open_store("sqlite:///:memory:"))
    yield create_app(
        store=store,
        now=fuzz_clock.now,
        identity=DevIdentity(),
        settings=Settings(dev=True, max_body_bytes=FUZZ_BODY_LIMIT),
    )
    asyncio.run(store.close())
    patch.undo()


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: FastAPI) -> OpenApiSchema:
    """fuzz_schema is the app's /openapi.json loaded by schemathesis, minus the time-boxed throughput streams."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    fuzzed = schema.exclude(path_regex="^/api/v1/throughput/")
    assert isinstance(fuzzed, OpenApiSchema)
    return fuzzed
