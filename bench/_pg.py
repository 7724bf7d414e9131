"""A private PostgreSQL cluster for the benchmarks (scripts/pg-cluster) and a fresh schema per run."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg

from bench._server import ROOT

PG_CLUSTER = ROOT / "scripts" / "pg-cluster"


@contextmanager
def private_cluster() -> Iterator[str]:
    """private_cluster starts a throwaway cluster on loopback (installing Debian's postgresql if needed),
    yields its URL and removes it afterwards."""
    directory = tempfile.mkdtemp(prefix="cara-bench-pg-")
    env = {**os.environ, "CARA_PG_DIR": directory}
    started = subprocess.run([str(PG_CLUSTER), "start"], env=env, check=True, stdout=subprocess.PIPE, text=True)
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(PG_CLUSTER), "stop"], env=env, check=True, stdout=subprocess.DEVNULL)


def fresh_schema(base: str) -> str:
    """fresh_schema creates an empty schema and returns a URL whose connections use it."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    option = quote(f"-csearch_path={schema}")
    return f"{base}{'&' if '?' in base else '?'}options={option}"
