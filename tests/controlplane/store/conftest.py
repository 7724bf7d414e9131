"""Fixtures for the store suite: a `store` opened on each backend, and the private PostgreSQL it needs."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import psycopg
import pytest

from controlplane.store import PostgresStore, SqliteStore, open_store

REPO = Path(__file__).resolve().parents[3]
PG_CLUSTER = REPO / "scripts" / "pg-cluster"

#: Either backend; both also offer try_acquire_leadership, which the Store protocol lacks so far.
AnyStore = SqliteStore | PostgresStore


class StoreUrlFactory(Protocol):
    """StoreUrlFactory returns the URL of a fresh, empty store of the test's backend."""

    def __call__(self) -> str: ...


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """postgres_url is CARA_TEST_POSTGRES_URL, or a private cluster started for this session and removed after."""
    given = os.environ.get("CARA_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    cluster_dir = tempfile.mkdtemp(prefix="cara-pg-")
    env = {**os.environ, "CARA_PG_DIR": cluster_dir}
    started = subprocess.run(
        [str(PG_CLUSTER), "start"], env=env, check=True, stdout=subprocess.PIPE, text=True, timeout=900
    )
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(PG_CLUSTER), "stop"], env=env, check=True, timeout=120)


def _with_schema(url: str, schema: str) -> str:
    """_with_schema points url's connections at schema (search_path), so each test has its own tables."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


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
        return _with_schema(base, schema)

    yield fresh
    with psycopg.connect(base, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def store(store_url: StoreUrlFactory) -> AsyncIterator[AnyStore]:
    """store is an open, empty store of each backend, closed after the test."""
    opened = await open_store(store_url())
    try:
        yield opened
    finally:
        await opened.close()
