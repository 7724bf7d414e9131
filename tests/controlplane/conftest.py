"""Fixtures shared by the control-plane suites: the private PostgreSQL cluster of the session."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

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
