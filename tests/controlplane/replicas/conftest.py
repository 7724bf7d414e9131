"""Fixtures of the replica tests: a fresh PostgreSQL schema that several cara-server processes share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.controlplane.conftest import with_schema


@pytest.fixture
def shared_database(postgres_url: str) -> Iterator[str]:
    """shared_database is the URL of an empty schema in the session's cluster, dropped after the test."""
    schema = f"replicas_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(postgres_url, schema)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
