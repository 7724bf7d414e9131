"""Fixtures for the store suite: a `store` opened on each backend (the private PostgreSQL is tests/controlplane's)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from controlplane.store import PostgresStore, SqliteStore, open_store
from tests.controlplane.conftest import PG_CLUSTER as PG_CLUSTER
from tests.controlplane.conftest import StoreUrlFactory as StoreUrlFactory

#: Either backend; both also offer try_acquire_leadership, which the Store protocol lacks so far.
AnyStore = SqliteStore | PostgresStore


@pytest.fixture
async def store(store_url: StoreUrlFactory) -> AsyncIterator[AnyStore]:
    """store is an open, empty store of each backend, closed after the test."""
    opened = await open_store(store_url())
    assert isinstance(opened, SqliteStore | PostgresStore)
    try:
        yield opened
    finally:
        await opened.close()
