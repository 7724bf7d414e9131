"""Fixtures shared by the control-plane suites: the private PostgreSQL cluster of the session, a fresh schema of
it (`postgres_schema`, `fresh_schema`), and `store_url`, which makes URLs of fresh stores on each backend."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
PG_CLUSTER = REPO / "scripts" / "pg-cluster"


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


def with_schema(url: str, schema: str) -> str:
    """with_schema points url's connections at schema (search_path), so each test has its own tables."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@contextlib.contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    """fresh_schema is the URL of a new, empty schema in base's database (see with_schema), dropped after the
    block."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """postgres_schema is the URL of an empty schema of the session's cluster, dropped after the test (several
    cara-server processes may share it)."""
    with fresh_schema(postgres_url) as url:
        yield url


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
    with contextlib.ExitStack() as schemas:
        yield lambda: schemas.enter_context(fresh_schema(base))
