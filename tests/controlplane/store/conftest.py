"""Fixtures for the store suite: a `store` opened on each backend (the private PostgreSQL is tests/controlplane's)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import psycopg
import pytest

from controlplane.store import PostgresStore, SqliteStore, open_store
from tests.controlplane.conftest import PG_CLUSTER as PG_CLUSTER
from tests.controlplane.conftest import with_schema

#: Either backend; both also offer try_acquire_leadership, which the Store protocol lacks so far.
AnyStore = SqliteStore | PostgresStore


class StoreUrlFactory(Protocol):
    """StoreUrlFactory returns the URL of a fresh, empty store of the test's backend."""

    def __call__(self) -> str: ...


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUrlFactory]:
    """store_url makes URLs of fresh stores: SQLite files under tmp_path, or PostgreSQL schemas dropped after."""
    if request.param == "sqlite":
        counter = iter(range(1_000_000))
        yield lambda: f"sqlite://{tmp_path}/store-{next(counter)}.db"
        return
    base: str = request.getfixturevalue("postgres_url")
    schemas: list[str] = []

    def fresh() -> str:
        schema = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        return with_schema(base, schema)

    yield fresh
    with psycopg.connect(base, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def store(store_url: StoreUrlFactory) -> AsyncIterator[AnyStore]:
    """store is an open, empty store of each backend, closed after the test."""
    opened = await open_store(store_url())
    assert isinstance(opened, SqliteStore | PostgresStore)
    try:
        yield opened
    finally:
        await opened.close()
