"""docs/deploy.md, "Move to PostgreSQL": stop the server, `cara-server --config ... --copy-store-to URL` into a new
database, set `store` to that URL, start the server: every Node (status and binding), Project and history is there.
(Run with `cara-server --dev` on loopback: the lab's hosts cannot reach the test cluster's loopback port.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.controlplane.replicas._process import SERVER, start_server

pytestmark = pytest.mark.postgres


def test_a_sqlite_store_moves_to_postgresql_whole(tmp_path: Path, postgres_schema: str) -> None:
    sqlite = f"sqlite://{tmp_path}/cara.db"
    server = start_server(sqlite, tmp_path / "sqlite.log")
    try:
        for name in ("edge1", "edge2"):
            doc = {"apiVersion": "caravanserai/v1", "kind": "Node", "metadata": {"name": name, "labels": {"z": "a"}}}
            assert server.client.post("/api/v1/nodes", json=doc).status_code == 201
        server.beat("edge1")
        before = server.client.get("/api/v1/nodes").json()["items"]
    finally:
        server.stop()
    config = tmp_path / "server.toml"
    config.write_text(f'store = "{sqlite}"\n')
    copy = subprocess.run(
        [SERVER, "--config", str(config), "--copy-store-to", postgres_schema],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert copy.returncode == 0, copy.stderr
    assert copy.stdout.startswith("copied 2 nodes, 0 projects")
    again = subprocess.run(
        [SERVER, "--config", str(config), "--copy-store-to", postgres_schema],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "--copy-store-to: the target store is not empty" in again.stderr
    moved = start_server(postgres_schema, tmp_path / "postgres.log")
    try:
        after = moved.client.get("/api/v1/nodes").json()["items"]
    finally:
        moved.stop()
    key = [(n["metadata"]["name"], n["metadata"].get("labels"), n["status"].get("binding")) for n in before]
    assert [(n["metadata"]["name"], n["metadata"].get("labels"), n["status"].get("binding")) for n in after] == key
