"""A private PostgreSQL cluster for the benchmarks (scripts/pg-cluster) and a fresh schema per run."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from bench import _proc
from bench._server import ROOT

PG_CLUSTER = ROOT / "scripts" / "pg-cluster"


@dataclass(frozen=True)
class Cluster:
    """Cluster is a running private cluster: its URL and the directory holding its data."""

    url: str
    directory: Path

    def postmaster(self) -> int:
        return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])

    def pids(self) -> list[int]:
        """pids are the postmaster and every process it runs now (backends, WAL writer, checkpointer ...)."""
        main = self.postmaster()
        return [main, *_proc.children(main)]

    def cpu_seconds(self) -> float:
        """cpu_seconds is the CPU the whole cluster has used: its live processes, plus the exited backends the
        postmaster has reaped."""
        main = self.postmaster()
        total = _proc.cpu_seconds(main, reaped_children=True)
        for pid in _proc.children(main):
            with contextlib.suppress(OSError):  # a backend exiting meanwhile is counted by its parent later
                total += _proc.cpu_seconds(pid)
        return total

    def pin(self, cpu: int) -> None:
        """pin moves the cluster's processes to one CPU; backends forked later inherit it from the postmaster."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                _proc.pin(pid, cpu)


@contextmanager
def private_cluster(cpu: int | None = 0) -> Iterator[Cluster]:
    """private_cluster starts a throwaway cluster on loopback (installing Debian's postgresql if needed), pins
    it to `cpu` beside the server it serves, yields it and removes it afterwards."""
    directory = tempfile.mkdtemp(prefix="cara-bench-pg-")
    env = {**os.environ, "CARA_PG_DIR": directory}
    started = subprocess.run([str(PG_CLUSTER), "start"], env=env, check=True, stdout=subprocess.PIPE, text=True)
    try:
        cluster = Cluster(started.stdout.strip().splitlines()[-1], Path(directory))
        if cpu is not None:
            cluster.pin(cpu)
        yield cluster
    finally:
        subprocess.run([str(PG_CLUSTER), "stop"], env=env, check=True, stdout=subprocess.DEVNULL)


def fresh_schema(base: str) -> str:
    """fresh_schema creates an empty schema and returns a URL whose connections use it."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    option = quote(f"-csearch_path={schema}")
    return f"{base}{'&' if '?' in base else '?'}options={option}"
